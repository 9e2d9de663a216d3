package conntrack

import (
	"net/netip"
	"testing"
)

func movedFlow(id uint32, orig, reply uint64) Flow {
	return Flow{Proto: 6, ID: id, Src: netip.MustParseAddr("10.77.0.20"), SrcPort: 40000 + uint16(id),
		Dst: netip.MustParseAddr("52.49.65.150"), DstPort: 443, OrigBytes: orig, ReplyBytes: reply}
}

func TestTrackerMoved(t *testing.T) {
	tr := NewTracker()
	dump := func(flows ...Flow) (got []Moved, vanished int) {
		tr.Begin()
		for i := range flows {
			got = append(got, tr.Flow(&flows[i]))
		}
		return got, tr.End()
	}

	got, vanished := dump(movedFlow(1, 100, 500), movedFlow(2, 10, 0))
	if want := (Moved{Orig: 100, Reply: 500, New: true}); got[0] != want || vanished != 0 {
		t.Fatalf("first dump: %+v, vanished %d; want %+v (a flow never seen counts from zero)", got[0], vanished, want)
	}

	got, vanished = dump(movedFlow(1, 130, 510), movedFlow(3, 7, 7))
	if want := (Moved{Orig: 30, Reply: 10}); got[0] != want {
		t.Errorf("grown: %+v, want %+v", got[0], want)
	}
	if vanished != 1 {
		t.Errorf("flow 2 left the table: vanished %d, want 1", vanished)
	}

	// Someone zeroed the reply counter: that direction counts from zero,
	// the other still by difference.
	got, _ = dump(movedFlow(1, 150, 20), movedFlow(3, 7, 7))
	if want := (Moved{Orig: 20, Reply: 20, Reset: true}); got[0] != want {
		t.Errorf("reset: %+v, want %+v", got[0], want)
	}
	if want := (Moved{}); got[1] != want {
		t.Errorf("idle flow: %+v, want %+v", got[1], want)
	}

	// A flow left out of one dump is forgotten: it counts from zero again.
	dump(movedFlow(3, 7, 7))
	got, _ = dump(movedFlow(1, 160, 25))
	if want := (Moved{Orig: 160, Reply: 25, New: true}); got[0] != want {
		t.Errorf("after a gap: %+v, want %+v", got[0], want)
	}

	// The kernel reused id 1 for another tuple: a new flow, not a reset.
	other := movedFlow(1, 5, 5)
	other.Dst = netip.MustParseAddr("198.51.100.7")
	got, _ = dump(other)
	if want := (Moved{Orig: 5, Reply: 5, New: true}); got[0] != want {
		t.Errorf("reused id: %+v, want %+v", got[0], want)
	}
}
