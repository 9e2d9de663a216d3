package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket/layers"
)

// decodeBothWays decodes data with the fast path allowed and with the layer
// walk alone, and fails when they differ. It reports whether the fast path
// took the packet.
func decodeBothWays(t *testing.T, d *Decoder, data []byte) bool {
	t.Helper()
	var fast, walked Packet
	d.DecodeIP(data, &fast)
	d.decodeIP(data, &walked)
	took := d.fastIPv4(data, &Packet{})
	if !samePacket(&fast, &walked) {
		t.Fatalf("snapped=%v, % x:\nfast path %+v\nlayer walk %+v", d.Snapped, data, fast, walked)
	}
	return took
}

// linuxSYN is a TCP SYN with the options Linux sends (MSS, SACK permitted,
// timestamps, a no-op, window scale) and a little payload.
func linuxSYN() *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Seq: 7, Window: 64240, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}}
}

// TestFastIPv4AgreesWithTheWalk mutates IPv4 UDP datagrams and TCP
// segments in the header fields the fast path reads (version and length
// nibble, lengths, flags, offset, protocol, the TCP data offset and
// options) and cuts them short, snapped and not: whatever the fast path
// takes must decode exactly as the layer walk decodes it, and it must take
// the plain packets.
func TestFastIPv4AgreesWithTheWalk(t *testing.T) {
	bases := [][]byte{
		serialize(t, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(40000, 123), payload("0123456789abcdefghij")),
		serialize(t, ip4(cam4, nvr4, layers.IPProtocolTCP), linuxSYN(), payload("hello")),
		serialize(t, ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(1, 2)),
	}
	d := NewDecoder()
	took := map[byte]int{}
	for _, snapped := range []bool{false, true} {
		d.Snapped = snapped
		for _, base := range bases {
			if !decodeBothWays(t, d, base) {
				t.Fatalf("snapped=%v: the fast path did not take a plain packet % x", snapped, base)
			}
			for i := 0; i < 100000; i++ {
				pkt := mutateIPv4(bytes.Clone(base))
				if decodeBothWays(t, d, pkt) {
					took[pkt[9]]++
				}
			}
		}
	}
	if took[ProtoUDP] < 5000 || took[ProtoTCP] < 10000 {
		t.Fatalf("the fast path took only %d mutated datagrams and %d segments: the comparison proves little", took[ProtoUDP], took[ProtoTCP])
	}
}

// mutateIPv4 changes one to three header fields of pkt (an IPv4 packet with
// a 20-byte header and a transport header of at least 8 bytes) or cuts it.
func mutateIPv4(pkt []byte) []byte {
	for n := rand.IntN(3) + 1; n > 0 && len(pkt) >= 40; n-- {
		switch rand.IntN(9) {
		case 0:
			binary.BigEndian.PutUint16(pkt[2:], uint16(rand.IntN(len(pkt)+16)))
		case 1:
			binary.BigEndian.PutUint16(pkt[24:], uint16(rand.IntN(len(pkt)+16))) // UDP length
		case 2:
			pkt[6], pkt[7] = byte(rand.IntN(256)), byte(rand.IntN(4))
		case 3:
			pkt[0] = []byte{0x45, 0x46, 0x44, 0x55, 0x65}[rand.IntN(5)]
		case 4:
			pkt[9] = []byte{17, 6, 1, 4, 47}[rand.IntN(5)]
		case 5:
			pkt = pkt[:rand.IntN(len(pkt)+1)]
		case 6:
			pkt[32] = byte(rand.IntN(16)) << 4 // TCP data offset
		case 7:
			// A TCP option's kind or length.
			if len(pkt) > 40 {
				pkt[40+rand.IntN(len(pkt)-40)] = []byte{0, 1, 2, 3, 4, 8, 0xff}[rand.IntN(7)]
			}
		default:
			pkt[rand.IntN(len(pkt))] = byte(rand.IntN(256))
		}
	}
	return pkt
}

// FuzzFastIPv4 compares the fast path with the layer walk on any input.
func FuzzFastIPv4(f *testing.F) {
	_, ips := generatedSeeds(f)
	for _, s := range ips {
		f.Add(s, false)
	}
	f.Add(serialize(f, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2), payload("x")), true)
	f.Add(serialize(f, ip4(cam4, nvr4, layers.IPProtocolTCP), linuxSYN(), payload("x")), true)
	f.Fuzz(func(t *testing.T, data []byte, snapped bool) {
		d := NewDecoder()
		d.Snapped = snapped
		decodeBothWays(t, d, data)
	})
}
