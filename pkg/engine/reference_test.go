package engine

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// naive is the obvious, slow reading of a policy: scan everything in the
// order written. The compiled policy must agree with it on every packet.
type naive struct{ cfg *config.Config }

func (n naive) zoneOf(a netip.Addr) string {
	best, bits := "", -1
	for _, z := range n.cfg.Zones {
		for _, p := range z.Networks {
			if p.Contains(a) && p.Bits() > bits {
				best, bits = z.Name, p.Bits()
			}
		}
	}
	return best
}

func (n naive) device(a netip.Addr) *config.Device {
	for i := range n.cfg.Devices {
		for _, ip := range n.cfg.Devices[i].IPs {
			if ip == a {
				return &n.cfg.Devices[i]
			}
		}
	}
	return nil
}

func (n naive) covers(e config.Endpoint, a netip.Addr) bool {
	d := n.device(a)
	switch e.Kind {
	case config.EndpointAny:
		return true
	case config.EndpointDevice:
		return d != nil && d.Name == e.Name
	case config.EndpointGroup:
		if d != nil {
			for _, g := range d.Groups {
				if g == e.Name {
					return true
				}
			}
		}
	case config.EndpointZone:
		return n.zoneOf(a) == e.Name
	case config.EndpointNet:
		return e.Prefix.Contains(a)
	}
	return false
}

func serviceCovers(s config.Service, proto uint8, port uint16) bool {
	if s.Proto == 0 {
		return true
	}
	if s.Proto != proto {
		return false
	}
	if proto == packet.ProtoTCP || proto == packet.ProtoUDP {
		return port >= s.PortLo && port <= s.PortHi
	}
	return true
}

// judge returns layer and rule name for a packet without pico constraints.
func (n naive) judge(p *packet.Packet) (Layer, string) {
	fz, tz := n.zoneOf(p.Src), n.zoneOf(p.Dst)
	var seg *config.Segment
	bestSpec := 0
	for i := range n.cfg.Segments {
		s := &n.cfg.Segments[i]
		if (s.From == fz || s.From == "*") && (s.To == tz || s.To == "*") {
			spec := 1
			if s.From != "*" {
				spec += 2
			}
			if s.To != "*" {
				spec++
			}
			if spec > bestSpec {
				seg, bestSpec = s, spec
			}
		}
	}
	if seg == nil || seg.Action == config.SegmentDeny || seg.Action == config.SegmentAllow {
		if seg == nil {
			return LayerSegment, ""
		}
		return LayerSegment, seg.From + "->" + seg.To
	}
	for _, a := range n.cfg.Allows {
		if !n.covers(a.From, p.Src) || !n.covers(a.To, p.Dst) {
			continue
		}
		if len(a.Services) == 0 {
			return LayerPico, a.Name
		}
		for _, s := range a.Services {
			if serviceCovers(s, p.Proto, p.DstPort) {
				return LayerPico, a.Name
			}
		}
	}
	return LayerMicro, ""
}

// randomPolicy builds a policy with overlapping zones, shared groups,
// net selectors of several lengths and overlapping port ranges.
func randomPolicy(r *rand.Rand, devices, rules int) *config.Config {
	cfg := &config.Config{Daemon: config.Daemon{Timezone: time.UTC}}
	cfg.Zones = []config.Zone{
		{Name: "wan", Networks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
		{Name: "iot", Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
		{Name: "cams", Networks: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}},
		{Name: "lan", Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
	}
	zones := []string{"wan", "iot", "cams", "lan", "*"}
	actions := []config.SegmentAction{config.SegmentDeny, config.SegmentAllow, config.SegmentMicro, config.SegmentMicro, config.SegmentMicro}
	for i := 0; i < 12; i++ {
		cfg.Segments = append(cfg.Segments, config.Segment{From: zones[r.IntN(5)], To: zones[r.IntN(5)], Action: actions[r.IntN(len(actions))]})
	}
	for g := 0; g < 6; g++ {
		cfg.Groups = append(cfg.Groups, config.Group{Name: fmt.Sprintf("g%d", g)})
	}
	for d := 0; d < devices; d++ {
		dev := config.Device{Name: fmt.Sprintf("d%d", d), IPs: []netip.Addr{randAddr(r)}}
		if cfg.Devices != nil && naiveHas(cfg, dev.IPs[0]) {
			continue
		}
		for g := 0; g < 6; g++ {
			if r.IntN(3) == 0 {
				dev.Groups = append(dev.Groups, fmt.Sprintf("g%d", g))
			}
		}
		cfg.Devices = append(cfg.Devices, dev)
	}
	for i := 0; i < rules; i++ {
		a := config.Allow{Name: fmt.Sprintf("r%d", i), From: randEndpoint(r, cfg), To: randEndpoint(r, cfg)}
		for s := r.IntN(3); s > 0; s-- {
			a.Services = append(a.Services, randService(r))
		}
		cfg.Allows = append(cfg.Allows, a)
	}
	return cfg
}

func naiveHas(cfg *config.Config, a netip.Addr) bool {
	return naive{cfg}.device(a) != nil
}

func randAddr(r *rand.Rand) netip.Addr {
	switch r.IntN(4) {
	case 0:
		return netip.AddrFrom4([4]byte{10, 0, 1, byte(r.IntN(8))})
	case 1:
		return netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(8))})
	case 2:
		return netip.AddrFrom4([4]byte{10, 1, 0, byte(r.IntN(8))})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(8))})
}

func randEndpoint(r *rand.Rand, cfg *config.Config) config.Endpoint {
	switch r.IntN(6) {
	case 0:
		return config.Endpoint{Kind: config.EndpointAny}
	case 1:
		return config.Endpoint{Kind: config.EndpointDevice, Name: cfg.Devices[r.IntN(len(cfg.Devices))].Name}
	case 2:
		return config.Endpoint{Kind: config.EndpointGroup, Name: fmt.Sprintf("g%d", r.IntN(6))}
	case 3:
		return config.Endpoint{Kind: config.EndpointZone, Name: cfg.Zones[r.IntN(len(cfg.Zones))].Name}
	}
	bits := []int{8, 16, 24, 29, 32}[r.IntN(5)]
	p, _ := randAddr(r).Prefix(bits)
	return config.Endpoint{Kind: config.EndpointNet, Prefix: p}
}

func randService(r *rand.Rand) config.Service {
	switch r.IntN(6) {
	case 0:
		return config.Service{Proto: packet.ProtoICMP}
	case 1:
		return config.Service{Proto: packet.ProtoTCP, PortLo: 0, PortHi: 65535}
	case 2:
		return config.Service{}
	}
	proto := []uint8{packet.ProtoTCP, packet.ProtoUDP}[r.IntN(2)]
	lo := uint16(r.IntN(40))
	return config.Service{Proto: proto, PortLo: lo, PortHi: lo + uint16(r.IntN(10))}
}

func TestCompiledAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	at := monday10.UnixNano()
	checked := 0
	for round := 0; round < 200; round++ {
		cfg := randomPolicy(r, 20, 1+r.IntN(30))
		pol, err := policy.Compile(cfg, policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ref := naive{cfg}
		for i := 0; i < 200; i++ {
			// A fresh engine per packet: the naive reader knows nothing of
			// flows, and two random packets may share one.
			w := New(pol, Options{FlowCapacity: 16}).NewWorker()
			p := &packet.Packet{Kind: packet.KindOK, Src: randAddr(r), Dst: randAddr(r), Length: 60}
			p.Proto = []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP, packet.ProtoGRE}[r.IntN(4)]
			if p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP {
				p.SrcPort, p.DstPort = uint16(1000+i), uint16(r.IntN(50))
			}
			if p.Proto == packet.ProtoTCP {
				p.TCPFlags = packet.TCPSyn
			}
			if p.Proto == packet.ProtoICMP {
				p.ICMPType = 8 // echo request: its sender opens the flow
			}
			wantLayer, wantRule := ref.judge(p)
			d := w.Judge(p, at, NoMeta)
			if d.Layer != wantLayer || d.RuleName(pol) != wantRule {
				for _, s := range cfg.Segments {
					t.Logf("segment %s -> %s %s", s.From, s.To, s.Action)
				}
				t.Logf("zones %q %q / compiled %d %d", ref.zoneOf(p.Src), ref.zoneOf(p.Dst), pol.ZoneOfAddr(p.Src), pol.ZoneOfAddr(p.Dst))
				t.Fatalf("round %d packet %d %s:%d -> %s:%d proto %d: compiled says %s %q, naive says %s %q",
					round, i, p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto, d.Layer, d.RuleName(pol), wantLayer, wantRule)
			}
			checked++
		}
	}
	t.Logf("%d packets agreed", checked)
}
