package inventory

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/picoseg/picoseg/pkg/conntrack"
)

// lan accepts the 10.77.0.0/24 devices and nothing else.
func lan(a netip.Addr) (Observation, bool) {
	return Observation{Zone: "iot"}, netip.MustParsePrefix("10.77.0.0/24").Contains(a)
}

func ctFlow(id uint32, src string, sport uint16, dst string, dport uint16, orig, reply uint64) conntrack.Flow {
	return conntrack.Flow{
		Proto: 6, ID: id,
		Src: addr(src), SrcPort: sport, Dst: addr(dst), DstPort: dport,
		OrigBytes: orig, ReplyBytes: reply, OrigPackets: 1, ReplyPackets: 1,
	}
}

func TestCounter(t *testing.T) {
	inv, clk := newInv(t, Options{})
	c := NewCounter(inv)
	totals := func() map[string][3]uint64 {
		out := map[string][3]uint64{}
		for _, d := range inv.Devices() {
			out[d.Addrs[0]] = [3]uint64{d.BytesUp, d.BytesDown, d.Flows}
		}
		return out
	}
	const cloud, nvr = "52.49.65.150", "10.77.0.2"

	// Baseline: what flows moved before the counter existed is not counted.
	st := c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 1000, 5000),
	}, clk.Now(), lan)
	if st != (ApplyStats{Flows: 1}) || len(inv.Devices()) != 0 {
		t.Fatalf("baseline: %+v, devices %v", st, inv.Devices())
	}

	clk.Advance(10 * time.Second)
	st = c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 1300, 5100), // +300 up, +100 down
		ctFlow(2, "10.77.0.30", 50000, nvr, 554, 40, 60),       // new: all of it
		ctFlow(3, cloud, 50443, "10.77.0.20", 8080, 70, 700),   // inbound: the plug is the destination
		ctFlow(4, "198.51.100.1", 1, "203.0.113.1", 2, 9, 9),   // nobody's
	}, clk.Now(), lan)
	want := ApplyStats{Flows: 4, New: 3, Observed: 3, Up: 300 + 40 + 700, Down: 100 + 60 + 70}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("second dump (-want +got):\n%s", diff)
	}
	wantTotals := map[string][3]uint64{
		"10.77.0.20": {300 + 700, 100 + 70, 1}, // flow 3 is new; flow 1 was in the baseline
		"10.77.0.30": {40, 60, 1},
	}
	if diff := cmp.Diff(wantTotals, totals()); diff != "" {
		t.Fatalf("totals (-want +got):\n%s", diff)
	}

	// Flow 2 vanishes; flow 1's counters reset (zeroed by someone else):
	// it moved what it shows now. Flow 3 is idle: not observed.
	clk.Advance(10 * time.Second)
	st = c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 20, 30),
		ctFlow(3, cloud, 50443, "10.77.0.20", 8080, 70, 700),
	}, clk.Now(), lan)
	want = ApplyStats{Flows: 2, Vanished: 2, Resets: 1, Observed: 1, Up: 20, Down: 30}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("third dump (-want +got):\n%s", diff)
	}
	if got := totals()["10.77.0.20"]; got != [3]uint64{1020, 200, 1} {
		t.Fatalf("plug after the reset = %v", got)
	}

	// The vanished flow's tuple comes back under a new id: a new flow,
	// counted from zero.
	clk.Advance(10 * time.Second)
	st = c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 20, 30),
		ctFlow(3, cloud, 50443, "10.77.0.20", 8080, 70, 700),
		ctFlow(9, "10.77.0.30", 50000, nvr, 554, 5, 6),
	}, clk.Now(), lan)
	if st.New != 1 || st.Vanished != 0 || st.Observed != 1 {
		t.Fatalf("fourth dump: %+v", st)
	}
	if got := totals()["10.77.0.30"]; got != [3]uint64{45, 66, 2} {
		t.Fatalf("camera = %v", got)
	}
	var cam Device
	for _, d := range inv.Devices() {
		if d.Addrs[0] == "10.77.0.30" {
			cam = d
		}
	}
	if !cam.LastSeen.Equal(clk.Now()) || cam.Zone != "iot" {
		t.Errorf("camera = %+v; want last seen now, in zone iot", cam)
	}
}

// TestCounterNoAccounting: without conntrack accounting the counters are
// all 0 and only new flows are observed.
func TestCounterNoAccounting(t *testing.T) {
	inv, clk := newInv(t, Options{})
	c := NewCounter(inv)
	c.Apply(nil, clk.Now(), lan)
	for range 3 {
		st := c.Apply([]conntrack.Flow{ctFlow(1, "10.77.0.20", 1, "10.77.0.2", 2, 0, 0)}, clk.Now(), lan)
		if st.Up != 0 || st.Down != 0 {
			t.Fatalf("bytes without accounting: %+v", st)
		}
	}
	devs := inv.Devices()
	if len(devs) != 1 || devs[0].Flows != 1 || devs[0].BytesUp != 0 {
		t.Fatalf("devices = %+v", devs)
	}
}

// A port forward's bytes belong to the device it forwards to: conntrack's
// original tuple names the gateway's address, the reply tuple the device.
func TestCounterPortForward(t *testing.T) {
	inv, clk := newInv(t, Options{})
	c := NewCounter(inv)
	c.Apply(nil, clk.Now(), lan)
	fwd := ctFlow(1, "198.51.100.2", 40000, "198.51.100.1", 8080, 500, 90000)
	fwd.ReplySrc, fwd.ReplySrcPort = addr("10.77.0.30"), 80
	st := c.Apply([]conntrack.Flow{fwd}, clk.Now(), lan)
	if st.Observed != 1 {
		t.Fatalf("forwarded flow not observed: %+v", st)
	}
	devs := inv.Devices()
	if len(devs) != 1 || devs[0].Addrs[0] != "10.77.0.30" || devs[0].BytesUp != 90000 || devs[0].BytesDown != 500 {
		t.Fatalf("devices = %+v; want the camera, 90000 bytes up (its answers), 500 down", devs)
	}
}

// TestCounterSent: Sent hears of the devices that sent bytes since the
// previous dump, by the address they used, and not of those that only
// received or stayed idle.
func TestCounterSent(t *testing.T) {
	inv, clk := newInv(t, Options{})
	c := NewCounter(inv)
	var sent []string
	c.Sent = func(f *conntrack.Flow, a netip.Addr, now time.Time) {
		sent = append(sent, a.String())
		if !now.Equal(clk.Now()) {
			t.Errorf("Sent at %v, want %v", now, clk.Now())
		}
	}
	const cloud = "52.49.65.150"
	c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 1000, 5000),
		ctFlow(2, "10.77.0.30", 40000, cloud, 443, 1000, 5000),
		ctFlow(3, cloud, 50443, "10.77.0.40", 8080, 10, 10),
	}, clk.Now(), lan)
	if len(sent) != 0 {
		t.Fatalf("the baseline dump reported %v", sent)
	}
	clk.Advance(10 * time.Second)
	c.Apply([]conntrack.Flow{
		ctFlow(1, "10.77.0.20", 40000, cloud, 443, 1300, 5000), // sent 300
		ctFlow(2, "10.77.0.30", 40000, cloud, 443, 1000, 5200), // only received
		ctFlow(3, cloud, 50443, "10.77.0.40", 8080, 10, 90),    // the plug (destination) answered 80
	}, clk.Now(), lan)
	if diff := cmp.Diff([]string{"10.77.0.20", "10.77.0.40"}, sent); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
}
