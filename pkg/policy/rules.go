package policy

import (
	"fmt"
	"net/netip"

	"github.com/picoseg/picoseg/pkg/config"
)

// selector is one way an allow rule can name an endpoint, packed into an
// integer so that index lookups hash eight bytes: kind in the high half,
// the device, group, zone or net-selector number in the low half.
type selector uint64

const (
	selAny selector = iota << 32
	selDevice
	selGroup
	selZone
	selNet
	selGateway
)

func sel(kind selector, id int32) selector { return kind | selector(uint32(id)) }

// serviceIndex answers, for one (source selector, destination selector)
// pair, which of its rules first permits a protocol and port.
type serviceIndex struct {
	anyRule int32       // first rule with no service restriction
	protos  []protoRule // rules naming a protocol with every port
	tcp     portIndex
	udp     portIndex

	tcpRanges, udpRanges []portRange // kept only while compiling
}

type protoRule struct {
	proto uint8
	rule  int32
}

func (s *serviceIndex) lookup(proto uint8, port uint16) int32 {
	best := s.anyRule
	for _, pr := range s.protos {
		if pr.proto == proto && (best < 0 || pr.rule < best) {
			best = pr.rule
		}
	}
	var r int32 = -1
	switch proto {
	case 6:
		r = s.tcp.lookup(port)
	case 17:
		r = s.udp.lookup(port)
	}
	if r >= 0 && (best < 0 || r < best) {
		best = r
	}
	return best
}

type resolver struct {
	zone, group, device map[string]int32
}

func (p *Policy) selectorOf(e config.Endpoint, names resolver, netIDs map[netip.Prefix]int32) (selector, error) {
	switch e.Kind {
	case config.EndpointAny:
		return selAny, nil
	case config.EndpointGateway:
		return selGateway, nil
	case config.EndpointNet:
		id, ok := netIDs[e.Prefix]
		if !ok {
			id = int32(len(netIDs))
			netIDs[e.Prefix] = id
			p.netSel.add(e.Prefix, id)
		}
		return sel(selNet, id), nil
	}
	var m map[string]int32
	var kind selector
	switch e.Kind {
	case config.EndpointDevice:
		m, kind = names.device, selDevice
	case config.EndpointGroup:
		m, kind = names.group, selGroup
	case config.EndpointZone:
		m, kind = names.zone, selZone
	}
	id, ok := m[e.Name]
	if !ok {
		return 0, fmt.Errorf("%s: unknown %s", e.Pos, e.String())
	}
	return sel(kind, id), nil
}

func (p *Policy) compileRules(allows []config.Allow, names resolver) error {
	netIDs := p.netIDs
	for i := range allows {
		a := &allows[i]
		ri := int32(i)
		from, err := p.selectorOf(a.From, names, netIDs)
		if err != nil {
			return err
		}
		to, err := p.selectorOf(a.To, names, netIDs)
		if err != nil {
			return err
		}
		byDst := p.pairs[from]
		if byDst == nil {
			byDst = map[selector]*serviceIndex{}
			p.pairs[from] = byDst
		}
		idx := byDst[to]
		if idx == nil {
			idx = &serviceIndex{anyRule: None}
			byDst[to] = idx
		}
		if len(a.Services) == 0 && idx.anyRule < 0 {
			idx.anyRule = ri
		}
		for _, s := range a.Services {
			switch {
			case s.Proto == 0:
				if idx.anyRule < 0 {
					idx.anyRule = ri
				}
			case (s.Proto == 6 || s.Proto == 17) && !(s.PortLo == 0 && s.PortHi == 65535):
				r := portRange{lo: s.PortLo, hi: s.PortHi, rule: ri}
				if s.Proto == 6 {
					idx.tcpRanges = append(idx.tcpRanges, r)
				} else {
					idx.udpRanges = append(idx.udpRanges, r)
				}
			default:
				idx.protos = append(idx.protos, protoRule{proto: s.Proto, rule: ri})
			}
		}
		r := p.compileRule(a, from)
		if err := compileApp(&r, a.App); err != nil {
			return err
		}
		p.Rules = append(p.Rules, r)
	}
	for _, byDst := range p.pairs {
		for _, idx := range byDst {
			idx.tcp = buildPortIndex(idx.tcpRanges)
			idx.udp = buildPortIndex(idx.udpRanges)
			idx.tcpRanges, idx.udpRanges = nil, nil
		}
	}
	return nil
}

func (p *Policy) compileRule(a *config.Allow, from selector) Rule {
	r := Rule{
		Name:  a.Name,
		From:  a.From.String(),
		To:    a.To.String(),
		Pos:   a.Pos,
		Pico:  a.HasPico(),
		Hours: a.Hours,
		Days:  a.Days,
	}
	if a.PacketSize != nil {
		r.HasSize, r.SizeMin, r.SizeMax = true, uint16(a.PacketSize.Min), uint16(a.PacketSize.Max)
	}
	if a.MaxFlowBytes > 0 {
		r.MaxFlow = uint64(a.MaxFlowBytes)
	}
	if b := a.MaxDeviceBytes; b != nil {
		r.MaxDevice, r.MaxPer = uint64(b.Bytes), b.Per
	}
	if b := a.MinDeviceBytes; b != nil {
		r.MinDevice, r.MinPer = uint64(b.Bytes), b.Per
		for d := range p.Devices {
			if p.selectorCovers(from, int32(d)) {
				r.MinSubjects = append(r.MinSubjects, int32(d))
			}
		}
	}
	r.NewFlows, r.NewFlowPer = a.MaxNewFlows.Count, a.MaxNewFlows.Per
	r.FanPeers, r.FanPorts, r.FanWindow = a.FanOut.MaxPeers, a.FanOut.MaxPorts, a.FanOut.Window
	return r
}

// selectorCovers reports whether a known device falls under a selector.
func (p *Policy) selectorCovers(s selector, d int32) bool {
	dev := &p.Devices[d]
	id := int32(uint32(s))
	switch s &^ 0xffffffff {
	case selAny:
		return true
	case selDevice:
		return id == d
	case selGroup:
		for _, g := range dev.Groups {
			if g == id {
				return true
			}
		}
	case selZone:
		return dev.Zone == id
	case selNet:
		for _, a := range dev.Addrs {
			var buf [8]int32
			for _, n := range p.netSel.appendAll(buf[:0], a) {
				if n == id {
					return true
				}
			}
		}
	}
	return false
}

// Side describes one end of a flow as the engine identified it.
type Side struct {
	Addr   netip.Addr
	Device int32 // None when unknown
	Zone   int32 // None when in no zone
}

// Scratch is working space for Match, so that matching allocates nothing.
// Keep one per goroutine.
type Scratch struct {
	src, dst [48]selector
	nets     [48]int32
}

// Match returns the first allow rule (lowest index) that permits a flow
// from src to dst on proto and destination port, or None. It costs one map
// probe per pair of selectors that could name the two sides: a handful,
// whatever the number of rules.
func (p *Policy) Match(src, dst *Side, proto uint8, port uint16, s *Scratch) int32 {
	srcSel := p.selectors(src, s.src[:0], s.nets[:0], false)
	best := None
	for _, a := range srcSel {
		byDst := p.pairs[a]
		if byDst == nil {
			continue
		}
		dstSel := p.selectors(dst, s.dst[:0], s.nets[:0], true)
		for _, b := range dstSel {
			idx := byDst[b]
			if idx == nil {
				continue
			}
			if r := idx.lookup(proto, port); r >= 0 && (best < 0 || r < best) {
				best = r
			}
		}
	}
	return best
}

func (p *Policy) selectors(side *Side, out []selector, nets []int32, isDst bool) []selector {
	out = append(out, selAny)
	if side.Zone >= 0 {
		out = append(out, sel(selZone, side.Zone))
	}
	if side.Device >= 0 {
		out = append(out, sel(selDevice, side.Device))
		for _, g := range p.Devices[side.Device].Groups {
			out = append(out, sel(selGroup, g))
		}
	} else if p.unknownGroup >= 0 && side.Zone >= 0 && p.Zones[side.Zone].Local {
		// A device the policy does not name, on one of our own networks,
		// is in the unknown-devices group, which the policy restricts.
		out = append(out, sel(selGroup, p.unknownGroup))
	}
	if isDst && side.Zone == Gateway {
		// Only a flow to the gateway itself (the input hook, or offline an
		// address of the gateway) matches "gateway". The gateway's own
		// address is never also in a zone: "zone:lan" does not open the
		// router's LAN address.
		out = append(out, selGateway)
	}
	for _, n := range p.netSel.appendAll(nets, side.Addr) {
		out = append(out, sel(selNet, n))
	}
	return out
}
