package packet

import (
	"net/netip"
	"strconv"
)

// Kind says what the decoder made of a packet. Only KindOK packets carry a
// trustworthy five-tuple; every other kind gets its own explicit verdict in
// the engine, never "treated as port 0".
type Kind uint8

const (
	// KindOK is a complete IPv4 or IPv6 packet whose transport header (TCP,
	// UDP, ICMP, ICMPv6 or an unknown protocol without ports) was read whole.
	KindOK Kind = iota
	// KindNotIP is a frame with no IP header (ARP, LLDP, ...).
	KindNotIP
	// KindFragment is a non-first fragment or a first fragment; the ports
	// of a fragmented datagram cannot be trusted, so the engine drops it.
	KindFragment
	// KindTunnel is IP-in-IP, 6in4, 4in6 or GRE. The outer header is what
	// Src/Dst/Proto hold; the inner header never overwrites it.
	KindTunnel
	// KindTruncated is a packet cut short inside the IP or transport header,
	// or whose IP header claims more bytes than were delivered (a capture's
	// snapshot length, a short queue copy range).
	KindTruncated
	// KindMalformed is a packet whose headers contradict themselves (bad
	// version, header length, total length).
	KindMalformed
)

var kindNames = [...]string{"ok", "not-ip", "fragment", "tunnel", "truncated", "malformed"}

// String returns the kind's stable lower-case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// IP protocol numbers the engine cares about.
const (
	ProtoICMP   uint8 = 1
	ProtoIPIP   uint8 = 4
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoIPv6   uint8 = 41
	ProtoGRE    uint8 = 47
	ProtoICMPv6 uint8 = 58
)

// ProtoName names an IP protocol number the way policies spell services
// ("tcp", "udp", "icmp", "icmpv6", "proto/N"); 0 is "": events without a
// flow leave it unset.
func ProtoName(p uint8) string {
	switch p {
	case 0:
		return ""
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return "proto/" + strconv.Itoa(int(p))
}

// TCP flag bits as they appear in the TCP header.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPAck uint8 = 0x10
)

// Packet is the small, pointer-light summary of one decoded packet that the
// rest of picoseg works on. A Decoder fills it in place; it is reused for
// every packet, so nothing in it may be kept after the verdict.
type Packet struct {
	Kind Kind
	// HasMAC is true when the input had an Ethernet (or SLL) header that
	// named the source hardware address.
	HasMAC bool
	SrcMAC [6]byte
	DstMAC [6]byte
	VLAN   uint16 // outermost 802.1Q VLAN ID, 0 when untagged

	Src, Dst netip.Addr // outer IP header addresses
	Proto    uint8      // outer IP protocol (IPv6: the last extension header's next header)
	// Length is the IP total length (IPv4) or 40 + payload length (IPv6):
	// the size the packet_size bounds are judged against.
	Length  uint16
	SrcPort uint16 // TCP/UDP ports; 0 for other protocols
	DstPort uint16
	// ICMPType and ICMPCode are set for ICMP and ICMPv6.
	ICMPType uint8
	ICMPCode uint8
	TCPFlags uint8 // TCP flag byte (FIN, SYN, RST, PSH, ACK, ...)
	// ICMPID is the identifier of an ICMP or ICMPv6 query or reply
	// (ICMPRoleOf): with the query's kind it tells one query flow from
	// another between the same two hosts.
	ICMPID uint16
	// Quoted is what an ICMP or ICMPv6 error quotes; an error is judged
	// by the flow of the packet it quotes.
	Quoted Quote
	// Seq is a TCP segment's sequence number.
	Seq uint32
	// Payload is the TCP or UDP payload as delivered: it points into the
	// decoded bytes and may end before the payload does (a capture's
	// snapshot length, the queue's copy range). PayloadLen is the
	// payload's length on the wire, from the IP and transport headers.
	Payload    []byte
	PayloadLen int
}

// IsIPv4 reports whether the outer header is IPv4.
func (p *Packet) IsIPv4() bool { return p.Src.Is4() }
