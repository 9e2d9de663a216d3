// Package packet decodes one raw packet, as the kernel queue or a capture
// delivers it, into a small Packet summary without allocating.
//
// Decoding uses gopacket's DecodingLayerParser. That parser reuses one layer
// object per type, so an IP-in-IP packet would let the inner IPv4 header
// overwrite the outer one; the decoder copies the outer addresses before any
// inner header can be decoded and stops there, so the outer header always
// decides.
package packet
