package packet

import (
	"encoding/binary"
	"net/netip"
)

// ICMPRole says what an ICMP or ICMPv6 message is to the flows around it.
type ICMPRole uint8

const (
	// ICMPOther is every message that is neither a query nor an error:
	// IPv6 neighbour discovery, router solicitation and advertisement,
	// multicast listener messages, and types picoseg does not know. They
	// are judged per address pair, as any protocol without ports.
	ICMPOther ICMPRole = iota
	// ICMPRequest opens a query: echo, timestamp, information, address
	// mask, node information. Its sender is the flow's opener.
	ICMPRequest
	// ICMPReply answers a request; it opens nothing.
	ICMPReply
	// ICMPError reports a failure of another packet, which it quotes
	// (destination unreachable, time exceeded, parameter problem, packet
	// too big, source quench, redirect).
	ICMPError
)

// ICMPRoleOf returns the role of an ICMP (proto 1) or ICMPv6 (proto 58)
// message of type typ, and for queries the request type of its pair, which
// names the query's kind (an echo reply's kind is echo request).
func ICMPRoleOf(proto, typ uint8) (role ICMPRole, kind uint8) {
	switch proto {
	case ProtoICMP:
		switch typ {
		case 8, 13, 15, 17: // echo, timestamp, information, address mask
			return ICMPRequest, typ
		case 0:
			return ICMPReply, 8
		case 14, 16, 18:
			return ICMPReply, typ - 1
		case 3, 4, 5, 11, 12:
			return ICMPError, 0
		}
	case ProtoICMPv6:
		switch typ {
		case 128, 139: // echo, node information query
			return ICMPRequest, typ
		case 129, 140:
			return ICMPReply, typ - 1
		case 1, 2, 3, 4:
			return ICMPError, 0
		}
	}
	return ICMPOther, 0
}

// Quote is the packet an ICMP error quotes, as far as the error carries it:
// its IP header and the first 8 bytes of its transport header, which is all
// RFC 792 and RFC 4443 promise. Valid is false when the quote is cut short,
// malformed, a fragment after the first, or of another IP version than the
// error: such an error belongs to no flow anyone can name.
type Quote struct {
	Valid    bool
	Src, Dst netip.Addr
	Proto    uint8
	SrcPort  uint16 // TCP and UDP; 0 otherwise
	DstPort  uint16
	ICMPType uint8  // a quoted ICMP or ICMPv6 message
	ICMPID   uint16 // the quoted query's identifier
}

// icmpHeaderLen is where an ICMP or ICMPv6 error's quote begins, and where
// a query's body begins: type, code, checksum, then 4 bytes that hold a
// query's identifier and sequence number.
const icmpHeaderLen = 8

// readICMP fills the query identifier or the quote of an ICMP message whose
// bytes, from its type on, are msg.
func readICMP(p *Packet, msg []byte, v4 bool) {
	role, _ := ICMPRoleOf(p.Proto, p.ICMPType)
	switch role {
	case ICMPRequest, ICMPReply:
		if len(msg) >= 6 {
			p.ICMPID = binary.BigEndian.Uint16(msg[4:6])
		}
	case ICMPError:
		if len(msg) > icmpHeaderLen {
			readQuote(&p.Quoted, msg[icmpHeaderLen:], v4)
		}
	}
}

// readQuote reads the quoted header in b into out, which it leaves zero
// unless the quote is valid. It allocates nothing.
func readQuote(out *Quote, b []byte, v4 bool) {
	var q Quote
	var rest []byte
	if v4 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return
		}
		// A later fragment quotes no transport header at all.
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return
		}
		q.Src = netip.AddrFrom4([4]byte(b[12:16]))
		q.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		q.Proto, rest = b[9], b[ihl:]
	} else {
		// Extension headers are not walked: a quote whose transport
		// header hides behind one names no flow we can check.
		if len(b) < 40 || b[0]>>4 != 6 {
			return
		}
		q.Src = netip.AddrFrom16([16]byte(b[8:24]))
		q.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		q.Proto, rest = b[6], b[40:]
	}
	if len(rest) < 8 {
		return
	}
	switch q.Proto {
	case ProtoTCP, ProtoUDP:
		q.SrcPort = binary.BigEndian.Uint16(rest[0:2])
		q.DstPort = binary.BigEndian.Uint16(rest[2:4])
	case ProtoICMP, ProtoICMPv6:
		q.ICMPType = rest[0]
		q.ICMPID = binary.BigEndian.Uint16(rest[4:6])
	}
	q.Valid = true
	*out = q
}

// QuotedPacket returns, in out, the packet an error quotes in the form the
// flow table keys it by. It reports false when p quotes nothing valid.
func (p *Packet) QuotedPacket(out *Packet) bool {
	q := &p.Quoted
	if !q.Valid {
		return false
	}
	*out = Packet{Kind: KindOK, Src: q.Src, Dst: q.Dst, Proto: q.Proto, SrcPort: q.SrcPort, DstPort: q.DstPort, ICMPType: q.ICMPType, ICMPID: q.ICMPID}
	return true
}
