package packet

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Addresses and MACs used by the generated packets.
var (
	macCam = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
	macGW  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	cam4   = net.IP{192, 168, 10, 20}
	nvr4   = net.IP{192, 168, 20, 5}
	cam6   = net.ParseIP("fd00:10::20")
	nvr6   = net.ParseIP("fd00:20::5")
	outer4 = [2]net.IP{{203, 0, 113, 1}, {198, 51, 100, 2}}
	outer6 = [2]net.IP{net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")}
)

// serialize builds a packet from layers, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var network gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			if network == nil {
				network = l
			}
		case *layers.IPv6:
			if network == nil {
				network = l
			}
		case *layers.TCP:
			if network != nil {
				if err := l.SetNetworkLayerForChecksum(network); err != nil {
					t.Fatal(err)
				}
			}
		case *layers.ICMPv6:
			if network != nil {
				if err := l.SetNetworkLayerForChecksum(network); err != nil {
					t.Fatal(err)
				}
			}
		case *layers.UDP:
			if network != nil {
				if err := l.SetNetworkLayerForChecksum(network); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macCam, DstMAC: macGW, EthernetType: t}
}

func ip4(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: src, DstIP: dst, Protocol: proto}
}

func ip6(src, dst net.IP, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: next}
}

func tcpSYN(src, dst uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(src), DstPort: layers.TCPPort(dst), SYN: true, Seq: 1, Window: 1024,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
}

func udp(src, dst uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
}

func payload(s string) gopacket.Payload { return gopacket.Payload(s) }

// ext is a raw IPv6 extension header: next header, length in 8-byte units
// beyond the first 8 (AH: 4-byte units beyond the first 8), zero padded.
func ext(next layers.IPProtocol, units int) gopacket.Payload {
	b := make([]byte, 8+units*8)
	b[0], b[1] = byte(next), byte(units)
	if units == 0 {
		// PadN option filling the 6 bytes after next header and length.
		b[2], b[3] = 1, 4
	}
	return gopacket.Payload(b)
}

func fragHdr(next layers.IPProtocol, offset uint16, more bool) gopacket.Payload {
	b := make([]byte, 8)
	b[0] = byte(next)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], v)
	binary.BigEndian.PutUint32(b[4:8], 0xdecaf)
	return gopacket.Payload(b)
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Frames shared by several tests.
func tcp4Frame(t testing.TB) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(40000, 554))
}

func udp6Packet(t testing.TB) []byte {
	return serialize(t, ip6(cam6, nvr6, layers.IPProtocolUDP), udp(5353, 5683), payload("coap"))
}

// decodeFunc names one of the Decoder's entry points.
type decodeFunc func(d *Decoder, data []byte, p *Packet)

var (
	viaEthernet decodeFunc = (*Decoder).DecodeEthernet
	viaIP       decodeFunc = (*Decoder).DecodeIP
	viaSLL      decodeFunc = (*Decoder).DecodeLinuxSLL
	viaSLL2     decodeFunc = (*Decoder).DecodeLinuxSLL2
	viaLoopback decodeFunc = (*Decoder).DecodeLoopback
	viaNFLOG    decodeFunc = (*Decoder).DecodeNFLOG
)

func TestDecode(t *testing.T) {
	t.Parallel()
	type want struct {
		kind             Kind
		src, dst         string
		proto            uint8
		length           uint16
		srcPort, dstPort uint16
		icmpType         uint8
		flags            uint8
		vlan             uint16
	}
	vlan := func(id uint16, next layers.EthernetType) *layers.Dot1Q {
		return &layers.Dot1Q{VLANIdentifier: id, Type: next}
	}
	tests := []struct {
		name   string
		decode decodeFunc
		build  func(t testing.TB) []byte
		want   want
	}{
		{"tcp4 syn camera to nvr rtsp", viaEthernet, tcp4Frame,
			want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44, srcPort: 40000, dstPort: 554, flags: TCPSyn}},
		{"udp6 coap", viaIP, udp6Packet,
			want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683}},
		{"udp4 dns in ethernet", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolUDP), udp(3000, 53), payload("query"))
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoUDP, length: 33, srcPort: 3000, dstPort: 53}},
		{"icmp4 echo", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolICMPv4),
				&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, payload("ping"))
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoICMP, length: 32, icmpType: 8}},
		{"icmp6 echo", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolICMPv6),
				&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, payload("\x00\x01\x00\x01ping"))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoICMPv6, length: 52, icmpType: 128}},
		{"vlan tagged tcp4", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeDot1Q), vlan(100, layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(40000, 554))
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44, srcPort: 40000, dstPort: 554, flags: TCPSyn, vlan: 100}},
		{"qinq keeps outer vlan", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeQinQ), vlan(10, layers.EthernetTypeDot1Q), vlan(20, layers.EthernetTypeIPv6),
				ip6(cam6, nvr6, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 48, srcPort: 1, dstPort: 2, vlan: 10}},
		{"five vlan tags are malformed", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeDot1Q), vlan(1, layers.EthernetTypeDot1Q), vlan(2, layers.EthernetTypeDot1Q),
				vlan(3, layers.EthernetTypeDot1Q), vlan(4, layers.EthernetTypeDot1Q), vlan(5, layers.EthernetTypeIPv4),
				ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindMalformed, vlan: 1}},
		{"ethernet padding is ignored", viaEthernet, func(t testing.TB) []byte {
			return append(serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2)), make([]byte, 18)...)
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoUDP, length: 28, srcPort: 1, dstPort: 2}},
		{"arp is not ip", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: macCam, SourceProtAddress: cam4,
				DstHwAddress: make([]byte, 6), DstProtAddress: nvr4})
		}, want{kind: KindNotIP}},
		{"ipv4 first fragment", viaEthernet, func(t testing.TB) []byte {
			ip := ip4(cam4, nvr4, layers.IPProtocolUDP)
			ip.Flags = layers.IPv4MoreFragments
			return serialize(t, eth(layers.EthernetTypeIPv4), ip, udp(1, 2), payload(strings.Repeat("x", 32)))
		}, want{kind: KindFragment, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoUDP, length: 60}},
		{"ipv4 later fragment", viaIP, func(t testing.TB) []byte {
			ip := ip4(cam4, nvr4, layers.IPProtocolTCP)
			ip.FragOffset = 185
			return serialize(t, ip, payload(strings.Repeat("y", 40)))
		}, want{kind: KindFragment, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 60}},
		{"ipv4 last fragment without header room", viaIP, func(t testing.TB) []byte {
			ip := ip4(cam4, nvr4, layers.IPProtocolTCP)
			ip.FragOffset = 1
			return serialize(t, ip, payload("z"))
		}, want{kind: KindFragment, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 21}},
		{"ipv6 fragment header", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolUDP, 0, true), udp(1, 2), payload("abcd"))
		}, want{kind: KindFragment, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 60}},
		{"ipv6 atomic fragment", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolUDP, 0, false), udp(1, 2))
		}, want{kind: KindFragment, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 56}},
		{"ipv6 fragment after destination options", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Destination), ext(layers.IPProtocolIPv6Fragment, 0),
				fragHdr(layers.IPProtocolTCP, 100, false), payload("later"))
		}, want{kind: KindFragment, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoTCP, length: 61}},
		{"ipv6 hop-by-hop then icmpv6 (mld)", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, addr6("ff02::16"), layers.IPProtocolIPv6HopByHop), ext(layers.IPProtocolICMPv6, 0),
				&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(143, 0)}, payload("\x00\x00\x00\x00"))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "ff02::16", proto: ProtoICMPv6, length: 56, icmpType: 143}},
		{"ipv6 hbh routing destopts tcp", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6HopByHop), ext(layers.IPProtocolIPv6Routing, 0),
				ext(layers.IPProtocolIPv6Destination, 2), ext(layers.IPProtocolTCP, 1), tcpSYN(1883, 40001))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoTCP, length: 40 + 8 + 24 + 16 + 24, srcPort: 1883, dstPort: 40001, flags: TCPSyn}},
		{"ipv6 authentication header", viaIP, func(t testing.TB) []byte {
			ah := []byte{byte(layers.IPProtocolUDP), 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolAH), gopacket.Payload(ah), udp(500, 500))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 72, srcPort: 500, dstPort: 500}},
		{"ipv6 hop-by-hop not first is malformed", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Destination), ext(layers.IPProtocolIPv6HopByHop, 0),
				ext(layers.IPProtocolUDP, 0), udp(1, 2))
		}, want{kind: KindMalformed, src: "fd00:10::20", dst: "fd00:20::5"}},
		{"ipv6 nine extension headers are malformed", viaIP, func(t testing.TB) []byte {
			ls := []gopacket.SerializableLayer{ip6(cam6, nvr6, layers.IPProtocolIPv6Destination)}
			for range 8 {
				ls = append(ls, ext(layers.IPProtocolIPv6Destination, 0))
			}
			ls = append(ls, ext(layers.IPProtocolUDP, 0), udp(1, 2))
			return serialize(t, ls...)
		}, want{kind: KindMalformed, src: "fd00:10::20", dst: "fd00:20::5"}},
		{"ipv6 extension header past payload length is malformed", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Destination), ext(layers.IPProtocolUDP, 1), udp(1, 2))
			binary.BigEndian.PutUint16(b[4:6], 12) // the 16-byte header no longer fits
			return b[:52]
		}, want{kind: KindMalformed, src: "fd00:10::20", dst: "fd00:20::5"}},
		{"ipv6 no next header", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolNoNextHeader), payload("junk"))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: 59, length: 44}},
		{"ipv4 other protocol has no ports", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip4(cam4, addr4(224, 0, 0, 22), layers.IPProtocolIGMP), payload("\x22\x00\xfa\x02\x00\x00\x00\x01"))
		}, want{kind: KindOK, src: "192.168.10.20", dst: "224.0.0.22", proto: 2, length: 28}},
		{"ip-in-ip keeps the outer header", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeIPv4), ip4(outer4[0], outer4[1], layers.IPProtocolIPv4),
				ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(40000, 22))
		}, want{kind: KindTunnel, src: "203.0.113.1", dst: "198.51.100.2", proto: ProtoIPIP, length: 64}},
		{"6in4 keeps the outer header", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip4(outer4[0], outer4[1], layers.IPProtocolIPv6), ip6(cam6, nvr6, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindTunnel, src: "203.0.113.1", dst: "198.51.100.2", proto: ProtoIPv6, length: 68}},
		{"gre keeps the outer header", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, eth(layers.EthernetTypeIPv4), ip4(outer4[0], outer4[1], layers.IPProtocolGRE),
				&layers.GRE{Protocol: layers.EthernetTypeIPv4}, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindTunnel, src: "203.0.113.1", dst: "198.51.100.2", proto: ProtoGRE, length: 52}},
		{"4in6 keeps the outer header", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(outer6[0], outer6[1], layers.IPProtocolIPv4), ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindTunnel, src: "2001:db8::1", dst: "2001:db8::2", proto: ProtoIPIP, length: 68}},
		{"6in6 after destination options keeps the outer header", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(outer6[0], outer6[1], layers.IPProtocolIPv6Destination), ext(layers.IPProtocolIPv6, 0),
				ip6(cam6, nvr6, layers.IPProtocolUDP), udp(1, 2))
		}, want{kind: KindTunnel, src: "2001:db8::1", dst: "2001:db8::2", proto: ProtoIPv6, length: 96}},
		{"ipv4 ethertype with version 6 is malformed", viaEthernet, func(t testing.TB) []byte {
			b := serialize(t, eth(layers.EthernetTypeIPv4), ip6(cam6, nvr6, layers.IPProtocolUDP), udp(1, 2))
			return b
		}, want{kind: KindMalformed}},
		{"ip version 5 is malformed", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
			b[0] = 0x55
			return b
		}, want{kind: KindMalformed}},
		{"ihl below 5 is malformed", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
			b[0] = 0x44
			return b
		}, want{kind: KindMalformed}},
		{"total length below header length is malformed", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
			binary.BigEndian.PutUint16(b[2:4], 19)
			return b
		}, want{kind: KindMalformed}},
		{"total length zero is malformed", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2))
			binary.BigEndian.PutUint16(b[2:4], 0)
			return b
		}, want{kind: KindMalformed}},
		{"total length beyond data is truncated", viaIP, func(t testing.TB) []byte {
			b := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2), payload("abcdefgh"))
			return b[:len(b)-1]
		}, want{kind: KindTruncated, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoUDP, length: 36}},
		{"ipv6 payload length zero is malformed", viaIP, func(t testing.TB) []byte {
			b := udp6Packet(t)
			binary.BigEndian.PutUint16(b[4:6], 0)
			return b
		}, want{kind: KindMalformed}},
		{"ipv6 payload length beyond data is truncated", viaIP, func(t testing.TB) []byte {
			b := udp6Packet(t)
			return b[:len(b)-2]
		}, want{kind: KindTruncated, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52}},
		{"ip header only is truncated", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip4(cam4, nvr4, layers.IPProtocolTCP))
		}, want{kind: KindTruncated, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 20}},
		{"tcp data offset below 5 is malformed", viaEthernet, func(t testing.TB) []byte {
			b := tcp4Frame(t)
			b[14+20+12] = 0x40
			return b
		}, want{kind: KindMalformed, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44}},
		{"tcp data offset beyond segment is truncated", viaEthernet, func(t testing.TB) []byte {
			b := tcp4Frame(t)
			b[14+20+12] = 0xf0
			return b
		}, want{kind: KindTruncated, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44}},
		{"tcp option overrunning header is malformed", viaEthernet, func(t testing.TB) []byte {
			b := tcp4Frame(t)
			b[14+20+21] = 40 // MSS option claims 40 bytes
			return b
		}, want{kind: KindMalformed, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44}},
		{"udp length below 8 is malformed", viaIP, func(t testing.TB) []byte {
			b := udp6Packet(t)
			binary.BigEndian.PutUint16(b[44:46], 7)
			return b
		}, want{kind: KindMalformed, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52}},
		{"udp length beyond ip payload is malformed", viaIP, func(t testing.TB) []byte {
			b := udp6Packet(t)
			binary.BigEndian.PutUint16(b[44:46], 13)
			return b
		}, want{kind: KindMalformed, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52}},
		{"icmpv4 of 4 bytes is truncated", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip4(cam4, nvr4, layers.IPProtocolICMPv4), payload("\x08\x00\x00\x00"))
		}, want{kind: KindTruncated, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoICMP, length: 24}},
		{"icmpv6 of 4 bytes is whole", viaIP, func(t testing.TB) []byte {
			return serialize(t, ip6(cam6, nvr6, layers.IPProtocolICMPv6), payload("\x87\x00\x00\x00"))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoICMPv6, length: 44, icmpType: 135}},
		{"empty input is truncated", viaIP, func(testing.TB) []byte { return nil }, want{kind: KindTruncated}},
		{"ethernet ends at ethertype", viaEthernet, func(t testing.TB) []byte {
			return tcp4Frame(t)[:14]
		}, want{kind: KindTruncated}},
		{"ethernet llc is not ip", viaEthernet, func(t testing.TB) []byte {
			return serialize(t, &layers.Ethernet{SrcMAC: macCam, DstMAC: macGW, EthernetType: layers.EthernetTypeLLC, Length: 3},
				&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 3})
		}, want{kind: KindNotIP}},
		{"linux sll tcp4", viaSLL, func(t testing.TB) []byte {
			return append(sllHeader(layers.EthernetTypeIPv4, 6), tcp4Frame(t)[14:]...)
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44, srcPort: 40000, dstPort: 554, flags: TCPSyn}},
		{"linux sll with vlan tag", viaSLL, func(t testing.TB) []byte {
			return append(append(sllHeader(layers.EthernetTypeDot1Q, 6), 0x00, 0x2a, 0x86, 0xdd), udp6Packet(t)...)
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683, vlan: 42}},
		{"linux sll arp", viaSLL, func(t testing.TB) []byte {
			return append(sllHeader(layers.EthernetTypeARP, 6), make([]byte, 28)...)
		}, want{kind: KindNotIP}},
		{"linux sll short", viaSLL, func(t testing.TB) []byte { return sllHeader(layers.EthernetTypeIPv4, 6)[:15] }, want{kind: KindTruncated}},
		{"linux sll2 udp6", viaSLL2, func(t testing.TB) []byte {
			return append(sll2Header(layers.EthernetTypeIPv6, 6), udp6Packet(t)...)
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683}},
		{"linux sll2 ipv6 ethertype carrying ipv4 is malformed", viaSLL2, func(t testing.TB) []byte {
			return append(sll2Header(layers.EthernetTypeIPv6, 6), tcp4Frame(t)[14:]...)
		}, want{kind: KindMalformed}},
		{"loopback darwin ipv6", viaLoopback, func(t testing.TB) []byte {
			return append([]byte{30, 0, 0, 0}, udp6Packet(t)...)
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683}},
		{"loopback big-endian ipv4", viaLoopback, func(t testing.TB) []byte {
			return append([]byte{0, 0, 0, 2}, tcp4Frame(t)[14:]...)
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44, srcPort: 40000, dstPort: 554, flags: TCPSyn}},
		{"loopback freebsd ipv6 big-endian", viaLoopback, func(t testing.TB) []byte {
			return append([]byte{0, 0, 0, 28}, udp6Packet(t)...)
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683}},
		{"nflog ipv4 little-endian", viaNFLOG, func(t testing.TB) []byte {
			return nflog(2, binary.LittleEndian, tcp4Frame(t)[14:])
		}, want{kind: KindOK, src: "192.168.10.20", dst: "192.168.20.5", proto: ProtoTCP, length: 44, srcPort: 40000, dstPort: 554, flags: TCPSyn}},
		{"nflog ipv6 big-endian", viaNFLOG, func(t testing.TB) []byte {
			return nflog(10, binary.BigEndian, udp6Packet(t))
		}, want{kind: KindOK, src: "fd00:10::20", dst: "fd00:20::5", proto: ProtoUDP, length: 52, srcPort: 5353, dstPort: 5683}},
		{"nflog without payload", viaNFLOG, func(t testing.TB) []byte {
			return nflog(2, binary.LittleEndian, nil)
		}, want{kind: KindTruncated}},
		{"nflog payload cut short", viaNFLOG, func(t testing.TB) []byte {
			b := nflog(2, binary.LittleEndian, tcp4Frame(t)[14:])
			return b[:len(b)-8]
		}, want{kind: KindTruncated}},
		{"nflog ipv4 family carrying ipv6", viaNFLOG, func(t testing.TB) []byte {
			return nflog(2, binary.LittleEndian, udp6Packet(t))
		}, want{kind: KindMalformed}},
		{"loopback unknown family", viaLoopback, func(t testing.TB) []byte {
			return append([]byte{7, 0, 0, 0}, udp6Packet(t)...)
		}, want{kind: KindNotIP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := tt.build(t)
			var p Packet
			tt.decode(NewDecoder(), data, &p)
			got := want{kind: p.Kind, proto: p.Proto, length: p.Length, srcPort: p.SrcPort, dstPort: p.DstPort,
				icmpType: p.ICMPType, flags: p.TCPFlags &^ 0xe0, vlan: p.VLAN}
			if p.Src.IsValid() {
				got.src, got.dst = p.Src.String(), p.Dst.String()
			}
			w := tt.want
			if w.kind != KindOK && w.src == "" {
				// Only the kind matters for packets rejected before the
				// addresses were read.
				got.src, got.dst, got.proto, got.length = "", "", 0, 0
			}
			if got != w {
				t.Errorf("decode mismatch (-want +got):\n-%+v\n+%+v", w, got)
			}
			if p.Kind != KindOK && (p.SrcPort != 0 || p.DstPort != 0 || p.TCPFlags != 0 || p.ICMPType != 0) {
				t.Errorf("kind %v carries ports %d>%d flags %#x", p.Kind, p.SrcPort, p.DstPort, p.TCPFlags)
			}
		})
	}
}

func addr6(s string) net.IP        { return net.ParseIP(s) }
func addr4(a, b, c, d byte) net.IP { return net.IP{a, b, c, d} }

func sllHeader(proto layers.EthernetType, addrLen uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:2], 4) // sent by us
	binary.BigEndian.PutUint16(h[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:6], addrLen)
	copy(h[6:14], macCam)
	binary.BigEndian.PutUint16(h[14:16], uint16(proto))
	return h
}

func sll2Header(proto layers.EthernetType, addrLen byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], uint16(proto))
	binary.BigEndian.PutUint32(h[4:8], 3) // ifindex
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10], h[11] = 0, addrLen
	copy(h[12:20], macCam)
	return h
}

// nflog builds an NFLOG record: a prefix attribute, then the payload
// attribute when there is a payload.
func nflog(family byte, order binary.ByteOrder, ip []byte) []byte {
	b := []byte{family, 0, 0, 42}
	attr := func(typ uint16, v []byte) {
		h := make([]byte, 4)
		order.PutUint16(h[0:2], uint16(4+len(v)))
		order.PutUint16(h[2:4], typ)
		b = append(append(b, h...), v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	attr(10, []byte("picoseg-drop\x00")) // NFULA_PREFIX
	if ip != nil {
		attr(9, ip)
	}
	return b
}

func TestDecodeMACs(t *testing.T) {
	t.Parallel()
	d := NewDecoder()
	var p Packet
	d.DecodeEthernet(tcp4Frame(t), &p)
	if !p.HasMAC || !bytes.Equal(p.SrcMAC[:], macCam) || !bytes.Equal(p.DstMAC[:], macGW) {
		t.Errorf("ethernet MACs: has=%v src=%x dst=%x", p.HasMAC, p.SrcMAC, p.DstMAC)
	}
	d.DecodeLinuxSLL(append(sllHeader(layers.EthernetTypeIPv4, 6), tcp4Frame(t)[14:]...), &p)
	if !p.HasMAC || !bytes.Equal(p.SrcMAC[:], macCam) || p.DstMAC != [6]byte{} {
		t.Errorf("sll MACs: has=%v src=%x dst=%x", p.HasMAC, p.SrcMAC, p.DstMAC)
	}
	d.DecodeLinuxSLL2(append(sll2Header(layers.EthernetTypeIPv4, 0), tcp4Frame(t)[14:]...), &p)
	if p.HasMAC || p.SrcMAC != [6]byte{} {
		t.Errorf("sll2 without address: has=%v src=%x", p.HasMAC, p.SrcMAC)
	}
	d.DecodeIP(tcp4Frame(t)[14:], &p)
	if p.HasMAC {
		t.Error("raw IP has a MAC")
	}
}

// TestDecodeResetsPacket checks that nothing of one packet leaks into the
// next: the engine reuses one Packet.
func TestDecodeResetsPacket(t *testing.T) {
	t.Parallel()
	d := NewDecoder()
	frames := [][]byte{
		serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4},
			ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(1, 2)),
		serialize(t, eth(layers.EthernetTypeIPv4), ip4(outer4[0], outer4[1], layers.IPProtocolIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(3, 4)),
		serialize(t, eth(layers.EthernetTypeIPv6), ip6(cam6, nvr6, layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolUDP, 0, true), udp(1, 2)),
		tcp4Frame(t)[:40],
		serialize(t, eth(layers.EthernetTypeARP), payload(strings.Repeat("\x00", 28))),
	}
	for i, f := range frames {
		var fresh, reused Packet
		NewDecoder().DecodeEthernet(f, &fresh)
		// Fill reused with everything a previous packet could leave.
		for _, g := range frames {
			d.DecodeEthernet(g, &reused)
		}
		reused = Packet{Kind: KindOK, HasMAC: true, VLAN: 99, Src: addr("1.2.3.4"), Dst: addr("::1"), Proto: 6, Length: 9, SrcPort: 9, DstPort: 9, ICMPType: 9, ICMPCode: 9, TCPFlags: 9}
		d.DecodeEthernet(f, &reused)
		if !samePacket(&fresh, &reused) {
			t.Errorf("frame %d: reused decoder/packet differs:\n fresh  %+v\n reused %+v", i, fresh, reused)
		}
	}
}

// TestDecodeEveryTruncation cuts whole packets at every length: no panic,
// and only the whole packet is KindOK.
func TestDecodeEveryTruncation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		decode decodeFunc
		data   []byte
	}{
		{"ethernet tcp4 with payload", viaEthernet, serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 40000, DstPort: 1883, ACK: true, PSH: true, DataOffset: 8,
				Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
					{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}},
			payload("\x30\x0c\x00\x04test/hello"))},
		{"vlan ipv6 hbh udp", viaEthernet, serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv6},
			ip6(cam6, nvr6, layers.IPProtocolIPv6HopByHop), ext(layers.IPProtocolUDP, 0), udp(1, 2), payload("x"))},
		{"raw ipv4 icmp", viaIP, serialize(t, ip4(cam4, nvr4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})},
		{"sll2 udp6", viaSLL2, append(sll2Header(layers.EthernetTypeIPv6, 6), udp6Packet(t)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder()
			var p Packet
			c.decode(d, c.data, &p)
			if p.Kind != KindOK {
				t.Fatalf("whole packet: kind %v, want ok", p.Kind)
			}
			for n := range len(c.data) {
				c.decode(d, c.data[:n], &p)
				if p.Kind != KindTruncated {
					t.Errorf("cut at %d of %d bytes: kind %v, want truncated", n, len(c.data), p.Kind)
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{KindOK: "ok", KindNotIP: "not-ip", KindFragment: "fragment", KindTunnel: "tunnel",
		KindTruncated: "truncated", KindMalformed: "malformed", Kind(200): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// A queue's copy range or a capture's snapshot length cuts the payload, not
// the headers: with Snapped the packet is judged on its whole headers and
// its size still comes from the IP header.
func TestDecodeSnapped(t *testing.T) {
	big := serialize(t, ip4(addr4(10, 0, 0, 1), addr4(10, 0, 0, 2), layers.IPProtocolTCP), tcpSYN(40000, 443), payload(strings.Repeat("x", 1400)))
	d := NewDecoder()
	var p Packet
	for _, tt := range []struct {
		name    string
		snapped bool
		cut     int
		want    Kind
	}{
		{"whole packet", false, len(big), KindOK},
		{"payload cut, unknown why", false, 512, KindTruncated},
		{"payload cut by the copy range", true, 512, KindOK},
		{"cut inside the TCP header", true, 30, KindTruncated},
		{"cut inside the IP header", true, 12, KindTruncated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d.Snapped = tt.snapped
			d.DecodeIP(big[:tt.cut], &p)
			if p.Kind != tt.want {
				t.Fatalf("kind %s, want %s", p.Kind, tt.want)
			}
			if p.Kind == KindOK && (p.Length != uint16(len(big)) || p.DstPort != 443) {
				t.Fatalf("length %d port %d, want %d and 443", p.Length, p.DstPort, len(big))
			}
		})
	}
}
