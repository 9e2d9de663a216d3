package policy

import (
	"net/netip"
	"slices"
)

// prefixSet maps prefixes to values and finds every prefix that contains an
// address. It keeps one exact-match map per prefix length in use, so a
// lookup costs one masked map probe per distinct length (at most 33 for
// IPv4, 129 for IPv6, and a handful in real policies), whatever the number
// of prefixes.
type prefixSet struct {
	v4, v6 []prefixLevel // longest prefix first
}

type prefixLevel struct {
	bits int
	m    map[netip.Prefix][]int32
}

func (s *prefixSet) add(p netip.Prefix, v int32) {
	p = p.Masked()
	levels := &s.v6
	if p.Addr().Is4() {
		levels = &s.v4
	}
	i := slices.IndexFunc(*levels, func(l prefixLevel) bool { return l.bits == p.Bits() })
	if i < 0 {
		*levels = append(*levels, prefixLevel{bits: p.Bits(), m: map[netip.Prefix][]int32{}})
		slices.SortFunc(*levels, func(a, b prefixLevel) int { return b.bits - a.bits })
		i = slices.IndexFunc(*levels, func(l prefixLevel) bool { return l.bits == p.Bits() })
	}
	(*levels)[i].m[p] = append((*levels)[i].m[p], v)
}

func (s *prefixSet) levels(a netip.Addr) []prefixLevel {
	if a.Is4() {
		return s.v4
	}
	return s.v6
}

// longest returns the values of the longest prefix containing a.
func (s *prefixSet) longest(a netip.Addr) ([]int32, bool) {
	for _, l := range s.levels(a) {
		p, _ := a.Prefix(l.bits)
		if v, ok := l.m[p]; ok {
			return v, true
		}
	}
	return nil, false
}

// appendAll appends the values of every prefix containing a, longest
// prefix first.
func (s *prefixSet) appendAll(dst []int32, a netip.Addr) []int32 {
	for _, l := range s.levels(a) {
		p, _ := a.Prefix(l.bits)
		dst = append(dst, l.m[p]...)
	}
	return dst
}
