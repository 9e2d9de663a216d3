package learn

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/packet"
)

// flowKey names a flow whichever way its packets travel: its two ends in
// a canonical order (a before b). ICMP queries carry their identifier and
// kind where the ports would be, as the engine keys them.
type flowKey struct {
	a, b   netip.Addr
	ap, bp uint16
	proto  uint8
}

// keyOf returns the flow key of p and whether p was sent by the key's a
// end. ok is false for what is no flow of its own: ICMP errors, which
// the engine judges by the flow they quote, and packets it cannot judge
// on their headers.
func keyOf(p *packet.Packet) (k flowKey, fromA, ok bool) {
	if p.Kind != packet.KindOK {
		return flowKey{}, false, false
	}
	sp, dp := p.SrcPort, p.DstPort
	if p.Proto == packet.ProtoICMP || p.Proto == packet.ProtoICMPv6 {
		role, kind := packet.ICMPRoleOf(p.Proto, p.ICMPType)
		switch role {
		case packet.ICMPError:
			return flowKey{}, false, false
		case packet.ICMPRequest, packet.ICMPReply:
			sp, dp = p.ICMPID, uint16(kind)
		}
	}
	src, dst := p.Src.Unmap(), p.Dst.Unmap()
	if c := src.Compare(dst); c < 0 || c == 0 && sp <= dp {
		return flowKey{a: src, b: dst, ap: sp, bp: dp, proto: p.Proto}, true, true
	}
	return flowKey{a: dst, b: src, ap: dp, bp: sp, proto: p.Proto}, false, true
}

// openedBySender says whether the sender of p, the first packet seen of
// its flow, opened the flow as the engine judges it: a packet with SYN
// (a SYN-ACK too: the engine judges it as its sender's opening), and
// anything but an ICMP reply, whose receiver asked. A TCP packet without
// SYN is a flow picked up in the middle (a capture that began late); the
// engine judges it both ways and takes the way that is allowed, so the
// flow is learned for its likely client: the end inside the guarded
// networks when only one is (local reports that), else the end with the
// higher port (the ephemeral one).
func openedBySender(p *packet.Packet, local func(netip.Addr) bool) bool {
	switch p.Proto {
	case packet.ProtoTCP:
		if p.TCPFlags&packet.TCPSyn != 0 {
			return true
		}
		if ls, ld := local(p.Src), local(p.Dst); ls != ld {
			return ls
		}
		return p.SrcPort >= p.DstPort
	case packet.ProtoICMP, packet.ProtoICMPv6:
		role, _ := packet.ICMPRoleOf(p.Proto, p.ICMPType)
		return role != packet.ICMPReply
	}
	return true
}

// flowEnds is a flow's opener and responder, with the ports (or ICMP
// identifier and kind) as the opener sent them.
type flowEnds struct {
	opener, responder netip.Addr
	oport, rport      uint16
	proto             uint8
	// openerIsA says which end of the flow key opened it.
	openerIsA bool
}

func endsOf(k flowKey, openerIsA bool) flowEnds {
	if openerIsA {
		return flowEnds{opener: k.a, responder: k.b, oport: k.ap, rport: k.bp, proto: k.proto, openerIsA: true}
	}
	return flowEnds{opener: k.b, responder: k.a, oport: k.bp, rport: k.ap, proto: k.proto}
}
