package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Path is where Serve answers.
const Path = "/metrics"

// The endpoint answers one small page to a scraper on the gateway or the
// LAN. It speaks just enough HTTP/1.1 for that (one request a connection,
// then close), which keeps net/http and its TLS and MIME dependencies out
// of the binary: measured on mips, 377 kB less in the gzipped package,
// where the package's budget is 4 MB. Tight limits keep a slow or hostile
// client from holding connections and memory.
const (
	maxRequest = 8 << 10          // request line and headers
	maxBody    = 8 << 10          // a body read and discarded before answering
	maxConns   = 4                // scrapes served at once; more are closed
	connTime   = 10 * time.Second // a whole exchange
	drainTime  = time.Second      // what scrapes in progress get at shutdown
)

// Serve listens on listen (such as "127.0.0.1:9107") and serves the
// registry at Path until ctx ends; then it stops, giving scrapes in
// progress a second, and returns nil. It returns an error when it cannot
// listen or accepting fails.
func Serve(ctx context.Context, listen string, r *Registry) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return ServeListener(ctx, ln, r)
}

// ServeListener is Serve on a listener the caller opened; it closes ln.
func ServeListener(ctx context.Context, ln net.Listener, r *Registry) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.SetDeadline(time.Now().Add(drainTime))
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("metrics: serve: %w", err)
		}
		mu.Lock()
		busy := len(conns) >= maxConns
		if !busy {
			conns[c] = struct{}{}
		}
		mu.Unlock()
		if busy {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c, r)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// serveConn answers one request on c and closes it.
func serveConn(c net.Conn, r *Registry) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connTime))
	br := bufio.NewReaderSize(c, 1024)
	req, err := readRequest(br)
	if err != nil {
		respond(c, "400 Bad Request", plain, []byte("bad request\n"), true)
		return
	}
	if req.length > 0 && req.length <= maxBody {
		// Read what the client sent, so that closing does not reset the
		// connection before it reads the answer.
		io.CopyN(io.Discard, br, req.length)
	}
	switch {
	case req.path != Path:
		respond(c, "404 Not Found", plain, []byte("not found\n"), true)
	case req.method != "GET" && req.method != "HEAD":
		respond(c, "405 Method Not Allowed", []string{plain[0], "Allow: GET, HEAD"}, []byte("method not allowed\n"), true)
	default:
		respond(c, "200 OK", []string{"Content-Type: " + ContentType, "Cache-Control: no-store"}, r.appendText(nil), req.method == "GET")
	}
}

// plain is the header of the short error answers.
var plain = []string{"Content-Type: text/plain; charset=utf-8"}

// request is what serveConn needs of an HTTP request.
type request struct {
	method, path string
	length       int64 // Content-Length, 0 when absent
}

var errRequest = errors.New("malformed request")

// readRequest reads a request line and its headers, at most maxRequest
// bytes of them.
func readRequest(br *bufio.Reader) (request, error) {
	var req request
	budget := maxRequest
	for i := 0; ; i++ {
		line, err := br.ReadSlice('\n')
		budget -= len(line)
		if err != nil || budget < 0 {
			return req, errRequest
		}
		line = bytes.TrimRight(line, "\r\n")
		if i == 0 {
			if req, err = requestLine(line); err != nil {
				return req, err
			}
			continue
		}
		if len(line) == 0 {
			return req, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
			if err != nil || n < 0 {
				return req, errRequest
			}
			req.length = n
		}
	}
}

// requestLine parses "METHOD TARGET HTTP/1.x"; the target's query is
// ignored.
func requestLine(line []byte) (request, error) {
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(method) == 0 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(target) == 0 {
		return request{}, errRequest
	}
	path, _, _ := bytes.Cut(target, []byte("?"))
	return request{method: string(method), path: string(path)}, nil
}

// respond writes a whole response and says the connection closes; with
// withBody false (HEAD) the length is announced but the body not sent.
func respond(w io.Writer, status string, headers []string, body []byte, withBody bool) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n")
	if withBody {
		b.Write(body)
	}
	w.Write(b.Bytes())
}
