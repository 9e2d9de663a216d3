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
// flow from src to the gateway, or None. icmpType is the ICMP or ICMPv6
// type (0 for other protocols).
func (p *Policy) GatewayDefault(src *Side, proto uint8, port uint16, icmpType uint8, s *Scratch) int32 {
	for i := range p.gatewayDefaults {
		g := &p.gatewayDefaults[i]
		if !serviceMatches(g.service, proto, port, icmpType) {
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

// IsGatewayDst reports whether a packet to a is for the gateway itself,
// as far as its address tells: one of the gateway's addresses, the
// limited broadcast, or link-local multicast (IPv4 224.0.0.0/24, IPv6
// ff02::/16), which routers never forward. The kernel path knows better
// (the input hook); offline tools have only the address.
func (p *Policy) IsGatewayDst(a netip.Addr) bool {
	a = a.Unmap()
	if p.gateway[a] {
		return true
	}
	if a.Is4() {
		b := a.As4()
		return b == [4]byte{255, 255, 255, 255} || b[0] == 224 && b[1] == 0 && b[2] == 0
	}
	return a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
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
