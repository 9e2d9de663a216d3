package engine

import (
	"encoding/binary"
	"testing"

	"github.com/picoseg/picoseg/pkg/packet"
)

// ip4Packet builds an IPv4 packet of proto carrying body (checksums left
// zero: the engine never reads them).
func ip4Packet(src, dst [4]byte, proto uint8, body []byte) []byte {
	b := make([]byte, 20+len(body))
	b[0], b[8], b[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	copy(b[20:], body)
	return b
}

func tcpHeader(sport, dport uint16, flags uint8) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], sport)
	binary.BigEndian.PutUint16(h[2:4], dport)
	h[12], h[13] = 5<<4, flags
	return h
}

// fuzzSeeds are packet sequences in the fuzz input's framing: each packet
// is preceded by its length (one byte).
func fuzzSeeds() [][]byte {
	admin, plug := [4]byte{10, 88, 0, 10}, [4]byte{10, 77, 0, 21}
	syn := ip4Packet(admin, plug, packet.ProtoTCP, tcpHeader(40000, 8080, packet.TCPSyn))
	ack := ip4Packet(plug, admin, packet.ProtoTCP, tcpHeader(8080, 40000, packet.TCPAck))
	plugSYN := ip4Packet(plug, admin, packet.ProtoTCP, tcpHeader(8080, 40000, packet.TCPSyn))
	ping := ip4Packet(admin, plug, packet.ProtoICMP, []byte{8, 0, 0, 0, 0, 7, 0, 1})
	pingBack := ip4Packet(plug, admin, packet.ProtoICMP, []byte{8, 0, 0, 0, 0, 7, 0, 1})
	unreach := ip4Packet(plug, admin, packet.ProtoICMP, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, syn[:28]...))
	// A SYN to a port the admin may not open on the plug, and an error
	// quoting it: a flow the policy denies either way.
	denied := ip4Packet(admin, plug, packet.ProtoTCP, tcpHeader(40000, 9999, packet.TCPSyn))
	unreachDenied := ip4Packet(plug, admin, packet.ProtoICMP, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, denied[:28]...))
	frame := func(ps ...[]byte) []byte {
		var out []byte
		for _, p := range ps {
			out = append(append(out, byte(len(p))), p...)
		}
		return out
	}
	return [][]byte{
		frame(ack, plugSYN, ack),
		frame(syn, ack, plugSYN),
		frame(ping, pingBack, ping),
		frame(unreach, syn, unreach),
		frame(unreachDenied, denied, unreachDenied),
	}
}

// Any sequence of packets, however malformed, is judged without a panic,
// and an ICMP error never adds a flow to the table.
func FuzzJudgeSequence(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	pol := compile(f, openerPolicy)
	f.Fuzz(func(t *testing.T, data []byte) {
		e := New(pol, Options{FlowCapacity: 64})
		w := e.NewWorker()
		dec := packet.NewDecoder()
		var p packet.Packet
		now := monday10.UnixNano()
		for len(data) > 0 {
			n := int(data[0])
			data = data[1:]
			if n > len(data) {
				n = len(data)
			}
			dec.DecodeIP(data[:n], &p)
			data = data[n:]
			before := e.Flows().Len()
			d := w.Judge(&p, now, NoMeta)
			if d.Related && e.Flows().Len() != before {
				t.Fatalf("an ICMP error added a flow: %+v", d)
			}
			if d.Verdict != Accept && d.Verdict != Drop && d.Verdict != NeedMore {
				t.Fatalf("verdict %v", d.Verdict)
			}
			now += 1e6
		}
	})
}

// The seeds are the attacks in raw bytes, through the decoder: the plug's
// SYN after its bare ACK, its ping back, and an error quoting a flow the
// policy denies are refused; an error quoting an allowed flow passes,
// whether the table holds the flow or not.
func TestFuzzSeedsAreTheAttacks(t *testing.T) {
	pol := compile(t, openerPolicy)
	want := [][]Verdict{{Accept, Drop, Drop}, {Accept, Accept, Drop}, {Accept, Drop, Accept}, {Accept, Accept, Accept}, {Drop, Drop, Drop}}
	for i, s := range fuzzSeeds() {
		w := New(pol, Options{}).NewWorker()
		dec := packet.NewDecoder()
		var p packet.Packet
		var got []Verdict
		for len(s) > 0 {
			n := int(s[0])
			dec.DecodeIP(s[1:1+n], &p)
			s = s[1+n:]
			got = append(got, w.Judge(&p, monday10.UnixNano(), NoMeta).Verdict)
		}
		if len(got) != len(want[i]) {
			t.Fatalf("seed %d: %v", i, got)
		}
		for j := range got {
			if got[j] != want[i][j] {
				t.Errorf("seed %d packet %d: %s, want %s", i, j, got[j], want[i][j])
			}
		}
	}
}
