package flow

import (
	"encoding/binary"
	"net/netip"

	"github.com/picoseg/picoseg/pkg/packet"
)

// Key identifies a flow in both directions: the two endpoints are stored in
// a canonical order, so a packet and its reply have the same key. It is
// comparable and holds no pointers, so the garbage collector never scans a
// map of keys. Addresses are kept as the two 64-bit halves of their
// 16-byte form (IPv4 as IPv4-mapped IPv6), which makes ordering and
// hashing a few integer operations.
type Key struct {
	AHi, ALo     uint64
	BHi, BLo     uint64
	APort, BPort uint16
	Proto        uint8
}

func halves(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// queryPort marks BPort of an ICMP query flow's key: BPort is then this
// bit with the query's kind, so a query key never equals the key of
// another ICMP message between the same hosts (whose ports are 0).
const queryPort = 0x100

// KeyOf returns the packet's flow key and whether the packet travels from
// endpoint A to endpoint B.
//
// ICMP and ICMPv6 queries (echo, timestamp, ...) are keyed by identifier
// and kind, and their key has a direction: A is the host that sends the
// requests, so a request from B to A (the other side pinging back, with
// the same identifier or another) is another flow, judged on its own.
// Without this a device's own pings would ride on the accept of the pings
// it answers.
func KeyOf(p *packet.Packet) (k Key, fromA bool) {
	sh, sl := halves(p.Src)
	dh, dl := halves(p.Dst)
	sp, dp := p.SrcPort, p.DstPort
	k.Proto = p.Proto
	if p.Proto == packet.ProtoICMP || p.Proto == packet.ProtoICMPv6 {
		if role, kind := packet.ICMPRoleOf(p.Proto, p.ICMPType); role == packet.ICMPRequest || role == packet.ICMPReply {
			k.APort, k.BPort = p.ICMPID, queryPort|uint16(kind)
			if role == packet.ICMPRequest {
				k.AHi, k.ALo, k.BHi, k.BLo = sh, sl, dh, dl
				return k, true
			}
			k.AHi, k.ALo, k.BHi, k.BLo = dh, dl, sh, sl
			return k, false
		}
	}
	if sh < dh || sh == dh && (sl < dl || sl == dl && sp <= dp) {
		k.AHi, k.ALo, k.APort, k.BHi, k.BLo, k.BPort = sh, sl, sp, dh, dl, dp
		return k, true
	}
	k.AHi, k.ALo, k.APort, k.BHi, k.BLo, k.BPort = dh, dl, dp, sh, sl, sp
	return k, false
}

func addrOf(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b).Unmap()
}

// Endpoints returns the key's two endpoints. ICMP has no ports: its
// endpoints have port 0 (see Query for a query's identifier and kind).
func (k Key) Endpoints() (a, b netip.AddrPort) {
	ap, bp := k.APort, k.BPort
	if k.Proto == packet.ProtoICMP || k.Proto == packet.ProtoICMPv6 {
		ap, bp = 0, 0
	}
	return netip.AddrPortFrom(addrOf(k.AHi, k.ALo), ap), netip.AddrPortFrom(addrOf(k.BHi, k.BLo), bp)
}

// Query returns the identifier and kind (the request's ICMP type) of an
// ICMP or ICMPv6 query flow's key, whose endpoint A sends the requests.
func (k Key) Query() (id uint16, kind uint8, ok bool) {
	if (k.Proto != packet.ProtoICMP && k.Proto != packet.ProtoICMPv6) || k.BPort&queryPort == 0 {
		return 0, 0, false
	}
	return k.APort, uint8(k.BPort), true
}

// hash64 mixes the key with the table's secret seed. Its low 4 bits pick
// the shard and the rest the slot. The seed is random per table, so a
// device cannot pick ports that pile its flows into one long probe run.
func (k *Key) hash64(seed uint64) uint64 {
	h := seed ^ k.ALo*0x9e3779b97f4a7c15 ^ k.BLo*0xc2b2ae3d27d4eb4f ^ (k.AHi^k.BHi<<1)*0xbf58476d1ce4e5b9 ^
		(uint64(k.APort)<<32|uint64(k.BPort)<<16|uint64(k.Proto))*0x94d049bb133111eb
	h ^= h >> 31
	h *= 0xd6e8feb86659fd93
	h ^= h >> 32
	return h
}
