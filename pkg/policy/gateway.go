package policy

import (
	"net/netip"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
)

// Gateway is the zone of the gateway itself: the destination of traffic
// that arrives at the gateway (the input hook) rather than through it.
// Segments name it "gateway"; allow rules "to = \"gateway\"". It is never a
// source: picoseg judges what reaches the gateway, not what it sends.
const Gateway int32 = -2

// IP protocol and message numbers the default services are made of.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58

	icmpEcho   = 8
	icmp6Echo  = 128
	icmp6RS    = 133
	icmp6RA    = 134
	icmp6NS    = 135
	icmp6NA    = 136
	mldQuery   = 130
	mldReport  = 131
	mldDone    = 132
	mld2Report = 143
)

// gatewayDefault is one default service to the gateway, compiled.
type gatewayDefault struct {
	service config.GatewayService
	rule    int32      // its entry in Policy.Rules, for names in events
	from    []selector // nil: the default sources
}

// GatewayService describes one default service in force, for `check`.
type GatewayService struct {
	// Rule is the name it decides under ("default:dns").
	Rule string
	// What is the service in words ("udp/53, tcp/53").
	What string
	// From says who may use it.
	From string
}

var gatewayServiceText = [...]string{
	config.GatewayDHCP:   "udp/67 (DHCP, also from 0.0.0.0 to 255.255.255.255)",
	config.GatewayDNS:    "udp/53, tcp/53 (DNS)",
	config.GatewayPing:   "icmp echo, icmpv6 echo",
	config.GatewayND:     "icmpv6 neighbour discovery, router solicitation, MLD; router advertisements only from zones with a default route",
	config.GatewayDHCPv6: "udp/547 (DHCPv6)",
}

// compileGateway records the gateway's addresses and compiles its default
// services. Each gets an entry in Rules after the policy's own, so that
// events, explain and status name it ("default:dns"), but no allow-rule
// index holds it: the engine asks GatewayDefault before the segment layer,
// because a default holds whatever the segments say. A policy narrows a
// default in [gateway], not with segments.
func (p *Policy) compileGateway(cfg *config.Config, opts Options, names resolver) error {
	// net: sources share the selectors allow rules gave their prefixes.
	for _, a := range append(append([]netip.Addr(nil), opts.GatewayAddrs...), cfg.Gateway.Addrs...) {
		p.gateway[a.Unmap()] = true
	}
	p.broadcast = map[netip.Addr]bool{}
	for _, z := range p.Zones {
		for _, n := range z.Networks {
			if n.Addr().Is4() && n.Bits() > 0 && n.Bits() <= 30 {
				p.broadcast[lastAddr4(n)] = true
			}
		}
	}
	for _, svc := range config.GatewayServices() {
		d := cfg.Gateway.Defaults[svc]
		if d.Off {
			continue
		}
		g := gatewayDefault{service: svc, rule: int32(len(p.Rules))}
		from := "every local zone"
		if svc == config.GatewayND {
			from = "anywhere (link-local)"
		}
		if len(d.From) > 0 {
			var written []string
			for _, e := range d.From {
				s, err := p.selectorOf(e, names, p.netIDs)
				if err != nil {
					return err
				}
				g.from = append(g.from, s)
				written = append(written, e.String())
			}
			from = strings.Join(written, ", ")
		}
		pos := d.Pos
		if pos.Line == 0 {
			pos = cfg.Gateway.Pos
		}
		p.Rules = append(p.Rules, Rule{Name: "default:" + svc.Key(), From: from, To: "gateway", Pos: pos})
		p.gatewayDefaults = append(p.gatewayDefaults, g)
	}
	return nil
}

// GatewayServices lists the default services in force, in order.
func (p *Policy) GatewayServices() []GatewayService {
	out := make([]GatewayService, 0, len(p.gatewayDefaults))
	for _, g := range p.gatewayDefaults {
		r := &p.Rules[g.rule]
		out = append(out, GatewayService{Rule: r.Name, What: gatewayServiceText[g.service], From: r.From})
	}
	return out
}

// GatewayDefault returns the rule of the default service that allows a
// flow from src to dst, the gateway or (DHCP, neighbour discovery) the
// whole link, or None. icmpType is the ICMP or ICMPv6
// type (0 for other protocols).
func (p *Policy) GatewayDefault(src, dst *Side, proto uint8, port uint16, icmpType uint8, s *Scratch) int32 {
	toLink := p.IsLinkBroadcast(dst.Addr)
	for i := range p.gatewayDefaults {
		g := &p.gatewayDefaults[i]
		if !serviceMatches(g.service, proto, port, icmpType) {
			continue
		}
		if toLink && (g.service == config.GatewayDNS || g.service == config.GatewayPing) {
			// Only DHCP and neighbour discovery are link-wide by nature;
			// a broadcast query would reach every device on the link.
			continue
		}
		// Router advertisements come from the upstream router. One from
		// a device of a local zone is a rogue router: never by default.
		if g.service == config.GatewayND && icmpType == icmp6RA && (src.Zone < 0 || p.Zones[src.Zone].Local) {
			continue
		}
		if p.defaultSourceOK(g, src, s) {
			return g.rule
		}
	}
	return None
}

func (p *Policy) defaultSourceOK(g *gatewayDefault, src *Side, s *Scratch) bool {
	if g.from == nil {
		if g.service == config.GatewayND {
			// Neighbour discovery never leaves the link (receivers
			// refuse it with a hop limit below 255): needed from every
			// side, the WAN's upstream router included.
			return true
		}
		// A resolver or DHCP server open to the WAN is an attack
		// surface, not a service every network needs.
		return src.Zone >= 0 && p.Zones[src.Zone].Local
	}
	for _, have := range p.selectors(src, s.src[:0], s.nets[:0], false) {
		for _, want := range g.from {
			if have == want {
				return true
			}
		}
	}
	return false
}

// serviceMatches reports whether a flow's first packet uses svc.
func serviceMatches(svc config.GatewayService, proto uint8, port uint16, icmpType uint8) bool {
	switch svc {
	case config.GatewayDHCP:
		return proto == protoUDP && port == 67
	case config.GatewayDNS:
		return (proto == protoUDP || proto == protoTCP) && port == 53
	case config.GatewayPing:
		return proto == protoICMP && icmpType == icmpEcho || proto == protoICMPv6 && icmpType == icmp6Echo
	case config.GatewayND:
		if proto != protoICMPv6 {
			return false
		}
		switch icmpType {
		case icmp6RS, icmp6RA, icmp6NS, icmp6NA, mldQuery, mldReport, mldDone, mld2Report:
			return true
		}
	case config.GatewayDHCPv6:
		return proto == protoUDP && port == 547
	}
	return false
}

// IsGatewayDst reports whether a is one of the gateway's own addresses
// (a destination offline tools take for the gateway).
func (p *Policy) IsGatewayDst(a netip.Addr) bool { return p.gateway[a.Unmap()] }

// IsLinkBroadcast reports whether a is a destination that reaches a whole
// link rather than one host: IPv4 limited or directed broadcast (of a
// zone's network), IPv4 and IPv6 multicast. The kernel hands such a
// packet both to the gateway (input) and, on a filtered bridge, to the
// other ports (forward): it is one flow, judged once, as traffic to the
// zone it was sent on.
func (p *Policy) IsLinkBroadcast(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsMulticast() {
		return true
	}
	return a.Is4() && (a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || p.broadcast[a])
}

// ZoneHasAddr reports whether one of zone z's networks holds a.
func (p *Policy) ZoneHasAddr(z int32, a netip.Addr) bool {
	if z < 0 || int(z) >= len(p.Zones) {
		return false
	}
	a = a.Unmap()
	for _, n := range p.Zones[z].Networks {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// LocalZoneOf returns the local zone (one without a default route) whose
// network most specifically holds a, or None: the zone an address
// belongs to for spoofing checks. The internet's addresses belong to no
// zone in particular.
func (p *Policy) LocalZoneOf(a netip.Addr) int32 {
	z := p.ZoneOfAddr(a)
	if z < 0 || !p.Zones[z].Local {
		return None
	}
	return z
}

// Nameable reports whether a DNS answer may give a device address a for a
// "dns:" destination: a global unicast address in no local zone and none
// of the gateway's. An answer pointing a cloud name at a LAN host (DNS
// rebinding) or at the gateway opens nothing.
func (p *Policy) Nameable(a netip.Addr) bool {
	return a.IsGlobalUnicast() && p.LocalZoneOf(a) == None && !p.IsGateway(a)
}

// lastAddr4 is the directed broadcast address of an IPv4 network.
func lastAddr4(n netip.Prefix) netip.Addr {
	b := n.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-n.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
