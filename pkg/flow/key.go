package flow

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/packet"
)

// Key identifies a flow in both directions: the two endpoints are stored in
// a canonical order, so a packet and its reply have the same key. It is
// comparable and holds no pointers, so the garbage collector never scans a
// map of keys.
type Key struct {
	A, B         [16]byte // endpoint addresses (IPv4 as IPv4-mapped IPv6)
	APort, BPort uint16
	Proto        uint8
	// ICMP echo and other port-less protocols keep ports at zero.
}

// KeyOf returns the packet's flow key and whether the packet travels from
// endpoint A to endpoint B.
func KeyOf(p *packet.Packet) (k Key, fromA bool) {
	src, dst := p.Src.As16(), p.Dst.As16()
	sp, dp := p.SrcPort, p.DstPort
	k.Proto = p.Proto
	if less(src, sp, dst, dp) {
		k.A, k.APort, k.B, k.BPort = src, sp, dst, dp
		return k, true
	}
	k.A, k.APort, k.B, k.BPort = dst, dp, src, sp
	return k, false
}

func less(a [16]byte, ap uint16, b [16]byte, bp uint16) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return ap <= bp
}

// Endpoints returns the key's two endpoints.
func (k Key) Endpoints() (a, b netip.AddrPort) {
	return netip.AddrPortFrom(netip.AddrFrom16(k.A).Unmap(), k.APort),
		netip.AddrPortFrom(netip.AddrFrom16(k.B).Unmap(), k.BPort)
}

// hash mixes the key for shard selection. It needs to spread, not to resist
// an adversary: each shard is a Go map, which is seeded per process.
func (k *Key) hash() uint32 {
	h := uint32(2166136261)
	for _, b := range k.A[12:] {
		h = (h ^ uint32(b)) * 16777619
	}
	for _, b := range k.B[12:] {
		h = (h ^ uint32(b)) * 16777619
	}
	h = (h ^ uint32(k.APort)) * 16777619
	h = (h ^ uint32(k.BPort)) * 16777619
	h = (h ^ uint32(k.Proto)) * 16777619
	return h ^ h>>16
}
