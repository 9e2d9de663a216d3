package config

import (
	"net/netip"
	"slices"
)

// GatewayService names one of the services every network needs from its
// gateway, which picoseg allows to the gateway unless the policy narrows
// them. The gateway is judged like any other destination ("no rule means
// deny"), so without these a policy that never thought of the gateway
// would cut its devices off DHCP, DNS and IPv6 on the first start.
type GatewayService uint8

// The gateway's default services, in the order `check` lists them.
const (
	// GatewayDHCP is DHCPv4: udp/67, also from 0.0.0.0 to 255.255.255.255.
	GatewayDHCP GatewayService = iota
	// GatewayDNS is DNS to the gateway's resolver: udp/53 and tcp/53.
	GatewayDNS
	// GatewayPing is ICMP and ICMPv6 echo requests to the gateway.
	GatewayPing
	// GatewayND is IPv6 neighbour discovery (solicitations and
	// advertisements), router solicitation and multicast listener
	// reports, from every zone (it never leaves the link); and router
	// advertisements from zones that hold a default route (the upstream
	// router), never from a local zone.
	GatewayND
	// GatewayDHCPv6 is DHCPv6: udp/547.
	GatewayDHCPv6
	numGatewayServices
)

var gatewayServiceKeys = [numGatewayServices]string{"dhcp", "dns", "ping", "ipv6_nd", "dhcpv6"}

// Key returns the service's key in the [gateway] table.
func (s GatewayService) Key() string {
	if s < numGatewayServices {
		return gatewayServiceKeys[s]
	}
	return "unknown"
}

// GatewayServices lists every default service.
func GatewayServices() []GatewayService {
	out := make([]GatewayService, numGatewayServices)
	for i := range out {
		out[i] = GatewayService(i)
	}
	return out
}

// GatewayDefault says whether one default service is allowed, and from
// whom.
type GatewayDefault struct {
	// Off turns the default off: only allow rules to "gateway" open it.
	Off bool
	// From restricts the service to these sources (the syntax of an allow
	// rule's from). Empty means the default sources: every local zone
	// (every zone for ipv6_nd).
	From []Endpoint
	Pos  Pos
}

// Gateway holds the [gateway] table: the gateway's own addresses and its
// default services.
type Gateway struct {
	// Addrs are addresses of the gateway written in the policy. The daemon
	// adds the addresses of its interfaces; offline tools (explain,
	// replay) know the gateway only from these.
	Addrs []netip.Addr
	// Defaults is indexed by GatewayService.
	Defaults [numGatewayServices]GatewayDefault
	Pos      Pos
}

// gateway reads the [gateway] table. Every default is either a boolean or
// an array of sources.
func (b *builder) gateway(t table) {
	t.name = "[gateway]"
	t.checkKeys(append([]string{"addresses"}, gatewayServiceKeys[:]...)...)
	g := &b.cfg.Gateway
	g.Pos = t.Pos()
	addrs, _ := t.strings("addresses")
	for _, a := range addrs {
		ip, err := parseIP(a.s)
		if err != nil {
			t.errorf(a.pos, "%v", err)
			continue
		}
		if !slices.Contains(g.Addrs, ip) {
			g.Addrs = append(g.Addrs, ip)
		}
	}
	for i, key := range gatewayServiceKeys {
		d := &g.Defaults[i]
		v := t.value(key)
		if v == nil {
			continue
		}
		d.Pos = t.valuePos(key)
		switch v := v.(type) {
		case bool:
			d.Off = !v
		case []any:
			list, _ := t.strings(key)
			if len(list) == 0 {
				t.errorf(d.Pos, `%s: an empty list allows nobody; write %s = false to turn the default off`, key, key)
			}
			for _, s := range list {
				e, err := parseEndpoint(s.s, true)
				e.Pos = s.pos
				if err != nil {
					t.errorf(s.pos, "%s: %v", key, err)
					continue
				}
				d.From = append(d.From, e)
			}
		default:
			t.wrongType(key, `true, false or an array of sources such as ["zone:lan"]`, t.field(key))
		}
	}
}

// checkGateway resolves the sources the defaults are narrowed to, and
// refuses a zone named "gateway", which segments would confuse with the
// gateway itself.
func (b *builder) checkGateway(zones, groups, devices map[string]int) {
	for i, z := range b.cfg.Zones {
		if z.Name == GatewayZoneName {
			b.diag.errorf(b.src.zoneName[i], `zone name %q is reserved: segments use it for the gateway itself`, z.Name)
		}
	}
	for _, d := range b.cfg.Gateway.Defaults {
		for _, e := range d.From {
			b.resolve(e, zones, groups, devices)
		}
	}
}

// GatewayZoneName is how segments name the gateway itself:
// `[[segment]] from = "lan" to = "gateway"`. "*" never includes it.
const GatewayZoneName = "gateway"
