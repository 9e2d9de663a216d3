package capture

import (
	"strconv"

	"github.com/picoseg/picoseg/pkg/packet"
)

// LinkType is a pcap LINKTYPE_ value: what header each record starts with.
type LinkType uint16

// Link types Next can decode. Other link types are read and counted, but
// Next returns an *UnsupportedLinkError for their packets.
const (
	LinkNull      LinkType = 0   // BSD loopback, address family in host byte order
	LinkEthernet  LinkType = 1   // Ethernet, 802.1Q/QinQ tags allowed
	LinkRawBSD    LinkType = 12  // DLT_RAW as some systems write it: raw IP
	LinkRawOBSD   LinkType = 14  // DLT_RAW on OpenBSD: raw IP
	LinkRaw       LinkType = 101 // LINKTYPE_RAW: raw IP, version nibble decides
	LinkLoop      LinkType = 108 // OpenBSD loopback, address family in network order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkIPv4      LinkType = 228 // raw IPv4 only
	LinkIPv6      LinkType = 229 // raw IPv6 only
	LinkNFLOG     LinkType = 239 // Linux netfilter NFLOG
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// String returns a short name for the link type, or its number.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "null"
	case LinkEthernet:
		return "ethernet"
	case LinkRawBSD, LinkRawOBSD, LinkRaw:
		return "raw"
	case LinkLoop:
		return "loop"
	case LinkLinuxSLL:
		return "linux-sll"
	case LinkIPv4:
		return "ipv4"
	case LinkIPv6:
		return "ipv6"
	case LinkNFLOG:
		return "nflog"
	case LinkLinuxSLL2:
		return "linux-sll2"
	}
	return "linktype-" + strconv.Itoa(int(l))
}

// Supported reports whether Next decodes packets of this link type.
func (l LinkType) Supported() bool { return decoderFor(l) != nil }

type decodeFunc func(d *packet.Decoder, data []byte, p *packet.Packet)

func decoderFor(l LinkType) decodeFunc {
	switch l {
	case LinkNull, LinkLoop:
		return (*packet.Decoder).DecodeLoopback
	case LinkEthernet:
		return (*packet.Decoder).DecodeEthernet
	case LinkRawBSD, LinkRawOBSD, LinkRaw:
		return (*packet.Decoder).DecodeIP
	case LinkIPv4:
		return decodeIPv4Only
	case LinkIPv6:
		return decodeIPv6Only
	case LinkLinuxSLL:
		return (*packet.Decoder).DecodeLinuxSLL
	case LinkLinuxSLL2:
		return (*packet.Decoder).DecodeLinuxSLL2
	case LinkNFLOG:
		return (*packet.Decoder).DecodeNFLOG
	}
	return nil
}

// A link type that names one IP version but carries the other is
// malformed, like an Ethernet type that disagrees with the version nibble.
func decodeIPv4Only(d *packet.Decoder, data []byte, p *packet.Packet) {
	decodeIPVersion(d, data, p, 4)
}

func decodeIPv6Only(d *packet.Decoder, data []byte, p *packet.Packet) {
	decodeIPVersion(d, data, p, 6)
}

func decodeIPVersion(d *packet.Decoder, data []byte, p *packet.Packet, version byte) {
	if len(data) > 0 && data[0]>>4 != version {
		*p = packet.Packet{Kind: packet.KindMalformed}
		return
	}
	d.DecodeIP(data, p)
}
