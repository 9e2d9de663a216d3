package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// largePolicy builds a policy the size of a big site: devices spread over
// a /16 in 100 groups, and rules of every selector kind.
func largePolicy(devices, rules int) *config.Config {
	cfg := &config.Config{Daemon: config.Daemon{Timezone: time.UTC}}
	cfg.Zones = []config.Zone{
		{Name: "wan", Networks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
		{Name: "iot", Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	}
	cfg.Segments = []config.Segment{{From: "iot", To: "wan", Action: config.SegmentMicro}, {From: "iot", To: "iot", Action: config.SegmentMicro}}
	for g := 0; g < 100; g++ {
		cfg.Groups = append(cfg.Groups, config.Group{Name: fmt.Sprintf("g%d", g)})
	}
	for d := 0; d < devices; d++ {
		cfg.Devices = append(cfg.Devices, config.Device{
			Name:   fmt.Sprintf("d%d", d),
			HasMAC: true, MAC: [6]byte{2, 0, 0, byte(d >> 16), byte(d >> 8), byte(d)},
			IPs:    []netip.Addr{devAddr(d)},
			Groups: []string{fmt.Sprintf("g%d", d%100), fmt.Sprintf("g%d", (d/100)%100)},
		})
	}
	for i := 0; i < rules; i++ {
		a := config.Allow{Name: fmt.Sprintf("r%d", i)}
		port := uint16(1000 + i%5000)
		switch i % 4 {
		case 0:
			a.From = config.Endpoint{Kind: config.EndpointDevice, Name: fmt.Sprintf("d%d", i%devices)}
			a.To = config.Endpoint{Kind: config.EndpointDevice, Name: fmt.Sprintf("d%d", (i*7)%devices)}
		case 1:
			a.From = config.Endpoint{Kind: config.EndpointGroup, Name: fmt.Sprintf("g%d", i%100)}
			a.To = config.Endpoint{Kind: config.EndpointZone, Name: "wan"}
		case 2:
			a.From = config.Endpoint{Kind: config.EndpointDevice, Name: fmt.Sprintf("d%d", i%devices)}
			a.To = config.Endpoint{Kind: config.EndpointNet, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), 0}), 24)}
		default:
			a.From = config.Endpoint{Kind: config.EndpointGroup, Name: fmt.Sprintf("g%d", i%100)}
			a.To = config.Endpoint{Kind: config.EndpointGroup, Name: fmt.Sprintf("g%d", (i/100)%100)}
		}
		a.Services = []config.Service{{Proto: packet.ProtoTCP, PortLo: port, PortHi: port + uint16(i%3)}, {Proto: packet.ProtoUDP, PortLo: port, PortHi: port}}
		cfg.Allows = append(cfg.Allows, a)
	}
	return cfg
}

func devAddr(d int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(d >> 16), byte(d >> 8), byte(d)})
}

func mustCompile(tb testing.TB, cfg *config.Config) *policy.Policy {
	tb.Helper()
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return pol
}

// missPackets returns packets that each start a new flow from a known
// device to the wan; about half are allowed by a group rule.
func missPackets(devices, n int) []packet.Packet {
	ps := make([]packet.Packet, n)
	for i := range ps {
		d := (i * 7919) % devices
		ps[i] = packet.Packet{Kind: packet.KindOK, HasMAC: true, SrcMAC: [6]byte{2, 0, 0, byte(d >> 16), byte(d >> 8), byte(d)},
			Src: devAddr(d), Dst: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Proto: packet.ProtoTCP,
			SrcPort: uint16(1024 + i%60000), DstPort: uint16(1000 + (i*13)%5000), Length: 60, TCPFlags: packet.TCPSyn}
	}
	return ps
}

func TestNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10 000-device policy")
	}
	pol := mustCompile(t, largePolicy(10000, 10000))
	e := New(pol, Options{FlowCapacity: 1 << 20})
	w := e.NewWorker()
	ps := missPackets(10000, 4096)
	now := monday10.UnixNano()
	i := 0
	miss := testing.AllocsPerRun(1000, func() {
		p := &ps[i%len(ps)]
		p.SrcPort++ // a new flow every time
		w.Judge(p, now, NoMeta)
		i++
	})
	if miss != 0 {
		t.Errorf("miss path: %v allocations per packet, want 0", miss)
	}
	p := &ps[0]
	w.Judge(p, now, NoMeta)
	hit := testing.AllocsPerRun(1000, func() { w.Judge(p, now, NoMeta) })
	if hit != 0 {
		t.Errorf("cached path: %v allocations per packet, want 0", hit)
	}
	if d := w.Judge(p, now, NoMeta); !d.Cached {
		t.Fatalf("second packet of a flow was not cached: %+v", d)
	}
	// Denied flows raise events: still no allocation with a sink that
	// keeps nothing.
	var events int
	e2 := New(pol, Options{FlowCapacity: 1 << 16, Sink: SinkFunc(func(Event) { events++ })})
	w2 := e2.NewWorker()
	deny := ps[1]
	deny.DstPort = 9 // no rule allows port 9
	deny1 := testing.AllocsPerRun(1000, func() {
		deny.SrcPort++
		w2.Judge(&deny, now, NoMeta)
	})
	if deny1 != 0 || events == 0 {
		t.Errorf("deny path: %v allocations per packet (events %d), want 0", deny1, events)
	}
}

func BenchmarkJudgeCached(b *testing.B) {
	pol := mustCompile(b, largePolicy(10000, 10000))
	w := New(pol, Options{}).NewWorker()
	ps := missPackets(10000, 1024)
	now := monday10.UnixNano()
	for i := range ps {
		w.Judge(&ps[i], now, NoMeta)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := w.Judge(&ps[i%len(ps)], now, NoMeta); !d.Cached {
			b.Fatal("not cached")
		}
	}
}

func benchmarkMiss(b *testing.B, devices, rules int) {
	pol := mustCompile(b, largePolicy(devices, rules))
	// The default flow table: once it is full every new flow also evicts
	// the least recently used one, as on a busy gateway.
	w := New(pol, Options{}).NewWorker()
	ps := missPackets(devices, 8192)
	now := monday10.UnixNano()
	accepted := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &ps[i%len(ps)]
		p.SrcPort++
		d := w.Judge(p, now, NoMeta)
		if !d.NewFlow {
			b.Fatal("not a new flow")
		}
		if d.Verdict == Accept {
			accepted++
		}
	}
	b.StopTimer()
	if b.N > 10000 && accepted == 0 {
		b.Fatal("no packet was accepted: the benchmark measures only denials")
	}
}

func BenchmarkJudgeMiss(b *testing.B) {
	for _, rules := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("devices=10000/rules=%d", rules), func(b *testing.B) { benchmarkMiss(b, 10000, rules) })
	}
}

// queryFlows returns n tracked flows from known devices to the wan, as
// the daemon asks about its conntrack entries.
func queryFlows(devices, n int) []Query {
	ps := missPackets(devices, n)
	qs := make([]Query, n)
	for i := range ps {
		qs[i] = Query{From: ps[i].Src, To: ps[i].Dst, Proto: ps[i].Proto, DPort: ps[i].DstPort, At: monday10, Existing: true}
	}
	return qs
}

// BenchmarkJudgeQuery is enforcement's question about one tracked flow.
func BenchmarkJudgeQuery(b *testing.B) {
	e := New(mustCompile(b, largePolicy(10000, 10000)), Options{})
	qs := queryFlows(10000, 8192)
	accepted := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if e.Judge(qs[i%len(qs)]).Verdict == Accept {
			accepted++
		}
	}
	b.StopTimer()
	if b.N > 10000 && accepted == 0 {
		b.Fatal("no flow was accepted: the benchmark measures only denials")
	}
}

// BenchmarkExplainQuery is the same question with every stage's answer.
func BenchmarkExplainQuery(b *testing.B) {
	e := New(mustCompile(b, largePolicy(10000, 10000)), Options{})
	qs := queryFlows(10000, 8192)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.ExplainQuery(qs[i%len(qs)])
	}
}
