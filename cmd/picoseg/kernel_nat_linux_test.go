package main

// A port forward (DNAT) through picoseg on the real kernel: flows are judged
// as the queue saw them, after the forward, in the periodic pass and after
// reloads.

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// natPolicy is the lab policy plus a port forward: the internet may reach
// the admin PC's web server, which the gateway forwards from its own
// 198.51.100.1:8080. The hub's windowed rule gives the policy a time
// window, so the daemon judges every tracked flow again every 10 s.
func natPolicy(t *testing.T, extra string) string {
	return labPolicy(t, func(s string) string {
		return s + `
[[segment]]
from = "wan"
to = "lan"
action = "micro"

[[allow]]
name = "admin-web-forward"
from = "zone:wan"
to = "device:admin"
services = ["tcp/80"]

[[allow]]
name = "hub-cloud-always"
from = "device:hub"
to = "zone:wan"
services = ["tcp/443"]
hours = ["00:00-24:00"]
` + extra
	})
}

// portForward adds the gateway's DNAT rule, in a table of its own as fw4 or
// an operator would: wan0 tcp/port goes to to.
func (f *fixture) portForward(port uint16, to netip.AddrPort) {
	f.t.Helper()
	path := filepath.Join(f.dir, "nat.nft")
	script := "add table ip labnat\n" +
		"add chain ip labnat pre { type nat hook prerouting priority dstnat; }\n" +
		"add rule ip labnat pre iifname \"wan0\" tcp dport " + strconv.Itoa(int(port)) + " dnat to " + to.String() + "\n"
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if out, err := f.lab.Gateway.Run(f.ctx, "nft", "-f", path); err != nil {
		f.t.Fatalf("nft: %v\n%s", err, out)
	}
}

// serveStream runs a TCP server on host:port that sends every client an
// endless file at about 3 MB/s: a download long enough to outlast reloads.
func (f *fixture) serveStream(host string, port int) {
	f.t.Helper()
	ln, err := f.lab.Host(host).Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				chunk := make([]byte, 16<<10)
				for {
					c.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if _, err := c.Write(chunk); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}()
}

// download is a running transfer and when it stalled.
type download struct {
	conn   net.Conn
	got    atomic.Int64
	broken atomic.Int64 // unix nanos when no byte came for a second, 0 while flowing
	done   chan struct{}
}

func (f *fixture) download(host string, src netip.AddrPort) *download {
	f.t.Helper()
	c, err := f.lab.Host(host).Dial(f.ctx, "tcp", src.String())
	if err != nil {
		f.t.Fatalf("starting the download: %v", err)
	}
	d := &download{conn: c, done: make(chan struct{})}
	f.t.Cleanup(func() { c.Close(); <-d.done })
	go func() {
		defer close(d.done)
		buf := make([]byte, 64<<10)
		for {
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			d.got.Add(int64(n))
			if err != nil {
				d.broken.CompareAndSwap(0, time.Now().UnixNano())
				return
			}
		}
	}()
	return d
}

// flowing waits until n more bytes came, failing when the download stalled.
func (d *download) flowing(t *testing.T, n int64, what string) {
	t.Helper()
	start := d.got.Load()
	for deadline := time.Now().Add(5 * time.Second); d.got.Load() < start+n; time.Sleep(10 * time.Millisecond) {
		if d.broken.Load() != 0 || time.Now().After(deadline) {
			t.Fatalf("%s: the port-forwarded download stopped (%d bytes in all)", what, d.got.Load())
		}
	}
}

func (f *fixture) reload(policy string) {
	f.t.Helper()
	if err := os.WriteFile(f.policy, []byte(policy), 0o644); err != nil {
		f.t.Fatal(err)
	}
	gen := f.status().Generation
	f.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); f.status().Generation != gen+1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("the reload never took effect:\n%s", f.daemon.Output())
		}
	}
}

// A reload that only adds an unrelated rule, and the periodic passes after
// it, leave an allowed port-forwarded download running; a reload that
// denies the forward cuts it. (Judged on conntrack's original tuple, the
// download was `wan -> gateway:8080`, denied by `wan -> *`, and cut on
// every reload.)
func TestKernelReloadKeepsPortForward(t *testing.T) {
	f := newFixture(t)
	f.serveStream("lan", 80)
	gw := netip.AddrPortFrom(f.lab.Sides["wan"].Addr.Addr(), 8080)
	f.portForward(gw.Port(), netip.AddrPortFrom(f.lab.Host("lan").Addr, 80))
	f.start(natPolicy(t, ""))

	// Control: the forward works through picoseg, and a download runs.
	dl := f.download("wan", gw)
	dl.flowing(t, 1<<20, "before any reload")
	if f.can("wan", "lan", 22) {
		t.Fatal("wan reached the admin PC's port 22: the lab policy is not in force")
	}

	f.reload(natPolicy(t, `
[[allow]]
name = "hub-ntp"
from = "device:hub"
to = "zone:wan"
services = ["udp/123"]
`))
	dl.flowing(t, 1<<20, "after a reload adding an unrelated rule")
	// Past a periodic pass (every 10 s, the policy has a window).
	for until := time.Now().Add(11 * time.Second); time.Now().Before(until); {
		dl.flowing(t, 256<<10, "across the periodic pass")
	}
	t.Logf("%d MiB downloaded through the port forward across a reload and a periodic pass", dl.got.Load()>>20)

	// Control: a reload that denies the forward cuts the download.
	sent := time.Now()
	f.reload(strings.Replace(natPolicy(t, ""), `name = "admin-web-forward"
from = "zone:wan"
to = "device:admin"
services = ["tcp/80"]`, `name = "admin-web-forward"
from = "zone:wan"
to = "device:admin"
services = ["tcp/81"]`, 1))
	for dl.broken.Load() == 0 && time.Since(sent) < 4*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	if dl.broken.Load() == 0 {
		t.Fatal("the download kept running after a reload that denies the forward")
	}
	t.Logf("denying reload cut the download %v after SIGHUP (1 s of it is the stall timeout)",
		time.Unix(0, dl.broken.Load()).Sub(sent).Round(time.Millisecond))
}
