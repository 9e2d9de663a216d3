package packet

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// icmpEcho4 is an IPv4 echo request (typ 8) or reply (0) with identifier id.
func icmpEcho4(t testing.TB, typ uint8, id uint16) []byte {
	return serialize(t, ip4(cam4, nvr4, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: 1}, payload("ping"))
}

// icmpError4 is a port unreachable from nvr4 to cam4 quoting quoted.
func icmpError4(t testing.TB, quoted []byte) []byte {
	return serialize(t, ip4(nvr4, cam4, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, payload(string(quoted)))
}

// icmpError6 is a destination unreachable from nvr6 to cam6 quoting quoted.
func icmpError6(t testing.TB, quoted []byte) []byte {
	return serialize(t, ip6(nvr6, cam6, layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}, payload("\x00\x00\x00\x00"+string(quoted)))
}

func icmpSeeds(t testing.TB) [][]byte {
	udp4 := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(5353, 53), payload("query"))
	return [][]byte{
		icmpEcho4(t, 8, 0x1234),
		icmpEcho4(t, 0, 0x1234),
		icmpError4(t, udp4[:28]),
		icmpError4(t, icmpEcho4(t, 8, 7)[:28]),
		icmpError6(t, udp6Packet(t)[:48]),
		serialize(t, ip6(cam6, nvr6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, payload("\x00\x09\x00\x01ping")),
	}
}

func TestICMPQueriesAndQuotes(t *testing.T) {
	udp4 := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(5353, 53), payload("query"))
	frag4 := serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(5353, 53))
	frag4[7] = 8 // fragment offset 64 bytes: no transport header to quote
	for _, tt := range []struct {
		name string
		data []byte
		id   uint16
		want Quote
	}{
		{"echo request", icmpEcho4(t, 8, 0x1234), 0x1234, Quote{}},
		{"echo reply", icmpEcho4(t, 0, 0x1234), 0x1234, Quote{}},
		{"icmpv6 echo", icmpSeeds(t)[5], 9, Quote{}},
		{"port unreachable quoting udp", icmpError4(t, udp4[:28]), 0,
			Quote{Valid: true, Src: addr("192.168.10.20"), Dst: addr("192.168.20.5"), Proto: ProtoUDP, SrcPort: 5353, DstPort: 53}},
		{"unreachable quoting a ping", icmpError4(t, icmpEcho4(t, 8, 7)[:28]), 0,
			Quote{Valid: true, Src: addr("192.168.10.20"), Dst: addr("192.168.20.5"), Proto: ProtoICMP, ICMPType: 8, ICMPID: 7}},
		{"icmpv6 unreachable quoting udp", icmpError6(t, udp6Packet(t)[:48]), 0,
			Quote{Valid: true, Src: addr("fd00:10::20"), Dst: addr("fd00:20::5"), Proto: ProtoUDP, SrcPort: 5353, DstPort: 5683}},
		{"quote cut inside the transport header", icmpError4(t, udp4[:24]), 0, Quote{}},
		{"quote cut inside the ip header", icmpError4(t, udp4[:12]), 0, Quote{}},
		{"quote of a later fragment", icmpError4(t, frag4[:28]), 0, Quote{}},
		{"icmpv4 quoting ipv6", icmpError4(t, udp6Packet(t)[:48]), 0, Quote{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			NewDecoder().DecodeIP(tt.data, &p)
			if p.Kind != KindOK {
				t.Fatalf("kind %v", p.Kind)
			}
			if p.ICMPID != tt.id || p.Quoted != tt.want {
				t.Errorf("id %d quote %+v, want %d %+v", p.ICMPID, p.Quoted, tt.id, tt.want)
			}
		})
	}
}

func TestICMPRoles(t *testing.T) {
	for _, tt := range []struct {
		proto, typ uint8
		role       ICMPRole
		kind       uint8
	}{
		{ProtoICMP, 8, ICMPRequest, 8}, {ProtoICMP, 0, ICMPReply, 8},
		{ProtoICMP, 13, ICMPRequest, 13}, {ProtoICMP, 14, ICMPReply, 13},
		{ProtoICMP, 3, ICMPError, 0}, {ProtoICMP, 11, ICMPError, 0}, {ProtoICMP, 9, ICMPOther, 0},
		{ProtoICMPv6, 128, ICMPRequest, 128}, {ProtoICMPv6, 129, ICMPReply, 128},
		{ProtoICMPv6, 2, ICMPError, 0}, {ProtoICMPv6, 135, ICMPOther, 0}, {ProtoICMPv6, 134, ICMPOther, 0},
		{ProtoUDP, 8, ICMPOther, 0},
	} {
		if role, kind := ICMPRoleOf(tt.proto, tt.typ); role != tt.role || kind != tt.kind {
			t.Errorf("proto %d type %d: role %d kind %d, want %d %d", tt.proto, tt.typ, role, kind, tt.role, tt.kind)
		}
	}
}
