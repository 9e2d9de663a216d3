package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/packet"
)

// benchmarkNewFlows judges new TCP flows from the plug to the 16 cloud
// addresses under dnsPolicy with the plug's rule's destination to.
func benchmarkNewFlows(b *testing.B, to string) {
	src := strings.Replace(dnsPolicy, `to = "dns:*.tplinkcloud.com"`, `to = "`+to+`"`, 1)
	e := New(compile(b, src), Options{FlowCapacity: 1 << 20})
	w := e.NewWorker()
	now := monday10.UnixNano()
	var addrs []string
	var dsts []netip.Addr
	for i := 0; i < 16; i++ {
		a := netip.AddrFrom4([4]byte{52, 49, 65, byte(100 + i)})
		dsts = append(dsts, a)
		addrs = append(addrs, a.String())
	}
	q := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP, Src: netip.MustParseAddr("10.77.0.5"), Dst: netip.MustParseAddr("10.77.0.1"), SrcPort: 40000, DstPort: 53, Length: 60}
	q.Payload = dnsMsg(b, 1, "devs.tplinkcloud.com", 0, false)
	w.Judge(&q, now, NoMeta)
	a := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP, Src: q.Dst, Dst: q.Src, SrcPort: 53, DstPort: 40000, Length: 200}
	a.Payload = dnsMsg(b, 1, "devs.tplinkcloud.com", 3600, true, addrs...)
	if d := w.Judge(&a, now, NoMeta); d.Verdict != Accept {
		b.Fatalf("answer: %+v", d)
	}
	p := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP, Src: q.Src, DstPort: 443, TCPFlags: packet.TCPSyn, Length: 60}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Dst = dsts[i%16]
		p.SrcPort = uint16(1024 + (i/16)%60000)
		if d := w.Judge(&p, now, NoMeta); d.Verdict != Accept && !d.Cached {
			b.Fatalf("flow %d: %v %v", i, d.Verdict, d.Reason)
		}
	}
}

// BenchmarkDNSRuleNewFlow is the cost of a new flow's verdict under a
// dns: destination, beside the same rule naming the addresses by net:.
func BenchmarkDNSRuleNewFlow(b *testing.B) {
	b.Run("to=dns", func(b *testing.B) { benchmarkNewFlows(b, "dns:*.tplinkcloud.com") })
	b.Run("to=net", func(b *testing.B) { benchmarkNewFlows(b, "net:52.49.65.0/24") })
}

// BenchmarkDNSQueryAnswer is one query and its answer (four addresses)
// through the observer: parsed, matched and recorded.
func BenchmarkDNSQueryAnswer(b *testing.B) {
	e := New(compile(b, dnsPolicy), Options{FlowCapacity: 1 << 20})
	w := e.NewWorker()
	now := monday10.UnixNano()
	q := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP, Src: netip.MustParseAddr("10.77.0.5"), Dst: netip.MustParseAddr("10.77.0.1"), DstPort: 53, Length: 60}
	a := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP, Src: q.Dst, Dst: q.Src, SrcPort: 53, Length: 200}
	qs := make([][]byte, 256)
	as := make([][]byte, 256)
	for i := range qs {
		qs[i] = dnsMsg(b, uint16(i), "devs.tplinkcloud.com", 0, false)
		as[i] = dnsMsg(b, uint16(i), "devs.tplinkcloud.com", 60, true, "52.49.65.150", "52.49.107.41", "52.209.224.132", "52.18.200.165")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		port := uint16(1024 + i%60000)
		q.SrcPort, a.DstPort = port, port
		q.Payload, a.Payload = qs[i%256], as[i%256]
		w.Judge(&q, now, NoMeta)
		if d := w.Judge(&a, now, NoMeta); d.Verdict != Accept {
			b.Fatalf("answer %d: %v", i, d.Reason)
		}
		now += 1000
	}
}
