package engine

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/packet"
	"testing"
)

// benchFlows judges b.N new TCP flows (distinct keys: up to 16 million) to port, each its handshake and its
// client's first segment (payload), and reports new flows per second and
// the packets each flow needed judged in userspace before it was decided.
func benchFlows(b *testing.B, port uint16, payload []byte) {
	b.Helper()
	w := New(compile(b, appPolicy), Options{FlowCapacity: 1 << 16}).NewWorker()
	now := monday10.UnixNano()
	var judged int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &conv{cli: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 77, 0, byte(2 + (i/64000)%250)}), uint16(1024+i%64000)),
			srv: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), port), cliSeq: uint32(i), srvSeq: 7}
		syn, synAck, data := c.syn(), c.synAck(), c.data(payload)
		for _, p := range []any{syn, synAck, data} {
			now += 1000
			d := w.Judge(p.(*packet.Packet), now, NoMeta)
			judged++
			if d.Verdict == Drop {
				b.Fatalf("flow %d dropped: %v", i, d.Reason)
			}
			if d.Verdict == Accept && d.Cached {
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(judged)/float64(b.N), "judged-pkts/flow")
}

// BenchmarkNewFlowTLS and BenchmarkNewFlowPlain are the cost of a new flow
// under a rule with app = "tls" (server names checked) and under one
// without: the ClientHello is read and judged in userspace.
func BenchmarkNewFlowTLS(b *testing.B) { benchFlows(b, 443, tlsHello("api.example.com")) }

func BenchmarkNewFlowPlain(b *testing.B) { benchFlows(b, 8080, tlsHello("api.example.com")) }

// BenchmarkModbusRequest is the cost of one request of a lifelong flow:
// every Modbus request is judged in userspace.
func BenchmarkModbusRequest(b *testing.B) {
	w := New(compile(b, appPolicy), Options{}).NewWorker()
	c := newConv("10.77.0.5:40100", "10.77.0.9:502")
	now := monday10.UnixNano()
	w.Judge(c.syn(), now, NoMeta)
	w.Judge(c.synAck(), now+1, NoMeta)
	read := mbap(1, 3, 0, 0, 0, 2)
	p := c.data(read)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 1000
		if d := w.Judge(p, now, NoMeta); d.Verdict != NeedMore {
			b.Fatalf("verdict %v %v", d.Verdict, d.Reason)
		}
		p.Seq += uint32(len(read))
	}
}
