// Package packet decodes one raw packet, as the kernel queue or a capture
// delivers it, into a small Packet summary without allocating.
//
// Decoding uses gopacket's DecodingLayerParser. That parser reuses one layer
// object per type, so an IP-in-IP packet would let the inner IPv4 header
// overwrite the outer one; the decoder copies the outer addresses before any
// inner header can be decoded and stops there, so the outer header always
// decides.
//
// Every length is checked before gopacket sees the bytes, so that the common
// bad packets cost no allocation either. The rules, in order of precedence:
//
//   - KindMalformed: IP version not 4 or 6 (or not the one the link header
//     names), IPv4 header length below 20, IPv4 total length below the header
//     length (0 included), IPv6 payload length 0 (jumbograms), an IPv6
//     extension header past the payload length, hop-by-hop options anywhere
//     but first, more than 8 extension headers or 4 VLAN tags, a TCP data
//     offset below 5, bad IPv4 or TCP options, a UDP length below 8 or beyond
//     the IP payload.
//   - KindTruncated: fewer bytes than a header needs (Ethernet 14, IPv4 20 or
//     its header length, IPv6 40 plus extension headers, TCP 20 or its data
//     offset, UDP 8, ICMPv4 8, ICMPv6 4), or an IP total length larger than
//     the bytes delivered.
//   - KindFragment: IPv4 more-fragments flag or a fragment offset; any IPv6
//     fragment header, atomic fragments included.
//   - KindTunnel: outer protocol 4, 41 or 47, after IPv6 extension headers.
//   - KindNotIP: a link header naming neither IPv4 nor IPv6.
//
// Packets of any other kind than KindOK carry addresses (when the IP header
// was read) for logging, but never ports or flags.
//
// Of a KindOK ICMP or ICMPv6 message the decoder also reads, by its role
// (ICMPRoleOf), a query's identifier and an error's quote: the quoted IP
// header and first 8 transport bytes, valid only when whole, of the same IP
// version, and no later fragment. Neither allocates.
package packet
