package policy

import (
	"slices"
	"sort"
)

// portRange is one rule's destination port range.
type portRange struct {
	lo, hi uint16
	rule   int32
}

// portIndex maps a port to the first rule (lowest index) whose range holds
// it. The port space is cut into intervals at every range boundary; each
// interval keeps its first rule, so a lookup is one binary search however
// many rules overlap.
type portIndex struct {
	starts []uint16 // interval i is [starts[i], starts[i+1])
	rules  []int32  // first rule of interval i, -1 for none
}

func buildPortIndex(ranges []portRange) portIndex {
	if len(ranges) == 0 {
		return portIndex{}
	}
	cuts := []int{0}
	for _, r := range ranges {
		cuts = append(cuts, int(r.lo), int(r.hi)+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	if cuts[len(cuts)-1] > 65535 {
		cuts = cuts[:len(cuts)-1]
	}
	idx := portIndex{starts: make([]uint16, len(cuts)), rules: make([]int32, len(cuts))}
	for i, c := range cuts {
		idx.starts[i] = uint16(c)
		idx.rules[i] = -1
	}
	// Paint intervals in rule order; "next" skips intervals already
	// painted, so each interval is painted once (union-find with path
	// halving): O(n log n) to build even when every range overlaps.
	byRule := slices.Clone(ranges)
	slices.SortStableFunc(byRule, func(a, b portRange) int { return int(a.rule) - int(b.rule) })
	next := make([]int, len(cuts)+1)
	for i := range next {
		next[i] = i
	}
	find := func(i int) int {
		for next[i] != i {
			next[i] = next[next[i]]
			i = next[i]
		}
		return i
	}
	for _, r := range byRule {
		first := idx.find(r.lo)
		last := idx.find(r.hi)
		for i := find(first); i <= last; i = find(i) {
			idx.rules[i] = r.rule
			next[i] = i + 1
		}
	}
	return idx
}

// find returns the interval holding port.
func (x *portIndex) find(port uint16) int {
	return sort.Search(len(x.starts), func(i int) bool { return x.starts[i] > port }) - 1
}

// lookup returns the first rule whose range holds port, or -1.
func (x *portIndex) lookup(port uint16) int32 {
	if len(x.starts) == 0 {
		return -1
	}
	// Hand-written binary search: sort.Search's closure is cheap but this
	// is the hottest loop of the miss path.
	lo, hi := 0, len(x.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.starts[m] <= port {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return x.rules[lo-1]
}
