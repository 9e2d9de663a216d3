//go:build linux

package load

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Hellos opens TCP flows to the sink for d from workers clients at once,
// each sending a ClientHello for name, closing its side and waiting for the
// server's: a flow counts once the server has read the hello and closed.
//
// Each flow ends in TIME_WAIT on the client (its FIN goes first), for
// 60 s. connect, asked for a port, does not reuse one in TIME_WAIT towards
// an address that is not loopback (tcp_tw_reuse's default), and once the
// half of the range it tries first is taken (about 14 000 flows, one or two
// runs) it scans every such port on each flow: the client, not the
// gateway, then sets the rate. So the workers bind their source ports in
// cycles over SourcePortFirst..SourcePortLast: a tuple in TIME_WAIT is
// reused for an explicitly bound port (with TCP timestamps, as on Linux by
// default), and comes back only after a whole cycle.
func Hellos(server netip.Addr, name string, workers int, d time.Duration) (FloodResult, error) {
	hello := ClientHello(name)
	addr := netip.AddrPortFrom(server, PortSink).String()
	span := (SourcePortLast - SourcePortFirst + 1) / max(workers, 1)
	var done, failed atomic.Uint64
	var errMu sync.Mutex
	errs := map[string]uint64{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			lo := SourcePortFirst + w*span
			// A random start: the next run does not replay this one's
			// tuples.
			for i := rand.IntN(span); !stop.Load(); i++ {
				if err := helloFlow(addr, lo+i%span, hello, buf); err != nil {
					failed.Add(1)
					errMu.Lock()
					errs[errKind(err)]++
					errMu.Unlock()
					continue
				}
				done.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	return FloodResult{TCP: done.Load(), Failed: failed.Load(), Seconds: elapsed.Seconds(), Errors: errs}, nil
}

// reuseAddr lets a source port be bound while an earlier flow from it is
// in TIME_WAIT (connect then decides whether the tuple may be reused).
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// errKind names a failed flow's error without its addresses, so that the
// counts add up by kind.
func errKind(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return "other"
}

func helloFlow(addr string, sport int, hello, buf []byte) error {
	dialer := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{Port: sport}, Control: reuseAddr}
	c, err := dialer.DialContext(context.Background(), "tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// A flow the server did not close in time is reset, not left to
	// linger.
	c.(*net.TCPConn).SetLinger(0)
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(hello); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	for {
		if _, err := c.Read(buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
