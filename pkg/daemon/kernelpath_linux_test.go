package daemon

import (
	"testing"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/nft"
)

func TestNeighbourWatch(t *testing.T) {
	var w neighbourWatch
	var got []alert.Alert
	raise := func(a alert.Alert) { got = append(got, a) }
	w.check(nft.Counters{}, raise)
	if len(got) != 0 {
		t.Fatalf("zero counters raised %v", got)
	}
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 2}, NDSpoof: nft.Counter{Packets: 1}, ARPFlood: nft.Counter{Packets: 40}}, raise)
	if len(got) != 2 || got[0].Type != alert.TypeARPSpoof || got[0].Count != 3 || got[1].Type != alert.TypeARPFlood || got[1].Count != 40 {
		t.Fatalf("alerts %+v, want arp_spoof x3 and arp_flood x40", got)
	}
	got = nil
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 2}, NDSpoof: nft.Counter{Packets: 1}, ARPFlood: nft.Counter{Packets: 40}}, raise)
	if len(got) != 0 {
		t.Errorf("unchanged counters raised %v", got)
	}
	// A reinstalled table counts from zero: the next spoof is one, not
	// lost below the old total.
	w.check(nft.Counters{}, raise)
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 1}}, raise)
	if len(got) != 1 || got[0].Count != 1 {
		t.Errorf("after a reinstall: %+v, want one arp_spoof", got)
	}
}
