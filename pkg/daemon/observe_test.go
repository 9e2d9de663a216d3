package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
)

// TestSightingsCountEveryFlow feeds one queue runs of new flows: the
// camera's burst, a second sender in the middle of it, a reload, a run
// longer than sightingSpan. Every flow must be counted once the sweep has
// flushed, the first sighting of a device must be told (and alerted) at
// once, and the last-seen time must be the latest flow's.
func TestSightingsCountEveryFlow(t *testing.T) {
	l := loadText(t, policyText)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	inv, err := inventory.New(inventory.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	var alerts []alert.Alert
	devs := newDevices(inv, inventory.NewIdentifier(l.Policy), func(a alert.Alert) { alerts = append(alerts, a) }, 2)
	cam := &packet.Packet{Src: netip.MustParseAddr("10.77.0.11"), HasMAC: true, SrcMAC: [6]byte{2, 0, 0, 0, 0, 0x11}}
	other := &packet.Packet{Src: netip.MustParseAddr("10.77.0.50"), HasMAC: true, SrcMAC: [6]byte{2, 0, 0, 0, 0, 0x50}}
	flows := func(addr string) (uint64, time.Time) {
		for _, d := range inv.Devices() {
			for _, a := range d.Addrs {
				if a == addr {
					return d.Flows, d.LastSeen
				}
			}
		}
		return 0, time.Time{}
	}

	devs.flowStarted(0, cam, t0)
	if n, _ := flows("10.77.0.11"); n != 1 || len(alerts) != 1 || alerts[0].Type != alert.TypeNewDevice {
		t.Fatalf("first flow: inventory counts %d flows, alerts %+v; want it told at once", n, alerts)
	}
	at := t0
	for i := 0; i < 99; i++ {
		at = at.Add(time.Millisecond)
		devs.flowStarted(0, cam, at)
		if i == 49 {
			// Another sender on the other queue, and one on the same queue:
			// each is told at once, and the camera's run goes on.
			devs.flowStarted(1, other, at)
			devs.flowStarted(0, other, at)
		}
	}
	if n, _ := flows("10.77.0.50"); n != 2 || len(alerts) != 2 {
		t.Fatalf("second sender: %d flows, %d alerts; want 2 flows told at once and one new_device", n, len(alerts))
	}
	devs.flush()
	if n, last := flows("10.77.0.11"); n != 100 || !last.Equal(at) {
		t.Fatalf("after the flush the camera has %d flows, last seen %v; want 100, %v", n, last, at)
	}

	// A reload starts a new run: the camera's next flow is told at once.
	devs.id.Store(inventory.NewIdentifier(l.Policy))
	devs.flowStarted(0, cam, at.Add(time.Millisecond))
	if n, _ := flows("10.77.0.11"); n != 101 {
		t.Fatalf("after a reload the camera has %d flows, want 101 at once", n)
	}
	// A run is told after sightingSpan even while the sender goes on.
	for i := 1; i <= 30; i++ {
		devs.flowStarted(0, cam, at.Add(time.Duration(i)*100*time.Millisecond))
	}
	if n, _ := flows("10.77.0.11"); n < 120 || n > 131 {
		t.Fatalf("a run of 3 s told %d flows of 131 before any flush; want all but the last run's", n)
	}
	devs.flush()
	if n, _ := flows("10.77.0.11"); n != 131 || len(alerts) != 2 {
		t.Fatalf("camera: %d flows, %d alerts; want 131 and no more alerts", n, len(alerts))
	}
}
