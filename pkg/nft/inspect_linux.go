//go:build linux

package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Flows under inspection.
//
// A flow whose rule names an application is read by a checker in
// userspace until it is identified. The checkers read the opener's payload
// and nothing else, so the daemon marks such a flow Inspecting (from a
// packet of the opener only: the verdict chain records the mark from a
// packet in conntrack's original direction and no other), and the kernel
// keeps in the queue only what a checker reads or the engine must see:
//
//   - packets in conntrack's reply direction pass (the responder's
//     handshake, acknowledgements and data), within inspectPackets packets
//     of the whole connection: a responder that keeps talking to a flow
//     that is never identified (a server speaking first on port 443, a
//     one-way tunnel) reaches the queue after that, where the engine's
//     packet budget cuts it as it did before;
//   - the opener's TCP segments that carry exactly no payload (bare ACKs):
//     IPv4 with no options (ihl 5) and a total length of 20 + 4*doff, or
//     IPv6 with TCP right after the fixed header and a payload length of
//     4*doff. nftables compares registers with constants only, so the pair
//     (length, doff) is looked up in a set of the eleven pairs doff 5..15
//     makes. A segment whose length is a bare ACK's with options but whose
//     doff is smaller (12 bytes of data behind a 20-byte header have the
//     length of an ACK with timestamps) is no pair of the set. The length
//     is the IP header's: the kernel trims every packet to it, so no byte
//     behind it reaches the receiver. SYN, FIN and RST are never taken:
//     the engine follows openings and ends.
//
// Everything else of the flow (any payload from the opener, an IPv4 packet
// with options, an IPv6 one with extension headers, a packet GRO merged
// past what the length field holds) goes on to the queue. A SYN on such a
// flow, in either direction, and ICMP errors quoting it were queued by the
// rules for accepted flows already: Inspecting is above FirstAccepted.
const (
	chainInspecting = "inspecting"
	setBareACK4     = "bare_ack4"
	setBareACK6     = "bare_ack6"
	setIDBareACK4   = 4
	setIDBareACK6   = 5
)

// inspectPackets bounds the packets (both ways, conntrack's counters) a
// flow under inspection may exchange before its responder's packets are
// queued again. It is twice the engine's default packet budget: a flow
// identified within that budget never meets it.
const inspectPackets = 24

// TCP flags the bare-ACK rule refuses: openings and ends.
const tcpFlagsOpenClose = 0x01 | tcpFlagSYN | 0x04 // fin, syn, rst

// bareACKSets returns the two constant sets of the (length, doff) pairs of
// TCP segments without payload, for IPv4 and IPv6. A key is two registers:
// the IP header's word holding the length (other bytes masked out), and
// the TCP header's doff byte masked to its upper four bits, zero-padded.
func bareACKSets(t *nftables.Table) []struct {
	set   *nftables.Set
	elems []nftables.SetElement
} {
	// Typed as two marks (four bytes each, what nft can print; integer
	// has no length for it): nft shows the words in host byte order.
	key := nftables.MustConcatSetType(nftables.TypeMark, nftables.TypeMark)
	var v4, v6 []nftables.SetElement
	for doff := 5; doff <= 15; doff++ {
		tcpLen := uint16(4 * doff)
		doffByte := []byte{byte(doff << 4), 0, 0, 0}
		// ip[0:4]: version/ihl, tos (masked), total length.
		l4 := binaryutil.BigEndian.PutUint16(20 + tcpLen)
		v4 = append(v4, nftables.SetElement{Key: concatBytes([]byte{0x45, 0, l4[0], l4[1]}, doffByte)})
		// ip6[4:8]: payload length, next header, hop limit (masked).
		l6 := binaryutil.BigEndian.PutUint16(tcpLen)
		v6 = append(v6, nftables.SetElement{Key: concatBytes([]byte{l6[0], l6[1], unix.IPPROTO_TCP, 0}, doffByte)})
	}
	mk := func(name string, id uint32) *nftables.Set {
		return &nftables.Set{Table: t, ID: id, Name: name, KeyType: key, Concatenation: true, Constant: true}
	}
	return []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{mk(setBareACK4, setIDBareACK4), v4}, {mk(setBareACK6, setIDBareACK6), v6}}
}

func concatBytes(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }

// addInspectingChain adds the sets and the chain that the forward and
// input chains jump to for a flow marked Inspecting (inspectingJump).
// Packets it does not accept return to the caller and reach the queue.
func addInspectingChain(nl *nftables.Conn, t *nftables.Table) *nftables.Chain {
	for _, s := range bareACKSets(t) {
		_ = nl.AddSet(s.set, s.elems)
	}
	return nl.AddChain(&nftables.Chain{Name: chainInspecting, Table: t})
}

// inspectingJump is the forward and input chains' rule for flows under
// inspection: `ct mark & mask == inspecting jump inspecting`.
func inspectingJump(m Marks) rule {
	return rule{"", concat(
		ctMarkField(m),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(m.Inspecting())},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: chainInspecting},
	)}
}

// ctDirection values (enum ip_conntrack_dir).
const (
	ctDirOriginal = 0
	ctDirReply    = 1
)

// inspectingRules are the rules of the inspecting chain.
func inspectingRules() []rule {
	return []rule{
		{"reply on a flow under inspection: no checker reads it", concat(
			&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ctDirReply}},
			ctStateIs(expr.CtStateBitESTABLISHED),
			&expr.Ct{Key: expr.CtKeyPKTS, Register: 1},
			// Counters are host-order numbers; compared big-endian.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint64(inspectPackets)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		)},
		bareACKRule(unix.NFPROTO_IPV4, 0, []byte{0xff, 0, 0xff, 0xff}, setBareACK4, setIDBareACK4),
		bareACKRule(unix.NFPROTO_IPV6, 4, []byte{0xff, 0xff, 0xff, 0}, setBareACK6, setIDBareACK6),
	}
}

// bareACKRule accepts the opener's TCP segments without payload of one
// family: `meta nfproto F meta l4proto tcp ct direction original tcp
// flags & (fin|syn|rst) == 0 @nh,off,32 & lenMask . @th,96,8 & 0xf0 @set
// accept`.
func bareACKRule(family byte, off uint32, lenMask []byte, set string, setID uint32) rule {
	return rule{"opener's segment without payload on a flow under inspection", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ctDirOriginal}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagsOpenClose}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
		&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: reg32x0, DestRegister: reg32x0, Len: 4, Mask: lenMask, Xor: []byte{0, 0, 0, 0}},
		// A one-byte load zeroes the rest of its register: the key's
		// padding is always zero.
		&expr.Payload{DestRegister: reg32x1, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 1},
		&expr.Bitwise{SourceRegister: reg32x1, DestRegister: reg32x1, Len: 1, Mask: []byte{0xf0}, Xor: []byte{0}},
		&expr.Lookup{SourceRegister: reg32x0, SetName: set, SetID: setID},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}}
}

// inspectingVerdictRule keeps the Inspecting mark of a packet in
// conntrack's reply direction out of the conntrack mark: `meta mark & mask
// == inspecting ct direction reply meta mark set meta mark & ~mask
// accept`. The kernel passes a flow's reply direction unread while it is
// inspected, so that direction must be the one whose payload is not read.
// The daemon gives the mark only to its opener's packets, but its opener
// is the side it saw first, and conntrack's the side the kernel saw first:
// after a restart, or with the queue bypassed, they may differ. Recorded
// only from an original-direction packet, the two agree.
func inspectingVerdictRule(m Marks) rule {
	return rule{"", concat(
		metaMarkField(m),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(m.Inspecting())},
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ctDirReply}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^m.Mask), Xor: nativeU32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
		&expr.Verdict{Kind: expr.VerdictAccept},
	)}
}
