package main

// Kernel tests of the pico layer's checks on the fast path: a class's time
// window and packet sizes hold packet by packet in the kernel, and a rule's
// fan-out bound refuses a device's flow to one peer too many.

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the window's zone, whatever the system has

	"github.com/picoseg/picoseg/pkg/daemon"
)

// windowZone is the policy's time zone in the window test: half an hour
// off UTC, so that a window read in the wrong zone is off by hours and
// minutes.
const windowZone = "Asia/Kolkata"

// TestKernelPicoWindowCutAtBoundary: a fast-pathed flow allowed by a window
// that ends within two minutes of the start stops at the boundary, dropped
// by the kernel's class check (its counter says so); the daemon's 10 s pass
// would have cut it up to 10 s later. The window is written in a zone half
// an hour off UTC, and on today's weekday there.
func TestKernelPicoWindowCutAtBoundary(t *testing.T) {
	loc, err := time.LoadLocation(windowZone)
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	f := newFixture(t)
	f.echo("wan", 8443)
	end := time.Now().Add(30 * time.Second).Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-20 * time.Minute).In(loc)
	window := fmt.Sprintf("hours = [\"%s-%s\"]\ndays = [\"%s\"]", start.Format("15:04"), end.In(loc).Format("15:04"), strings.ToLower(start.Format("Mon")))
	f.start(labPolicy(t, func(s string) string {
		s = strings.Replace(s, "[daemon]\n", "[daemon]\ntimezone = \""+windowZone+"\"\n", 1)
		return strings.Replace(s, `services = ["tcp/8443"]`, "services = [\"tcp/8443\"]\n"+window, 1)
	}))
	t.Logf("window %s, ends %s (in %v)", window, end.UTC().Format(time.TimeOnly), time.Until(end).Round(time.Second))
	ch := f.chat("cam", netip.MustParseAddrPort("198.51.100.2:8443"))
	ch.waitEchoes(t, 20)
	before := f.status()
	if before.Kernel["fast_path"] == 0 || before.Kernel["class_window_dropped"] != 0 {
		t.Fatalf("inside the window: %v; want fast-pathed, nothing dropped", before.Kernel)
	}
	for ch.broken.Load() == 0 && time.Now().Before(end.Add(5*time.Second)) {
		time.Sleep(20 * time.Millisecond)
	}
	broken := ch.broken.Load()
	if broken == 0 {
		t.Fatalf("the flow still flows 5 s after its window ended at %s", end.UTC().Format(time.TimeOnly))
	}
	late := time.Unix(0, broken).Sub(end)
	t.Logf("the flow stopped %v after the window ended; echoes %d", late, ch.echoes.Load())
	if late < -time.Second || late > 1500*time.Millisecond {
		t.Errorf("the flow stopped %v after the window's end: want it at the boundary", late)
	}
	if after := f.status(); after.Kernel["class_window_dropped"] == 0 {
		t.Errorf("no packet dropped by the class's window check: %v", after.Kernel)
	}
}

// TestKernelPicoPacketSize: on a fast-pathed UDP flow, a datagram over its
// rule's packet_size is dropped by the kernel without being queued; the
// same datagram on a flow of a rule without the bound is echoed (control).
func TestKernelPicoPacketSize(t *testing.T) {
	f := newFixture(t)
	for _, port := range []int{5000, 5001} {
		s, err := f.lab.Host("wan").ServeUDP(f.ctx, port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}
	f.start(labPolicy(t, func(s string) string {
		return s + `
[[allow]]
name = "cam-telemetry"
from = "group:cameras"
to = "zone:wan"
services = ["udp/5000"]
packet_size = "28-300"

[[allow]]
name = "cam-telemetry-free"
from = "group:cameras"
to = "zone:wan"
services = ["udp/5001"]
`
	}))
	sized, free := f.udpFlow("cam", "198.51.100.2:5000"), f.udpFlow("cam", "198.51.100.2:5001")
	for range 6 { // past the engine's first packets, onto the fast path
		sized.roundTrip(t, 100, true)
		free.roundTrip(t, 100, true)
	}
	free.roundTrip(t, 1000, true) // control: the lab carries the large one
	before := f.status()
	sized.roundTrip(t, 1000, false)
	after := f.status()
	t.Logf("kernel before %v, after %v", before.Kernel, after.Kernel)
	if after.Kernel["class_size_dropped"] == before.Kernel["class_size_dropped"] {
		t.Error("the large datagram was not dropped by the class's size check")
	}
	if queued(after) != queued(before) || after.Kernel["queued"] != before.Kernel["queued"] {
		t.Errorf("the large datagram was queued (%d -> %d): want it dropped in the kernel", queued(before), queued(after))
	}
	sized.roundTrip(t, 100, true) // the flow goes on within its bounds
}

// TestKernelPicoFanOut: a device may open flows to three peers under a rule
// with max_peers = 3; its flow to a fourth is refused, with possible_scan
// naming the rule, while the peers it reached stay open.
func TestKernelPicoFanOut(t *testing.T) {
	f := newFixture(t)
	wan := f.lab.Host("wan")
	peers := []string{"198.51.100.2", "198.51.100.10", "198.51.100.11", "198.51.100.12"}
	for _, a := range peers[1:] {
		if out, err := wan.Run(f.ctx, "ip", "addr", "add", a+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
	}
	f.echo("wan", 8443)
	f.start(labPolicy(t, func(s string) string {
		return strings.Replace(s, `services = ["tcp/8443"]`, "services = [\"tcp/8443\"]\nmax_peers = 3\nfanout_window = \"1m\"", 1)
	}))
	for i, p := range peers {
		want := i < 3
		if got := f.canAddr("cam", p, 8443); got != want {
			t.Errorf("cam -> %s:8443 (peer %d): connected %v, want %v", p, i+1, got, want)
		}
	}
	if !f.canAddr("cam", peers[0], 8443) {
		t.Error("a peer the device already reached was refused")
	}
	var alerts []struct {
		Type   string `json:"type"`
		Rule   string `json:"rule"`
		Device string `json:"device"`
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		daemon.Query(f.sock, "alerts", &alerts)
		for _, a := range alerts {
			if a.Type == "possible_scan" && a.Rule == "cam-upload" {
				return
			}
		}
	}
	t.Errorf("no possible_scan alert for cam-upload: %+v", alerts)
}

// udpFlow is one UDP socket of a lab host: one conntrack flow.
type udpFlow struct {
	f    *fixture
	conn interface {
		Write([]byte) (int, error)
		Read([]byte) (int, error)
		SetDeadline(time.Time) error
	}
}

func (f *fixture) udpFlow(host, dst string) *udpFlow {
	f.t.Helper()
	c, err := f.lab.Host(host).Dial(f.ctx, "udp", dst)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return &udpFlow{f: f, conn: c}
}

// roundTrip sends n bytes and reports an error unless the echo's arrival
// is what want says.
func (u *udpFlow) roundTrip(t *testing.T, n int, want bool) {
	t.Helper()
	buf := make([]byte, n)
	u.conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := u.conn.Write(buf); err != nil {
		t.Fatal(err)
	}
	got, err := u.conn.Read(buf)
	if echoed := err == nil && got == n; echoed != want {
		t.Fatalf("%d-byte datagram: echoed %v, want %v (%v)", n, echoed, want, err)
	}
}

// canAddr reports whether host opens a TCP connection to addr:port.
func (f *fixture) canAddr(host, addr string, port uint16) bool {
	f.t.Helper()
	return f.lab.Host(host).TCPConnect(f.ctx, netip.AddrPortFrom(netip.MustParseAddr(addr), port), 1500*time.Millisecond) == nil
}

// TestKernelPicoClassRate: under a rule with max_new_flows = "3/m", a
// device opening connection after connection to its allowed service gets
// three; the fourth reaches the queue and the engine refuses it; from then
// on the kernel drops the openings over the rate without queueing them
// (the queue counters stay where they were).
func TestKernelPicoClassRate(t *testing.T) {
	f := newFixture(t)
	f.echo("wan", 8443)
	f.start(labPolicy(t, func(s string) string {
		return strings.Replace(s, `services = ["tcp/8443"]`, "services = [\"tcp/8443\"]\nmax_new_flows = \"3/m\"", 1)
	}))
	const peer = "198.51.100.2"
	for i := range 3 {
		if !f.canAddr("cam", peer, 8443) {
			t.Fatalf("connection %d of 3 within the rate was refused", i+1)
		}
	}
	if f.canAddr("cam", peer, 8443) {
		t.Fatal("the fourth connection within a minute opened")
	}
	before := f.status()
	for i := range 4 {
		if f.canAddr("cam", peer, 8443) {
			t.Fatalf("connection %d over the rate opened", i+5)
		}
	}
	after := f.status()
	t.Logf("kernel before %v\nafter %v", before.Kernel, after.Kernel)
	if after.Kernel["class_rate_dropped"] <= before.Kernel["class_rate_dropped"] {
		t.Error("the kernel dropped none of the openings over the rate")
	}
	if queued(after) != queued(before) || after.Kernel["queued"] != before.Kernel["queued"] {
		t.Errorf("openings over the rate were queued: %d -> %d packets", queued(before), queued(after))
	}
}
