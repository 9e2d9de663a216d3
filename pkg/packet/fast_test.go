package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// decodeBothWays decodes data with the fast path allowed and with the layer
// walk alone, and fails when they differ. It reports whether the fast path
// took the packet.
func decodeBothWays(t *testing.T, d *Decoder, data []byte) bool {
	t.Helper()
	var fast, walked Packet
	d.DecodeIP(data, &fast)
	walked = Packet{}
	d.decodeIP(data, &walked)
	took := d.fastUDP4(data, &Packet{})
	if !samePacket(&fast, &walked) {
		t.Fatalf("snapped=%v, % x:\nfast path %+v\nlayer walk %+v", d.Snapped, data, fast, walked)
	}
	return took
}

// TestFastUDP4AgreesWithTheWalk mutates IPv4 UDP datagrams in the header
// fields the fast path reads (version and length nibble, lengths, flags,
// offset, protocol) and cuts them short, snapped and not: whatever the fast
// path takes must decode exactly as the layer walk decodes it, and it must
// take the plain datagrams.
func TestFastUDP4AgreesWithTheWalk(t *testing.T) {
	base := serialize(t, ip4(cam4, nvr4, 17), udp(40000, 123), payload("0123456789abcdefghij"))
	d := NewDecoder()
	took := 0
	for _, snapped := range []bool{false, true} {
		d.Snapped = snapped
		if !decodeBothWays(t, d, base) {
			t.Fatalf("snapped=%v: the fast path did not take a plain datagram", snapped)
		}
		for i := 0; i < 200000; i++ {
			pkt := bytes.Clone(base)
			for n := rand.IntN(3) + 1; n > 0 && len(pkt) >= 28; n-- {
				switch rand.IntN(7) {
				case 0:
					binary.BigEndian.PutUint16(pkt[2:], uint16(rand.IntN(len(pkt)+16)))
				case 1:
					binary.BigEndian.PutUint16(pkt[24:], uint16(rand.IntN(len(pkt)+16)))
				case 2:
					pkt[6], pkt[7] = byte(rand.IntN(256)), byte(rand.IntN(4))
				case 3:
					pkt[0] = []byte{0x45, 0x46, 0x44, 0x55, 0x65}[rand.IntN(5)]
				case 4:
					pkt[9] = []byte{17, 6, 1, 4, 47}[rand.IntN(5)]
				case 5:
					pkt = pkt[:rand.IntN(len(pkt)+1)]
				default:
					pkt[rand.IntN(len(pkt))] = byte(rand.IntN(256))
				}
			}
			if decodeBothWays(t, d, pkt) {
				took++
			}
		}
	}
	if took < 10000 {
		t.Fatalf("the fast path took only %d mutated datagrams: the comparison proves little", took)
	}
}

// FuzzFastUDP4 compares the fast path with the layer walk on any input.
func FuzzFastUDP4(f *testing.F) {
	_, ips := generatedSeeds(f)
	for _, s := range ips {
		f.Add(s, false)
	}
	f.Add(serialize(f, ip4(cam4, nvr4, 17), udp(1, 2), payload("x")), true)
	f.Fuzz(func(t *testing.T, data []byte, snapped bool) {
		d := NewDecoder()
		d.Snapped = snapped
		decodeBothWays(t, d, data)
	})
}
