package policy

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The port index must name, for every port, the first rule whose range
// holds it: checked against a scan over the ranges on random overlaps.
func TestPortIndexAgreesWithScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 300; round++ {
		var ranges []portRange
		for i := r.IntN(40); i >= 0; i-- {
			lo := uint16(r.IntN(200))
			if r.IntN(10) == 0 {
				lo = uint16(65535 - r.IntN(3))
			}
			hi := lo + uint16(r.IntN(int(65535-lo)+1)%60)
			ranges = append(ranges, portRange{lo: lo, hi: hi, rule: int32(r.IntN(50))})
		}
		idx := buildPortIndex(ranges)
		for _, port := range append([]uint16{0, 65535, 65534}, randPorts(r, 300)...) {
			want := int32(-1)
			for _, pr := range ranges {
				if port >= pr.lo && port <= pr.hi && (want < 0 || pr.rule < want) {
					want = pr.rule
				}
			}
			if got := idx.lookup(port); got != want {
				t.Fatalf("round %d port %d: index says rule %d, scan says %d (ranges %v)", round, port, got, want, ranges)
			}
		}
	}
}

func randPorts(r *rand.Rand, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(r.IntN(260))
	}
	return out
}

func TestPrefixSetAgreesWithScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var set prefixSet
	var all []netip.Prefix
	for i := 0; i < 200; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
		p, _ := a.Prefix([]int{0, 8, 16, 24, 30, 32}[r.IntN(6)])
		all = append(all, p)
		set.add(p, int32(i))
	}
	for i := 0; i < 2000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
		var want []int32
		best, bestBits := []int32(nil), -1
		for j, p := range all {
			if p.Contains(a) {
				want = append(want, int32(j))
				if p.Bits() > bestBits {
					best, bestBits = []int32{int32(j)}, p.Bits()
				} else if p.Bits() == bestBits {
					best = append(best, int32(j))
				}
			}
		}
		got := set.appendAll(nil, a)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: all prefixes %v, want %v", a, got, want)
		}
		l, ok := set.longest(a)
		if ok != (best != nil) || !slices.Equal(l, best) {
			t.Fatalf("%s: longest %v, want %v", a, l, best)
		}
	}
}
