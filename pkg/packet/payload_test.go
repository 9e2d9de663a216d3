package packet

import (
	"bytes"
	"testing"
)

// samePacket compares two decodes of one input: every field, and the
// payload by its bytes.
func samePacket(a, b *Packet) bool {
	x, y := *a, *b
	x.Payload, y.Payload = nil, nil
	return x.Kind == y.Kind && x.HasMAC == y.HasMAC && x.SrcMAC == y.SrcMAC && x.DstMAC == y.DstMAC && x.VLAN == y.VLAN &&
		x.Src == y.Src && x.Dst == y.Dst && x.Proto == y.Proto && x.Length == y.Length && x.SrcPort == y.SrcPort &&
		x.DstPort == y.DstPort && x.ICMPType == y.ICMPType && x.ICMPCode == y.ICMPCode && x.TCPFlags == y.TCPFlags &&
		x.ICMPID == y.ICMPID && x.Quoted == y.Quoted && x.Seq == y.Seq && x.PayloadLen == y.PayloadLen &&
		bytes.Equal(a.Payload, b.Payload)
}

// The transport payload is exposed as delivered, its wire length from the
// headers: a snapped packet says how much is missing.
func TestPayload(t *testing.T) {
	data := []byte{
		0x45, 0, 0, 48, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4, total 48
		0x30, 0x39, 0x01, 0xbb, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0, // TCP seq 0x1000
		'h', 'e', 'l', 'l', 'o', '!', '!', '!',
	}
	var p Packet
	d := NewDecoder()
	d.DecodeIP(data, &p)
	if p.Kind != KindOK || string(p.Payload) != "hello!!!" || p.PayloadLen != 8 || p.Seq != 0x1000 {
		t.Fatalf("got kind %v payload %q len %d seq %#x", p.Kind, p.Payload, p.PayloadLen, p.Seq)
	}
	// Ethernet padding past the IP length is no payload.
	d.DecodeIP(append(append([]byte{}, data...), 0, 0, 0, 0), &p)
	if string(p.Payload) != "hello!!!" {
		t.Errorf("padded: payload %q", p.Payload)
	}
	d.Snapped = true
	d.DecodeIP(data[:44], &p)
	if p.Kind != KindOK || string(p.Payload) != "hell" || p.PayloadLen != 8 {
		t.Errorf("snapped: kind %v payload %q len %d", p.Kind, p.Payload, p.PayloadLen)
	}
	if n := testing.AllocsPerRun(100, func() { d.DecodeIP(data, &p) }); n != 0 {
		t.Errorf("decode allocates %v", n)
	}
}
