//go:build linux

package load

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Hellos opens TCP flows to the sink for d from workers clients at once,
// each sending a ClientHello for name, closing its side and waiting for the
// server's: a flow counts once the server has read the hello and closed.
func Hellos(server netip.Addr, name string, workers int, d time.Duration) (FloodResult, error) {
	hello := ClientHello(name)
	addr := netip.AddrPortFrom(server, PortSink).String()
	var done, failed atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for !stop.Load() {
				if helloFlow(addr, hello, buf) {
					done.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	return FloodResult{TCP: done.Load(), Failed: failed.Load(), Seconds: elapsed.Seconds()}, nil
}

func helloFlow(addr string, hello, buf []byte) bool {
	c, err := net.DialTimeout("tcp4", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	// Closed with a reset once the server's close is in: no TIME_WAIT,
	// so the clients' ports do not run out from one run to the next.
	c.(*net.TCPConn).SetLinger(0)
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(hello); err != nil {
		return false
	}
	c.(*net.TCPConn).CloseWrite()
	for {
		if _, err := c.Read(buf); err != nil {
			return err == io.EOF
		}
	}
}
