//go:build linux

package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// FloodConfig configures Flood.
type FloodConfig struct {
	Server netip.Addr
	// TCPWorkers and UDPWorkers open flows one after the other, all at
	// the same time.
	TCPWorkers, UDPWorkers int
	Duration               time.Duration
	// FirstPort and LastPort bound the source ports the workers cycle
	// through, split evenly between them. A tuple comes back only after a
	// whole cycle, long after the gateway's conntrack forgot it.
	FirstPort, LastPort int
	// Once stops each worker at the end of its share of the ports instead
	// of cycling: a burst in which every flow is new to conntrack, however
	// fast the flows go. The flood then ends when Duration is over or every
	// worker is done, whichever comes first.
	Once bool
}

// Flood opens new TCP and UDP flows to Server for Duration and counts those
// completed.
func Flood(c FloodConfig) (FloodResult, error) {
	var tcp, udp, failed atomic.Uint64
	var errMu sync.Mutex
	errs := map[string]uint64{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	workers := c.TCPWorkers + c.UDPWorkers
	if workers == 0 {
		return FloodResult{}, errors.New("load: no workers")
	}
	span := (c.LastPort - c.FirstPort + 1) / workers
	if span < 1 {
		return FloodResult{}, errors.New("load: fewer source ports than workers")
	}
	worker := func(w int, isUDP bool) {
		defer wg.Done()
		lo := c.FirstPort + w*span
		// A random start in the worker's port cycle: the next flood does
		// not replay the tuples of the last one.
		first := rand.IntN(max(span, 1))
		for i := first; !stop.Load(); i++ {
			if c.Once && i == first+span {
				return
			}
			var err error
			if isUDP {
				err = udpFlow(c.Server, PortUDPEcho, lo+i%span)
			} else {
				err = tcpFlow(c.Server, PortFloodFirst+(w+i)%FloodPorts, lo+i%span)
			}
			switch {
			case err == nil && isUDP:
				udp.Add(1)
			case err == nil:
				tcp.Add(1)
			case isTransient(err):
				failed.Add(1)
				kind := "tcp: "
				if isUDP {
					kind = "udp: "
				}
				errMu.Lock()
				errs[kind+err.Error()]++
				errMu.Unlock()
			default:
				errOnce.Do(func() { firstErr = err })
				return
			}
		}
	}
	start := time.Now()
	for w := 0; w < c.TCPWorkers; w++ {
		wg.Add(1)
		go worker(w, false)
	}
	for w := 0; w < c.UDPWorkers; w++ {
		wg.Add(1)
		go worker(c.TCPWorkers+w, true)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-time.After(c.Duration):
	case <-done:
	}
	stop.Store(true)
	elapsed := time.Since(start)
	<-done
	return FloodResult{TCP: tcp.Load(), UDP: udp.Load(), Failed: failed.Load(), Seconds: elapsed.Seconds(), Errors: errs}, firstErr
}

// isTransient tells a flow that failed (timed out, refused, port busy) from
// a client that cannot work at all.
func isTransient(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ETIMEDOUT) || errors.Is(err, unix.ECONNREFUSED) ||
		errors.Is(err, unix.EADDRINUSE) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EINPROGRESS) ||
		errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.EHOSTUNREACH)
}

func sockaddr(a netip.Addr, port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: a.As4()}
}

var timeout = unix.Timeval{Sec: 1}

// tcpFlow completes one TCP handshake from sport (0: any) and aborts the
// connection with an RST.
func tcpFlow(server netip.Addr, port, sport int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return err
	}
	// SO_SNDTIMEO bounds a blocking connect.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &timeout); err != nil {
		return err
	}
	if sport != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: sport}); err != nil {
			return err
		}
	}
	err = unix.Connect(fd, sockaddr(server, port))
	if errors.Is(err, unix.ECONNRESET) {
		// Only an established connection can be reset (a refused SYN is
		// ECONNREFUSED): the handshake completed, and the server's
		// accept-and-reset overtook this thread's return from connect.
		return nil
	}
	return err
}

// udpFlow sends one datagram from sport and waits for its echo.
func udpFlow(server netip.Addr, port, sport int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &timeout); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: sport}); err != nil {
		return err
	}
	if err := unix.Connect(fd, sockaddr(server, port)); err != nil {
		return err
	}
	var buf [32]byte
	copy(buf[:], "picoseg-bench new flow")
	if _, err := unix.Write(fd, buf[:]); err != nil {
		return err
	}
	_, err = unix.Read(fd, buf[:])
	return err
}

// Latency times n sequential TCP handshakes (connect returns when the
// SYN-ACK is in), each a new flow, pausing gap between them.
func Latency(server netip.Addr, n int, gap time.Duration) (LatencyResult, error) {
	var r LatencyResult
	for i := 0; i < n; i++ {
		start := time.Now()
		err := tcpFlow(server, PortFloodFirst+i%FloodPorts, 0)
		d := time.Since(start)
		if err != nil {
			if !isTransient(err) {
				return r, err
			}
			r.Failed++
			continue
		}
		r.Micros = append(r.Micros, float64(d.Nanoseconds())/1e3)
		time.Sleep(gap)
	}
	return r, nil
}

// Short runs n HTTP-like flows one after the other: connect, a request, a
// small response, an orderly close.
func Short(server netip.Addr, n int) (CountResult, error) {
	var r CountResult
	req := []byte("GET /status HTTP/1.1\r\nHost: bench\r\n\r\n")
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(server, PortHTTP).String(), 2*time.Second)
		if err != nil {
			r.Failed++
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Write(req)
		var got int64
		if err == nil {
			got, err = io.Copy(io.Discard, c)
		}
		c.Close()
		if err != nil || got == 0 {
			r.Failed++
			continue
		}
		r.Completed++
		r.Bytes += got
	}
	return r, nil
}

// Bulk sends size bytes over each of n connections to the sink.
func Bulk(server netip.Addr, n int, size int64) (CountResult, error) {
	var r CountResult
	buf := make([]byte, 128<<10)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(server, PortSink).String(), 2*time.Second)
		if err != nil {
			r.Failed++
			continue
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		var sent int64
		for sent < size && err == nil {
			chunk := buf
			if rest := size - sent; rest < int64(len(chunk)) {
				chunk = chunk[:rest]
			}
			var k int
			k, err = c.Write(chunk)
			sent += int64(k)
		}
		if err == nil {
			// Half-close and wait for the sink's close: all bytes arrived.
			c.(*net.TCPConn).CloseWrite()
			_, err = io.Copy(io.Discard, c)
		}
		c.Close()
		if err != nil {
			r.Failed++
			continue
		}
		r.Completed++
		r.Bytes += sent
	}
	return r, nil
}

// Stream sends datagrams numbered 0, 1, ... from one source port to the
// stream sink, rate per second, for d: one flow, fast-pathed after its first
// packet.
func Stream(server netip.Addr, rate int, d time.Duration) (StreamResult, error) {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, PortUDPStream)))
	if err != nil {
		return StreamResult{}, err
	}
	defer c.Close()
	var seq uint64
	var buf [64]byte
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for next := start; time.Since(start) < d; next = next.Add(interval) {
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		putSeq(buf[:], seq)
		if _, err := c.Write(buf[:]); err != nil {
			return StreamResult{Sent: seq}, err
		}
		seq++
	}
	return StreamResult{Sent: seq}, nil
}

// Serve runs every server on the WAN host until the process is killed: the
// TCP accept-and-reset servers, the HTTP-like server, the sink and the UDP
// echo. It returns only on a start-up error.
func Serve() error {
	for p := PortFloodFirst; p < PortFloodFirst+FloodPorts; p++ {
		fd, err := listenTCP(p)
		if err != nil {
			return err
		}
		for i := 0; i < 2; i++ {
			go acceptReset(fd)
		}
	}
	if err := serveNet(PortHTTP, serveHTTP); err != nil {
		return err
	}
	if err := serveNet(PortSink, func(c net.Conn) { io.Copy(io.Discard, c) }); err != nil {
		return err
	}
	ufd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(ufd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if err := unix.Bind(ufd, &unix.SockaddrInet4{Port: PortUDPEcho}); err != nil {
		return fmt.Errorf("udp echo: %w", err)
	}
	for i := 0; i < 2; i++ {
		go echo(ufd)
	}
	fmt.Println("serving")
	select {}
}

func listenTCP(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return 0, fmt.Errorf("tcp %d: %w", port, err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return 0, fmt.Errorf("tcp %d: %w", port, err)
	}
	return fd, nil
}

func acceptReset(fd int) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EMFILE {
				continue
			}
			return
		}
		unix.Close(nfd)
	}
}

func echo(fd int) {
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		unix.Sendto(fd, buf[:n], unix.MSG_DONTWAIT, from)
	}
}

func serveNet(port int, handle func(net.Conn)) error {
	ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				continue
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				handle(c)
			}()
		}
	}()
	return nil
}

// response is a small HTTP answer, the size of a typical device API reply.
var response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 512\r\n\r\n" + strings.Repeat("x", 512)

func serveHTTP(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	io.WriteString(c, response)
}
