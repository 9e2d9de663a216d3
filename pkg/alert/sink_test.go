package alert

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

// fastRetry keeps reconnect tests short.
var fastRetry = SinkOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 2 * time.Second, Hostname: "gw", PID: 812}

// readFrame reads one octet-counted message.
func readFrame(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil {
		return "", fmt.Errorf("bad frame length %q", n)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(r, b)
	return string(b), err
}

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// A destination that hangs (a black-holed TCP connect) must cost the
// caller nothing: alerts fill the buffer, the rest are dropped and counted.
func TestSinkDownNeverBlocks(t *testing.T) {
	hang := func(ctx context.Context) (Writer, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s := NewSink("black hole", hang, SinkOptions{Buffer: 8, Timeout: time.Hour})
	start := time.Now()
	for range 1000 {
		s.Send(sampleAlert())
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 Sends to a hung destination took %v", d)
	}
	if s.Dropped() < 991 {
		t.Fatalf("Dropped() = %d, want at least 991 (1000 less the buffer of 8 and one in hand)", s.Dropped())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}
	if s.Dropped() != 1000 || s.Sent() != 0 {
		t.Fatalf("after Close: dropped %d, sent %d; want every alert accounted as dropped", s.Dropped(), s.Sent())
	}
	if s.Send(sampleAlert()) {
		t.Fatal("Send after Close queued an alert")
	}
}

func TestDispatcherEmitNeverBlocksOnADownSink(t *testing.T) {
	hang := func(ctx context.Context) (Writer, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	sink := NewSink("black hole", hang, SinkOptions{Buffer: 4, Timeout: time.Hour})
	c := newClock()
	d := New(Options{Now: c.Now, CloseTimeout: 100 * time.Millisecond, Rate: -1}, sink)
	// A blocked Emit never returns: the loop finishing at all is the proof.
	// The bound only turns a hang into a failure; it measures no speed (an
	// emulated mips takes seconds where a PC takes milliseconds).
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100000 {
			d.Emit(engine.Event{Type: engine.EventDeny, Device: fmt.Sprint("dev-", i%500), Dst: addr("10.0.1.1"), Proto: 6, DPort: 22})
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Emit blocked behind a sink that is down")
	}
	d.call(func() {})
	if err := d.Close(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the sink's deadline", err)
	}
	st := d.Stats()
	if st.EventsIn != 100000 || st.Sinks[0].Dropped == 0 || st.AlertsOut == 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.Sinks[0].Dropped != st.AlertsOut {
		t.Fatalf("sink dropped %d of %d alerts; every one should be accounted for", st.Sinks[0].Dropped, st.AlertsOut)
	}
}

func TestLocalSyslogReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	s, err := OpenSink(SinkConfig{Type: "syslog", Address: "unix://" + path, Facility: "local0"}, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	s.Send(sampleAlert())
	// No socket yet: the sink retries with backoff...
	waitFor(t, "failed dials", 5*time.Second, func() bool { return s.Errors() >= 2 })
	// ... and delivers once the syslog daemon is back.
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := pc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	// local0 (16) * 8 + warning (4) = 132.
	if !strings.HasPrefix(got, "<132>") || !strings.HasSuffix(got, " picoseg[812]: flow_denied: camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied") {
		t.Fatalf("datagram %q", got)
	}
	waitFor(t, "Sent", time.Second, func() bool { return s.Sent() == 1 })
}

func TestTCPReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := ln.Addr().String()
	ln.Close() // the receiver is down

	s, err := OpenSink(SinkConfig{Type: "syslog", Address: "tcp://" + address}, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	first := sampleAlert()
	s.Send(first)
	waitFor(t, "failed dials", 5*time.Second, func() bool { return s.Errors() >= 2 })

	ln, err = net.Listen("tcp", address)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", address, err)
	}
	defer ln.Close()
	accept := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	conn, r := accept()
	msg, err := readFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, "<28>1 ") || !strings.Contains(msg, ` flow_denied [picoseg@32473 type="flow_denied" device="camera-1"`) {
		t.Fatalf("first message %q", msg)
	}

	// The receiver restarts: the connection closes under the sink. The
	// next alert must not vanish into the dead connection.
	conn.Close()
	time.Sleep(20 * time.Millisecond) // let the FIN reach the sink's reader
	second := sampleAlert()
	second.Device = "camera-2"
	s.Send(second)
	conn, r = accept()
	defer conn.Close()
	msg, err = readFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, `device="camera-2"`) {
		t.Fatalf("after reconnect got %q", msg)
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := OpenSink(SinkConfig{Type: "syslog", Address: "udp://" + pc.LocalAddr().String()}, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	a := sampleAlert()
	a.Message = strings.Repeat("x", 5000) // over one datagram
	s.Send(a)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "<28>1 2025-01-02T03:04:05.678901Z gw picoseg 812 flow_denied [") || n != maxDatagram {
		t.Fatalf("datagram of %d bytes: %.120q", n, got)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir, "syslog.test")
	cert, err := tls.LoadX509KeyPair(pki.certFile, pki.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frames := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				for {
					m, err := readFrame(r)
					if err != nil {
						return
					}
					frames <- m
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	t.Run("verified", func(t *testing.T) {
		s, err := OpenSink(SinkConfig{Type: "syslog", Address: "tls://127.0.0.1:" + port, CA: pki.caFile}, fastRetry)
		if err != nil {
			t.Fatal(err)
		}
		defer closeSink(t, s)
		s.Send(sampleAlert())
		select {
		case m := <-frames:
			if !strings.Contains(m, `[picoseg@32473 type="flow_denied"`) {
				t.Fatalf("got %q", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing arrived; sink stats %+v", s.Stats())
		}
	})

	t.Run("wrong name is refused", func(t *testing.T) {
		// The certificate names 127.0.0.1 and syslog.test, not localhost.
		s, err := OpenSink(SinkConfig{Type: "syslog", Address: "tls://localhost:" + port, CA: pki.caFile}, fastRetry)
		if err != nil {
			t.Fatal(err)
		}
		s.Send(sampleAlert())
		waitFor(t, "a failed handshake", 5*time.Second, func() bool { return s.Errors() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		s.Close(ctx)
		if st := s.Stats(); st.Sent != 0 || !strings.Contains(st.LastError, "certificate") {
			t.Fatalf("stats %+v", st)
		}
		select {
		case m := <-frames:
			t.Fatalf("an unverified receiver got %q", m)
		default:
		}
	})

	t.Run("unknown CA is refused", func(t *testing.T) {
		other := newTestPKI(t, t.TempDir())
		s, err := OpenSink(SinkConfig{Type: "syslog", Address: "tls://127.0.0.1:" + port, CA: other.caFile}, fastRetry)
		if err != nil {
			t.Fatal(err)
		}
		s.Send(sampleAlert())
		waitFor(t, "a failed handshake", 5*time.Second, func() bool { return s.Errors() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		s.Close(ctx)
		if s.Sent() != 0 {
			t.Fatal("sent to a receiver signed by an unknown CA")
		}
	})
}

func TestJSONLSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s, err := OpenSink(SinkConfig{Type: "jsonl", Path: path}, SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.Send(sampleAlert())
	}
	closeSink(t, s)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Fatalf("%d lines, want 3:\n%s", n, b)
	}
}

// Closing a dispatcher ends every goroutine it and its sinks started,
// including the readers watching stream connections.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	before := runtime.NumGoroutine()
	s, err := OpenSink(SinkConfig{Type: "syslog", Address: "tcp://" + ln.Addr().String()}, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	down, err := OpenSink(SinkConfig{Type: "syslog", Address: "unix://" + filepath.Join(t.TempDir(), "absent")}, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{CloseTimeout: 200 * time.Millisecond}, s, down)
	d.Raise(Alert{Type: TypeDaemonStarted})
	waitFor(t, "delivery", 5*time.Second, func() bool { return s.Sent() == 1 })
	d.Close()
	// The receiver's copy ends once the sink's connection is gone.
	waitFor(t, "goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before-1 })
}
