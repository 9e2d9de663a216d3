package packet

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// TestDecodeNoAllocs proves the per-packet path allocates nothing, for every
// kind the engine routinely sees, valid and not.
func TestDecodeNoAllocs(t *testing.T) {
	tcpOpts := tcpSYN(40000, 443)
	tcpOpts.Options = append(tcpOpts.Options,
		layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)})
	frag := ip4(cam4, nvr4, layers.IPProtocolUDP)
	frag.Flags = layers.IPv4MoreFragments
	badTCP := tcp4Frame(t)
	badTCP[14+20+12] = 0x40
	cases := []struct {
		name   string
		decode decodeFunc
		data   []byte
		kind   Kind
	}{
		{"tcp4", viaEthernet, tcp4Frame(t), KindOK},
		{"tcp4 many options", viaEthernet, serialize(t, eth(layers.EthernetTypeIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP), tcpOpts), KindOK},
		{"udp6", viaIP, udp6Packet(t), KindOK},
		{"icmp4", viaIP, serialize(t, ip4(cam4, nvr4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), KindOK},
		{"icmp6 mld with hop-by-hop", viaIP, serialize(t, ip6(cam6, addr6("ff02::16"), layers.IPProtocolIPv6HopByHop), ext(layers.IPProtocolICMPv6, 0),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(143, 0)}, payload("\x00\x00\x00\x00")), KindOK},
		{"icmp4 error quoting udp", viaIP, icmpSeeds(t)[2], KindOK},
		{"icmp6 error quoting udp", viaIP, icmpSeeds(t)[4], KindOK},
		{"vlan", viaEthernet, serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 3, Type: layers.EthernetTypeIPv4},
			ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2)), KindOK},
		{"sll2", viaSLL2, append(sll2Header(layers.EthernetTypeIPv6, 6), udp6Packet(t)...), KindOK},
		{"loopback", viaLoopback, append([]byte{30, 0, 0, 0}, udp6Packet(t)...), KindOK},
		{"arp", viaEthernet, serialize(t, eth(layers.EthernetTypeARP), payload(string(make([]byte, 28)))), KindNotIP},
		{"fragment", viaEthernet, serialize(t, eth(layers.EthernetTypeIPv4), frag, udp(1, 2)), KindFragment},
		{"ipv6 fragment", viaIP, serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolUDP, 0, true), udp(1, 2)), KindFragment},
		{"tunnel", viaEthernet, serialize(t, eth(layers.EthernetTypeIPv4), ip4(outer4[0], outer4[1], layers.IPProtocolIPv4),
			ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(1, 2)), KindTunnel},
		{"truncated ip", viaEthernet, tcp4Frame(t)[:30], KindTruncated},
		{"truncated tcp", viaEthernet, tcp4Frame(t)[:40], KindTruncated},
		{"truncated ethernet", viaEthernet, tcp4Frame(t)[:10], KindTruncated},
		{"malformed version", viaIP, []byte{0x75, 0, 0, 20}, KindMalformed},
		{"malformed tcp offset", viaEthernet, badTCP, KindMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder()
			var p Packet
			c.decode(d, c.data, &p)
			if p.Kind != c.kind {
				t.Fatalf("kind %v, want %v", p.Kind, c.kind)
			}
			if n := testing.AllocsPerRun(1000, func() { c.decode(d, c.data, &p) }); n != 0 {
				t.Errorf("%v allocations per packet, want 0", n)
			}
		})
	}
}

func BenchmarkDecodeEthernetTCP4(b *testing.B) {
	data := tcp4Frame(b)
	d := NewDecoder()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d.DecodeEthernet(data, &p)
	}
	if p.Kind != KindOK || p.DstPort != 554 {
		b.Fatalf("decoded %+v", p)
	}
}

func BenchmarkDecodeIPUDP6(b *testing.B) {
	data := udp6Packet(b)
	d := NewDecoder()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d.DecodeIP(data, &p)
	}
	if p.Kind != KindOK || p.DstPort != 5683 {
		b.Fatalf("decoded %+v", p)
	}
}

// BenchmarkDecodeIPv4Opening decodes a Linux TCP SYN and a UDP datagram
// through DecodeIP (the fast path) and through the layer walk alone.
func BenchmarkDecodeIPv4Opening(b *testing.B) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tcp-syn", serialize(b, ip4(cam4, nvr4, layers.IPProtocolTCP), linuxSYN())},
		{"udp", serialize(b, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(40000, 123), payload("0123456789"))},
	} {
		d := NewDecoder()
		var p Packet
		b.Run(tc.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.DecodeIP(tc.data, &p)
			}
		})
		b.Run(tc.name+"/walk", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p = Packet{}
				d.decodeIP(tc.data, &p)
			}
		})
		if p.Kind != KindOK {
			b.Fatalf("%s: decoded %+v", tc.name, p)
		}
	}
}
