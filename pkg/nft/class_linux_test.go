//go:build linux

package nft

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/nftables/expr"

	"github.com/picoseg/picoseg/internal/testnetns"
)

// windowClosingIn is a window open from a minute ago until d from now.
func windowClosingIn(d time.Duration) []WeekSpan {
	now := time.Now().Unix()
	return mergeSpans(appendFolded(nil, now-60, now+int64(d/time.Second)))
}

// TestKernelClassWindowCutsAtTheBoundary: a fast-pathed flow whose class's
// window closes a few seconds after it starts stops at the boundary,
// dropped by the kernel (nobody answers the queue here: without the class
// check it would flow on, as the control flow of a class without a window
// does).
func TestKernelClassWindowCutsAtTheBoundary(t *testing.T) {
	m := Marks{Mask: dpMask}
	const controlPort = 8
	d := newDataPath(t, Options{Marks: m, Classes: []Class{{}, {HasWindow: true, Open: windowClosingIn(3 * time.Second)}, {}}})
	echoServer(t, d.server, dpEchoTCP)
	echoServer(t, d.server, controlPort)
	d.markFlows(t, dpEchoTCP, m.Accepted(1))
	nftFile(t, d.gw, fmt.Sprintf(`table inet verdicts {
	chain pre2 {
		type filter hook prerouting priority filter;
		tcp dport %d ct mark & %#x == 0 ct mark set ct mark | %#x
	}
}
`, controlPort, dpMask, m.Accepted(2)))
	c := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dpEchoTCP))
	control := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, controlPort))
	roundTrip(t, c, 64)
	if cs := d.counters(t); cs.FastPath.Packets == 0 || cs.ClassWindow.Packets != 0 {
		t.Fatalf("inside the window: fast path %d, window drops %d; want fast-pathed, no drops", cs.FastPath.Packets, cs.ClassWindow.Packets)
	}
	deadline := time.Now().Add(6 * time.Second)
	for {
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 64)
		_, err := c.Write(buf)
		if err == nil {
			_, err = c.Read(buf)
		}
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flow still flows 3 s after its window closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cs := d.counters(t); cs.ClassWindow.Packets == 0 {
		t.Errorf("the flow stopped, but not by the window check: %+v", cs)
	}
	roundTrip(t, control, 64) // the lab still forwards
}

// TestKernelClassPacketSize: on a fast-pathed UDP flow a datagram over the
// class's upper size bound is dropped by the kernel; one within passes, and
// the same large datagram passes in a class without the bound. TCP is held
// to the lower bound only (GRO and GSO merge its segments).
func TestKernelClassPacketSize(t *testing.T) {
	m := Marks{Mask: dpMask}
	const sized, free = 5353, 5354
	d := newDataPath(t, Options{Marks: m, Classes: []Class{{}, {HasSize: true, SizeMin: 28, SizeMax: 300}, {}}})
	nftFile(t, d.gw, fmt.Sprintf(`table inet verdicts {
	chain pre {
		type filter hook prerouting priority filter;
		udp dport %d ct mark & %#x == 0 ct mark set ct mark | %#x
		udp dport %d ct mark & %#x == 0 ct mark set ct mark | %#x
	}
}
`, sized, dpMask, m.Accepted(1), free, dpMask, m.Accepted(2)))
	udpEcho(t, d.server, sized)
	udpEcho(t, d.server, free)
	if !udpRoundTrip(t, d.client, sized, 100) {
		t.Fatal("a 128-byte datagram inside the bounds was lost")
	}
	if !udpRoundTrip(t, d.client, free, 1000) {
		t.Fatal("control: a 1028-byte datagram of a class without bounds was lost")
	}
	if udpRoundTrip(t, d.client, sized, 1000) {
		t.Fatal("a 1028-byte datagram over the class's 300-byte bound passed")
	}
	if cs := d.counters(t); cs.ClassSize.Packets == 0 || cs.FastPath.Packets == 0 {
		t.Errorf("size drops %d, fast path %d: want both", cs.ClassSize.Packets, cs.FastPath.Packets)
	}
}

func udpEcho(t *testing.T, ns testnetns.NS, port int) {
	t.Helper()
	var pc net.PacketConn
	ns.Do(t, func() {
		var err error
		if pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpRoundTrip sends n bytes from a fixed source port (one conntrack flow
// per destination port) and reports whether they came back.
func udpRoundTrip(t *testing.T, ns testnetns.NS, port, n int) bool {
	t.Helper()
	var ok bool
	ns.Do(t, func() {
		c, err := net.DialUDP("udp4", &net.UDPAddr{Port: 40000 + port%1000}, &net.UDPAddr{IP: net.ParseIP(dpServer), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, n)
		for try := 0; try < 3 && !ok; try++ {
			c.SetDeadline(time.Now().Add(400 * time.Millisecond))
			if _, err := c.Write(buf); err != nil {
				continue
			}
			got, err := c.Read(buf)
			ok = err == nil && got == n
		}
	})
	return ok
}

// TestKernelClassRateDropsRepeatsBeforeTheQueue: once a flow of a class
// with a rate (3 per minute) is accepted, new flows from the same source
// to the same service are counted in the kernel, and those over the rate
// are dropped without reaching the queue. A class without a rate lets the
// same burst through (control).
func TestKernelClassRateDropsRepeatsBeforeTheQueue(t *testing.T) {
	m := Marks{Mask: dpMask}
	const limited, free = dpEchoTCP, 9
	d := newDataPath(t, Options{Marks: m, Classes: []Class{{}, {NewFlows: 3, NewFlowPer: time.Minute}, {}}})
	echoServer(t, d.server, limited)
	echoServer(t, d.server, free)
	// The verdicts userspace would give: accepted into class 1 and 2, on
	// each flow's first packet (set between the filter and verdict chains).
	nftFile(t, d.gw, fmt.Sprintf(`table inet verdicts {
	chain forward {
		type filter hook forward priority filter + 5; policy accept;
		tcp dport %d ct state new meta mark set meta mark | %#x
		tcp dport %d ct state new meta mark set meta mark | %#x
	}
}
`, limited, m.Accepted(1), free, m.Accepted(2)))
	opens := func(port int) (ok int) {
		for range 8 {
			d.client.Do(t, func() {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", dpServer, port), 400*time.Millisecond)
				if err == nil {
					ok++
					c.Close()
				}
			})
		}
		return ok
	}
	if n := opens(free); n != 8 {
		t.Fatalf("control: %d of 8 connections of a class without a rate opened", n)
	}
	before := d.counters(t)
	n := opens(limited)
	after := d.counters(t)
	t.Logf("%d of 8 opened; dropped by the class rate %d, queued %d", n, after.ClassRate.Packets, after.Queued.Packets-before.Queued.Packets)
	// The first opening is the one recorded; three more are the burst.
	if n != 4 {
		t.Errorf("%d of 8 connections opened, want 4: the first and a burst of 3", n)
	}
	if after.ClassRate.Packets < 4 {
		t.Errorf("class rate drops %d, want the 4 refused openings", after.ClassRate.Packets)
	}
	if q := after.Queued.Packets - before.Queued.Packets; q > 4 {
		t.Errorf("%d packets queued for 8 openings: the refused ones reached the queue", q)
	}
}

func TestRateLimitUnits(t *testing.T) {
	for _, tc := range []struct {
		n    uint32
		per  time.Duration
		rate uint64
		unit expr.LimitTime
	}{
		{10, time.Second, 10, expr.LimitTimeSecond},
		{3, time.Minute, 3, expr.LimitTimeMinute},
		{100, 10 * time.Second, 10, expr.LimitTimeSecond},
		{100, time.Hour, 100, expr.LimitTimeHour},
		{10, 7 * time.Second, 123429, expr.LimitTimeDay}, // 10/7 s, rounded up per day
	} {
		l := rateLimit(tc.n, tc.per)
		if l.Rate != tc.rate || l.Unit != tc.unit || l.Burst != tc.n || !l.Over || l.Type != expr.LimitTypePkts {
			t.Errorf("%d per %v: %+v, want %d per unit %v, burst %d", tc.n, tc.per, l, tc.rate, tc.unit, tc.n)
		}
	}
}
