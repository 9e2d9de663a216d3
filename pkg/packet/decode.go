package packet

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Limits on header chains. A frame that needs more is called malformed: a
// legitimate IoT packet never does, and an unbounded walk would let one
// packet cost arbitrary time or grow the decoded-layer slice (an allocation).
const (
	maxVLANTags         = 4 // QinQ is 2; allow a little slack
	maxIPv6ExtHeaders   = 8
	decodedLayersCap    = 16 // Ethernet + tags + IP + transport + payload, with room
	icmpv4MinHeaderSize = 8  // RFC 792: type, code, checksum and 4 more bytes in every message
	icmpv6MinHeaderSize = 4  // RFC 4443 §2.1: type, code, checksum; the body depends on the type
)

// kindError is what the guarded layers below return instead of gopacket's
// formatted errors: a Kind fits in a byte, so returning it as an error does
// not allocate, and it says directly what the packet is.
type kindError Kind

var _ error = kindError(0)

func (e kindError) Error() string { return "packet: " + Kind(e).String() }

// Decoder decodes packets into a Packet. Not safe for concurrent use; one
// per goroutine. The zero value is not usable; call NewDecoder.
type Decoder struct {
	eth   ethernetLayer
	dot1q dot1qLayer
	ip4   ipv4Layer
	ip6   ipv6Layer
	tcp   tcpLayer
	udp   udpLayer
	icmp4 icmpv4Layer
	icmp6 icmpv6Layer
	body  gopacket.Payload

	fromEthernet *gopacket.DecodingLayerParser
	fromIPv4     *gopacket.DecodingLayerParser
	fromIPv6     *gopacket.DecodingLayerParser

	decoded []gopacket.LayerType

	// Snapped says the caller's bytes may end before the packet does: the
	// capture's snapshot length or NFQUEUE's copy range cut the payload
	// off. A packet whose IP and transport headers are whole is then
	// judged (KindOK) although its IP length claims more bytes than were
	// delivered; only a cut inside the headers is KindTruncated. Set it
	// only when the cut is known to be the capturer's: on the kernel path
	// the IP stack has checked the length against the real packet before
	// any hook sees it; in a capture, the record's wire length says so.
	Snapped bool
}

// NewDecoder returns a Decoder ready for use. Everything it needs per packet
// is allocated here, once.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, decodedLayersCap)}
	// One sparse container (decoders indexed by layer type: no map
	// lookups), shared read-only by the three parsers, which differ only
	// in the layer they start with.
	var layerSet gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{
		&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.tcp, &d.udp, &d.icmp4, &d.icmp6, &d.body,
	} {
		layerSet = layerSet.Put(l)
	}
	d.fromEthernet = newParser(layers.LayerTypeEthernet, layerSet)
	d.fromIPv4 = newParser(layers.LayerTypeIPv4, layerSet)
	d.fromIPv6 = newParser(layers.LayerTypeIPv6, layerSet)
	return d
}

func newParser(first gopacket.LayerType, layerSet gopacket.DecodingLayerContainer) *gopacket.DecodingLayerParser {
	p := gopacket.NewDecodingLayerParser(first)
	p.SetDecodingLayerContainer(layerSet)
	// Layers we do not decode (ARP, DNS, ...) end the walk without an error;
	// decide() then looks at what was and was not decoded.
	p.IgnoreUnsupported = true
	return p
}

// DecodeEthernet decodes a frame that starts with an Ethernet header. 802.1Q
// tags are allowed, stacked (QinQ, 0x88a8) too; VLAN holds the outermost ID.
func (d *Decoder) DecodeEthernet(data []byte, p *Packet) {
	*p = Packet{}
	if len(data) >= 12 {
		// The MACs are known even when the rest of the frame is cut short.
		p.HasMAC = true
		copy(p.DstMAC[:], data[0:6])
		copy(p.SrcMAC[:], data[6:12])
	}
	if len(data) >= 18 {
		if t := layers.EthernetType(binary.BigEndian.Uint16(data[12:14])); t == layers.EthernetTypeDot1Q || t == layers.EthernetTypeQinQ {
			p.VLAN = binary.BigEndian.Uint16(data[14:16]) & 0x0fff
		}
	}
	d.run(d.fromEthernet, data, p)
}

// DecodeIP decodes a packet that starts with the IPv4 or IPv6 header, as
// NFQUEUE and raw-IP captures deliver it. The version nibble decides.
func (d *Decoder) DecodeIP(data []byte, p *Packet) {
	*p = Packet{}
	if !d.fastIPv4(data, p) {
		d.decodeIP(data, p)
	}
}

// fastIPv4 decodes the packets new flows start with, a whole IPv4 UDP
// datagram or TCP segment with a 20-byte IP header and no fragment,
// without the layer walk: the layer parser's calls through interfaces cost
// as much as the rest of judging a flow's first packet. It reports false,
// having written nothing, for anything else (IPv6, options, fragments,
// other protocols, any length that does not add up, TCP options that do
// not parse), which the walk decodes. What it fills in is what the walk
// would (a test compares the two on mutated and random packets).
func (d *Decoder) fastIPv4(data []byte, p *Packet) bool {
	// 0x45: version 4, IHL 5. Flags and offset: only DF (0x40) may be set
	// (the walk calls MF or any offset a fragment, and keeps the reserved
	// bit to itself).
	if len(data) < 28 || data[0] != 0x45 || data[6]&^0x40 != 0 || data[7] != 0 {
		return false
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total < 28 || (len(data) < total && !d.Snapped) {
		return false
	}
	ip := data[20:min(len(data), total)] // what the IP header says it carries, as delivered
	switch data[9] {
	case ProtoUDP:
		udpLen := int(binary.BigEndian.Uint16(ip[4:6]))
		if udpLen < 8 || udpLen > total-20 {
			return false
		}
		p.PayloadLen = udpLen - 8
		p.Payload = ip[8:min(udpLen, len(ip))]
	case ProtoTCP:
		if len(ip) < 20 {
			return false
		}
		off := int(ip[12]>>4) * 4
		if off < 20 || off > len(ip) || !tcpOptionsParse(ip[20:off]) {
			return false
		}
		p.TCPFlags = ip[13]
		p.Seq = binary.BigEndian.Uint32(ip[4:8])
		p.PayloadLen = max(0, total-20-off)
		p.Payload = ip[off:]
		p.Payload = p.Payload[:min(len(p.Payload), p.PayloadLen)]
	default:
		return false
	}
	p.Kind = KindOK
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	p.Proto = data[9]
	p.Length = uint16(total)
	p.SrcPort = binary.BigEndian.Uint16(ip[0:2])
	p.DstPort = binary.BigEndian.Uint16(ip[2:4])
	return true
}

// tcpOptionsParse reports whether TCP options parse as layers.TCP parses
// them: an end-of-list ends them, a no-op is one byte, any other option
// has a length of at least 2 that stays inside the header.
func tcpOptionsParse(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return true
		case 1:
			opts = opts[1:]
		default:
			if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
				return false
			}
			opts = opts[opts[1]:]
		}
	}
	return true
}

func (d *Decoder) decodeIP(data []byte, p *Packet) {
	if len(data) == 0 {
		p.Kind = KindTruncated
		return
	}
	switch data[0] >> 4 {
	case 4:
		d.run(d.fromIPv4, data, p)
	case 6:
		d.run(d.fromIPv6, data, p)
	default:
		p.Kind = KindMalformed
	}
}

// ARPHRD_ETHER: the hardware type of a cooked-capture header whose address
// is an Ethernet MAC.
const arphrdEther = 1

// DecodeLinuxSLL decodes a Linux cooked capture (v1, 16-byte header) frame.
// The cooked header names only the sender's address; it becomes SrcMAC when
// it is a 6-byte Ethernet address.
func (d *Decoder) DecodeLinuxSLL(data []byte, p *Packet) {
	*p = Packet{}
	const hdrLen = 16
	if len(data) < hdrLen {
		p.Kind = KindTruncated
		return
	}
	hwType := binary.BigEndian.Uint16(data[2:4])
	addrLen := binary.BigEndian.Uint16(data[4:6])
	proto := layers.EthernetType(binary.BigEndian.Uint16(data[14:16]))
	d.decodeCooked(data[hdrLen:], proto, hwType, addrLen, data[6:14], p)
}

// DecodeLinuxSLL2 decodes a Linux cooked capture v2 (20-byte header) frame,
// as `tcpdump -i any` writes with newer libpcap.
func (d *Decoder) DecodeLinuxSLL2(data []byte, p *Packet) {
	*p = Packet{}
	const hdrLen = 20
	if len(data) < hdrLen {
		p.Kind = KindTruncated
		return
	}
	proto := layers.EthernetType(binary.BigEndian.Uint16(data[0:2]))
	hwType := binary.BigEndian.Uint16(data[8:10])
	addrLen := uint16(data[11])
	d.decodeCooked(data[hdrLen:], proto, hwType, addrLen, data[12:20], p)
}

func (d *Decoder) decodeCooked(rest []byte, proto layers.EthernetType, hwType, addrLen uint16, addr []byte, p *Packet) {
	if hwType == arphrdEther && addrLen == 6 {
		p.HasMAC = true
		copy(p.SrcMAC[:], addr[:6])
	}
	// libpcap re-inserts 802.1Q tags after the cooked header when the
	// kernel had stripped them; walk them like Ethernet would.
	for tags := 0; proto == layers.EthernetTypeDot1Q || proto == layers.EthernetTypeQinQ; tags++ {
		if tags == maxVLANTags {
			p.Kind = KindMalformed
			return
		}
		if len(rest) < 4 {
			p.Kind = KindTruncated
			return
		}
		if tags == 0 {
			p.VLAN = binary.BigEndian.Uint16(rest[0:2]) & 0x0fff
		}
		proto = layers.EthernetType(binary.BigEndian.Uint16(rest[2:4]))
		rest = rest[4:]
	}
	d.decodeIPByEthertype(rest, proto, p)
}

// decodeIPByEthertype decodes rest as the IP version the link header named.
// A header that names one version but carries the other is malformed: two
// parsers of the same packet must not disagree on what it is.
func (d *Decoder) decodeIPByEthertype(rest []byte, proto layers.EthernetType, p *Packet) {
	var want byte
	switch proto {
	case layers.EthernetTypeIPv4:
		want = 4
	case layers.EthernetTypeIPv6:
		want = 6
	default:
		p.Kind = KindNotIP
		return
	}
	if len(rest) > 0 && rest[0]>>4 != want {
		p.Kind = KindMalformed
		return
	}
	d.decodeIP(rest, p)
}

// BSD address families seen in DLT_NULL / DLT_LOOP headers. AF_INET6 differs
// between systems; Linux (10) is included for captures written there.
const (
	afINET          = 2
	afINET6Linux    = 10
	afINET6NetBSD   = 24 // also OpenBSD
	afINET6FreeBSD  = 28 // also DragonFly
	afINET6Darwin   = 30
	loopbackHdrSize = 4
)

// DecodeLoopback decodes a BSD loopback frame: a 4-byte address family and
// then the IP packet. DLT_NULL stores the family in the capturing host's
// byte order and LINKTYPE_LOOP in network order; both are accepted, since a
// family is always below 2^16 and so only one reading of the word is small.
func (d *Decoder) DecodeLoopback(data []byte, p *Packet) {
	*p = Packet{}
	if len(data) < loopbackHdrSize {
		p.Kind = KindTruncated
		return
	}
	family := binary.LittleEndian.Uint32(data[0:4])
	if family > 0xffff {
		family = binary.BigEndian.Uint32(data[0:4])
	}
	switch family {
	case afINET:
		d.decodeIPByEthertype(data[loopbackHdrSize:], layers.EthernetTypeIPv4, p)
	case afINET6Linux, afINET6NetBSD, afINET6FreeBSD, afINET6Darwin:
		d.decodeIPByEthertype(data[loopbackHdrSize:], layers.EthernetTypeIPv6, p)
	default:
		p.Kind = KindNotIP
	}
}

// run drives one DecodingLayerParser over data and turns what it decoded
// into p.
func (d *Decoder) run(parser *gopacket.DecodingLayerParser, data []byte, p *Packet) {
	d.dot1q.tags = 0
	d.ip4.hdr, d.ip4.short = nil, false
	d.ip6.hdr, d.ip6.short = nil, false
	d.icmp4.msg, d.icmp6.msg = nil, nil
	err := parser.DecodeLayers(data, &d.decoded)
	d.decide(err, p)
}

// decide fills p from the layers the parser decoded and picks the Kind. The
// order of the checks is the precedence of the kinds: malformed and
// truncated first (nothing in the packet can be trusted), then fragment and
// tunnel (the outer header is whole but what follows it is not a transport
// header we may judge), then a transport header that is missing.
func (d *Decoder) decide(err error, p *Packet) {
	f := d.readLayers(p)

	// The addresses are read even when a later check fails, so that a
	// rejected packet can still be logged with where it came from.
	switch {
	case d.ip4.hdr != nil:
		p.Src = netip.AddrFrom4([4]byte(d.ip4.hdr[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(d.ip4.hdr[16:20]))
	case d.ip6.hdr != nil:
		p.Src = netip.AddrFrom16([16]byte(d.ip6.hdr[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(d.ip6.hdr[24:40]))
	}

	p.Kind = d.kind(err, p, &f)
	if p.Kind != KindOK {
		// Ports and flags of a packet that is not KindOK are not a
		// five-tuple anyone should act on; the addresses are kept for
		// logging.
		p.SrcPort, p.DstPort, p.TCPFlags, p.ICMPType, p.ICMPCode = 0, 0, 0, 0, 0
		return
	}
	switch p.Proto {
	case ProtoTCP:
		p.Seq = d.tcp.Seq
		p.PayloadLen = max(0, f.ipPayloadLen-int(d.tcp.DataOffset)*4)
		p.Payload = d.tcp.Payload[:min(len(d.tcp.Payload), p.PayloadLen)]
	case ProtoUDP:
		p.PayloadLen = max(0, int(d.udp.Length)-8)
		p.Payload = d.udp.Payload[:min(len(d.udp.Payload), p.PayloadLen)]
	case ProtoICMP:
		readICMP(p, d.icmp4.msg, true)
	case ProtoICMPv6:
		readICMP(p, d.icmp6.msg, false)
	}
}

// layerFacts is what the decoded layers say beyond the fields of a Packet.
type layerFacts struct {
	haveIP, haveL4 bool
	ipPayloadLen   int // bytes the IP header says follow it
	fragment       bool
	lastL2Next     layers.EthernetType
	lastWasL2      bool
}

// readLayers fills p's protocol, length, ports, flags and ICMP type from the
// layers the parser decoded.
func (d *Decoder) readLayers(p *Packet) (f layerFacts) {
	for _, typ := range d.decoded {
		switch typ {
		case layers.LayerTypeEthernet:
			f.lastL2Next, f.lastWasL2 = d.eth.EthernetType, true
		case layers.LayerTypeDot1Q:
			f.lastL2Next, f.lastWasL2 = d.dot1q.Type, true
		case layers.LayerTypeIPv4:
			f.haveIP, f.lastWasL2 = true, false
			ip := &d.ip4.IPv4
			p.Proto = uint8(ip.Protocol)
			p.Length = ip.Length
			f.ipPayloadLen = int(ip.Length) - int(ip.IHL)*4
			f.fragment = d.ip4.isFragment()
		case layers.LayerTypeIPv6:
			f.haveIP, f.lastWasL2 = true, false
			ip := &d.ip6
			p.Proto = ip.proto
			// 40 + 65535 does not fit; a size bound never needs more.
			p.Length = uint16(min(40+int(ip.payloadLen), 0xffff))
			f.ipPayloadLen = int(ip.payloadLen) - ip.extLen
			f.fragment = ip.fragment
		case layers.LayerTypeTCP:
			f.haveL4 = true
			p.SrcPort = uint16(d.tcp.SrcPort)
			p.DstPort = uint16(d.tcp.DstPort)
			p.TCPFlags = d.tcp.flags
		case layers.LayerTypeUDP:
			f.haveL4 = true
			p.SrcPort = uint16(d.udp.SrcPort)
			p.DstPort = uint16(d.udp.DstPort)
		case layers.LayerTypeICMPv4:
			f.haveL4 = true
			p.ICMPType = d.icmp4.TypeCode.Type()
			p.ICMPCode = d.icmp4.TypeCode.Code()
		case layers.LayerTypeICMPv6:
			f.haveL4 = true
			p.ICMPType = d.icmp6.TypeCode.Type()
			p.ICMPCode = d.icmp6.TypeCode.Code()
		}
	}
	return f
}

// kind picks the packet's Kind. The order of the cases is the precedence
// of the kinds (see decide).
func (d *Decoder) kind(err error, p *Packet, f *layerFacts) Kind {
	switch {
	case err != nil:
		if k, ok := err.(kindError); ok {
			return Kind(k)
		}
		// The guarded layers check every length before gopacket sees a
		// header, so what gopacket still rejects is content that
		// contradicts itself (bad IPv4 or TCP options).
		return KindMalformed
	case !f.haveIP:
		if f.lastWasL2 && wantsMore(f.lastL2Next) {
			// The frame ends where the link header promised an IP
			// header or another tag.
			return KindTruncated
		}
		return KindNotIP
	case (d.ip4.short || d.ip6.short) && !d.Snapped:
		// The IP header claims bytes that were not delivered: the
		// headers we did read may belong to a packet we never saw whole.
		return KindTruncated
	case f.fragment:
		// Only the first fragment carries ports, and nothing forces
		// later fragments to agree with it (overlap attacks); the
		// engine never sees a reassembled datagram, so it must not
		// judge fragments by their ports.
		return KindFragment
	case isTunnel(p.Proto):
		// The parser was stopped at the outer header (see
		// ipv4Layer.NextLayerType), so Src/Dst/Proto are the outer
		// ones and no inner header has overwritten them.
		return KindTunnel
	case !f.haveL4 && hasTransportHeader(p.Proto):
		// IP header whole, transport header absent: the packet ended
		// right after the IP header.
		return KindTruncated
	case p.Proto == ProtoUDP && (int(d.udp.Length) > f.ipPayloadLen):
		// The UDP length claims more than the IP datagram holds: the
		// firewall and the receiver could disagree about the payload.
		return KindMalformed
	}
	return KindOK
}

func wantsMore(t layers.EthernetType) bool {
	switch t {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
		return true
	}
	return false
}

func isTunnel(proto uint8) bool {
	return proto == ProtoIPIP || proto == ProtoIPv6 || proto == ProtoGRE
}

func hasTransportHeader(proto uint8) bool {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6:
		return true
	}
	return false
}

// The layers below wrap gopacket's so that every length is checked before
// gopacket sees the bytes (gopacket builds a formatted error, one allocation,
// for each short header) and so that the walk stops where picoseg must stop.

type ethernetLayer struct{ layers.Ethernet }

func (l *ethernetLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 14 {
		return kindError(KindTruncated)
	}
	return l.Ethernet.DecodeFromBytes(data, df)
}

// dot1qLayer counts the tags of one frame: the parser reuses this one object
// for every tag, and a frame made of thousands of tags must not cost
// thousands of steps or grow the decoded slice.
type dot1qLayer struct {
	layers.Dot1Q
	tags int
}

func (l *dot1qLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if l.tags++; l.tags > maxVLANTags {
		return kindError(KindMalformed)
	}
	if len(data) < 4 {
		return kindError(KindTruncated)
	}
	return l.Dot1Q.DecodeFromBytes(data, df)
}

// ipv4Layer guards layers.IPv4 and decides where the walk stops.
type ipv4Layer struct {
	layers.IPv4
	hdr   []byte // the fixed 20-byte header once version and length are checked
	short bool   // total length is more than was delivered
}

func (l *ipv4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return kindError(KindTruncated)
	}
	if data[0]>>4 != 4 {
		return kindError(KindMalformed)
	}
	l.hdr = data[:20]
	ihl := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	// A total length shorter than the header is a contradiction, not a
	// truncation. That includes 0, which gopacket would read as "the
	// whole buffer" (TSO captures): a packet's size must come from its
	// header, or the packet_size bounds judge the wrong number.
	if ihl < 20 || total < ihl {
		return kindError(KindMalformed)
	}
	if len(data) < ihl {
		return kindError(KindTruncated)
	}
	l.short = len(data) < total
	return l.IPv4.DecodeFromBytes(data, df)
}

func (l *ipv4Layer) isFragment() bool {
	return l.Flags&layers.IPv4MoreFragments != 0 || l.FragOffset != 0
}

// NextLayerType stops the parser at the outer header of fragments and
// tunnels. The parser has one IPv4 and one IPv6 object: were it allowed to
// decode the inner header of IP-in-IP, that header would overwrite the outer
// addresses, and a packet could pick the addresses it is judged by.
func (l *ipv4Layer) NextLayerType() gopacket.LayerType {
	if l.isFragment() || isTunnel(uint8(l.Protocol)) {
		return gopacket.LayerTypeZero
	}
	return l.Protocol.LayerType()
}

// ipv6Layer decodes the IPv6 header and walks its extension headers by hand.
// layers.IPv6 allocates for every hop-by-hop option (so every MLD report
// would allocate) and leaves the other extension headers to separate layer
// objects; walking the chain here keeps it bounded and allocation-free.
type ipv6Layer struct {
	hdr        []byte // the fixed 40-byte header once the version is checked
	payloadLen uint16
	proto      uint8 // upper-layer protocol after the extension headers
	extLen     int
	fragment   bool
	short      bool
	payload    []byte
}

// IPv6 extension header numbers walked to find the upper-layer protocol.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6AH       = 51
	ip6DestOpts = 60
)

func (l *ipv6Layer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPv6 }
func (l *ipv6Layer) LayerPayload() []byte              { return l.payload }
func (l *ipv6Layer) NextLayerType() gopacket.LayerType { return l.next() }

func (l *ipv6Layer) next() gopacket.LayerType {
	// Same reason as ipv4Layer.NextLayerType: never decode an inner header.
	if l.fragment || isTunnel(l.proto) {
		return gopacket.LayerTypeZero
	}
	return layers.IPProtocol(l.proto).LayerType()
}

func (l *ipv6Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.fragment, l.short, l.extLen, l.payload = false, false, 0, nil
	if len(data) < 40 {
		return kindError(KindTruncated)
	}
	if data[0]>>4 != 6 {
		return kindError(KindMalformed)
	}
	l.hdr = data[:40]
	l.payloadLen = binary.BigEndian.Uint16(data[4:6])
	// Payload length 0 means a jumbogram (RFC 2675). No link a gateway
	// forwards on carries one, and its size would be unknowable here.
	if l.payloadLen == 0 {
		return kindError(KindMalformed)
	}
	end := 40 + int(l.payloadLen)
	if len(data) < end {
		l.short = true
		end = len(data)
	}
	next, off := data[6], 40
	for n := 0; ; n++ {
		var hdrLen int
		switch next {
		case ip6HopByHop, ip6Routing, ip6DestOpts, ip6AH, ip6Fragment:
		default:
			l.proto, l.extLen, l.payload = next, off-40, data[off:end]
			return nil
		}
		if n == maxIPv6ExtHeaders {
			return kindError(KindMalformed)
		}
		// RFC 8200 §4.1: hop-by-hop options only directly after the
		// IPv6 header. Linux rejects it anywhere else; so do we, so that
		// we never judge a packet the receiver reads differently.
		if next == ip6HopByHop && n != 0 {
			return kindError(KindMalformed)
		}
		if off+8 > 40+int(l.payloadLen) {
			return kindError(KindMalformed) // header runs past the payload length
		}
		if off+8 > end {
			return kindError(KindTruncated)
		}
		switch next {
		case ip6Fragment:
			hdrLen = 8
			// Offset, flags and what follows are irrelevant: the
			// packet is a fragment and is judged as one, even an
			// "atomic" fragment (offset 0, no more fragments), which
			// hosts may accept but which no legitimate sender needs.
			l.fragment = true
		case ip6AH:
			hdrLen = (int(data[off+1]) + 2) * 4
		default:
			hdrLen = (int(data[off+1]) + 1) * 8
		}
		if off+hdrLen > 40+int(l.payloadLen) {
			return kindError(KindMalformed)
		}
		if off+hdrLen > end {
			return kindError(KindTruncated)
		}
		next = data[off]
		off += hdrLen
		if l.fragment {
			// The rest may be a later fragment with no header at all.
			l.proto, l.extLen, l.payload = next, off-40, data[off:end]
			return nil
		}
	}
}

type tcpLayer struct {
	layers.TCP
	flags uint8
}

func (l *tcpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return kindError(KindTruncated)
	}
	off := int(data[12]>>4) * 4
	if off < 20 {
		return kindError(KindMalformed)
	}
	if off > len(data) {
		return kindError(KindTruncated)
	}
	l.flags = data[13]
	return l.TCP.DecodeFromBytes(data, df)
}

type udpLayer struct{ layers.UDP }

func (l *udpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return kindError(KindTruncated)
	}
	// Lengths 0..7 cannot describe a UDP datagram (0 is only meaningful
	// in IPv6 jumbograms, which are refused above).
	if binary.BigEndian.Uint16(data[4:6]) < 8 {
		return kindError(KindMalformed)
	}
	return l.UDP.DecodeFromBytes(data, df)
}

// icmpv4Layer keeps the message's bytes: a query's identifier and an
// error's quote are read from them once the packet is known to be whole.
type icmpv4Layer struct {
	layers.ICMPv4
	msg []byte
}

func (l *icmpv4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < icmpv4MinHeaderSize {
		return kindError(KindTruncated)
	}
	l.msg = data
	return l.ICMPv4.DecodeFromBytes(data, df)
}

type icmpv6Layer struct {
	layers.ICMPv6
	msg []byte
}

func (l *icmpv6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < icmpv6MinHeaderSize {
		return kindError(KindTruncated)
	}
	l.msg = data
	return l.ICMPv6.DecodeFromBytes(data, df)
}

// NFLOG constants (libpcap pcap/nflog.h).
const (
	nflogHdrSize    = 4
	nflogTLVHdrSize = 4
	nflogPayload    = 9 // NFULA_PAYLOAD: the packet, starting at its IP header
)

// DecodeNFLOG decodes a Linux NFLOG record (LINKTYPE_NFLOG): a 4-byte
// header naming the address family, then type-length-value attributes, one
// of which holds the IP packet. The attribute words are in the capturing
// host's byte order; the order that makes the first attribute fit is used.
// A record without a payload attribute (copy range 0) is KindTruncated: the
// packet was logged but not captured.
func (d *Decoder) DecodeNFLOG(data []byte, p *Packet) {
	*p = Packet{}
	if len(data) < nflogHdrSize {
		p.Kind = KindTruncated
		return
	}
	var proto layers.EthernetType
	switch data[0] {
	case afINET:
		proto = layers.EthernetTypeIPv4
	case afINET6Linux:
		proto = layers.EthernetTypeIPv6
	default:
		p.Kind = KindNotIP
		return
	}
	if data[1] != 0 { // the only NFLOG version
		p.Kind = KindMalformed
		return
	}
	rest := data[nflogHdrSize:]
	var order binary.ByteOrder = binary.LittleEndian
	if len(rest) >= nflogTLVHdrSize {
		if n := int(order.Uint16(rest)); n < nflogTLVHdrSize || n > len(rest) {
			order = binary.BigEndian
		}
	}
	for len(rest) >= nflogTLVHdrSize {
		n := int(order.Uint16(rest[0:2]))
		if n < nflogTLVHdrSize {
			p.Kind = KindMalformed
			return
		}
		if n > len(rest) {
			p.Kind = KindTruncated
			return
		}
		if order.Uint16(rest[2:4]) == nflogPayload {
			d.decodeIPByEthertype(rest[nflogTLVHdrSize:n], proto, p)
			return
		}
		n = (n + 3) &^ 3 // attributes are padded to 4 bytes
		if n > len(rest) {
			break
		}
		rest = rest[n:]
	}
	p.Kind = KindTruncated
}
