package config

import (
	"fmt"
	"strings"
	"time"
)

// DNS holds the [dns] table: how names given by DNS answers are used by
// "dns:" destinations.
type DNS struct {
	// Grace is how long past its TTL an answer's address stays usable for
	// new flows; zero (unset) means DefaultDNSGrace. It is also the floor:
	// an answer with TTL 0 still opens its address for Grace.
	Grace time.Duration
	Pos   Pos
}

// DefaultDNSGrace is [dns] grace's default: devices keep using an address
// a little past its TTL (they cache, clocks differ), and a connection
// opened then is no stolen one.
const DefaultDNSGrace = time.Minute

// MaxDNSGrace bounds grace: past it an address outlives any sense of the
// answer that gave it.
const MaxDNSGrace = time.Hour

// MaxDNSSuffixLabels is how many labels the SUFFIX of "dns:*.SUFFIX" may
// have (the names table keeps that many parent domains of each name).
const MaxDNSSuffixLabels = 6

func (b *builder) dns(root table) {
	t, ok := root.table("dns")
	if !ok {
		return
	}
	t.name = "[dns]"
	t.checkKeys("grace")
	b.cfg.DNS.Pos = t.Pos()
	if s, pos, ok := t.str("grace"); ok {
		d, err := parseDuration(s)
		switch {
		case err != nil:
			t.errorf(pos, "%v", err)
		case d > MaxDNSGrace:
			t.errorf(pos, "grace %v is more than %v", d, MaxDNSGrace)
		default:
			b.cfg.DNS.Grace = d
		}
	}
}

// ParseDNSEndpoint reads NAME as the destination "dns:NAME" is read: for
// tools that write policies (learn) and must write only names check
// accepts.
func ParseDNSEndpoint(name string) (Endpoint, error) { return parseDNSEndpoint(name, false) }

// parseDNSEndpoint reads the NAME of "dns:NAME": a domain name, or "*."
// and a domain (any name under it, at any depth, but not the domain
// itself). Names are compared in lower case, without a final dot.
func parseDNSEndpoint(name string, isFrom bool) (Endpoint, error) {
	if isFrom {
		return Endpoint{}, fmt.Errorf("%q cannot be a source: a DNS name is only a destination", "dns:"+name)
	}
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	domain, wild := strings.CutPrefix(n, "*.")
	if err := checkDomain(domain); err != nil {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: %v", "dns:"+name, err)
	}
	if wild && strings.Count(domain, ".")+1 > MaxDNSSuffixLabels {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: at most %d labels after \"*.\"", "dns:"+name, MaxDNSSuffixLabels)
	}
	return Endpoint{Kind: EndpointDNS, Name: n}, nil
}

// checkDomain accepts a domain name in presentation form: labels of 1 to
// 63 letters, digits, '-' and '_', 253 bytes in all.
func checkDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("a domain name has 1 to 253 characters")
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %q: a label has 1 to 63 characters", l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q: only letters, digits, '-' and '_' (and \"*.\" in front)", l)
			}
		}
	}
	return nil
}

// warnUnseenResolvers warns about a device under a "dns:" rule that
// another rule lets reach a resolver the gateway does not see answers
// from: DNS over TCP (tcp/53), DNS over TLS (tcp/853), and plain DNS to a
// resolver other than the gateway (udp/53, seen but outside the gateway's
// own resolver: the device chooses what it is told). Names learnt that way
// are names the device picked its own answers for; DNS over HTTPS (tcp/443)
// cannot be told from other HTTPS.
func (b *builder) warnUnseenResolvers() {
	b.warnShadowedDNSChecks()
	var dnsRules []*Allow
	for i := range b.cfg.Allows {
		if b.cfg.Allows[i].To.Kind == EndpointDNS {
			dnsRules = append(dnsRules, &b.cfg.Allows[i])
		}
	}
	if len(dnsRules) == 0 {
		return
	}
	for i := range b.cfg.Allows {
		r := &b.cfg.Allows[i]
		if r.To.Kind == EndpointGateway || r.To.Kind == EndpointDNS {
			continue
		}
		svc, ok := resolverService(r.Services)
		if !ok {
			continue
		}
		for _, d := range dnsRules {
			if b.mayShareDevices(d.From, r.From) {
				b.diag.warnf(r.Pos, "allow rule %q lets %s reach a resolver other than the gateway (%s to %s): names it resolves there are not checked, and the answers of DNS over TCP or TLS are never seen, yet rule %q at %s opens addresses by DNS name; deny it, or allow DNS to \"gateway\" only",
					r.Name, r.From.String(), svc, r.To.String(), d.Name, d.Pos)
				break
			}
		}
	}
}

// resolverService returns the first DNS service a rule's services allow.
func resolverService(list []Service) (string, bool) {
	if len(list) == 0 {
		return "any", true
	}
	for _, s := range list {
		switch {
		case s.Proto == 0:
			return "any", true
		case s.Proto == 17 && s.PortLo <= 53 && 53 <= s.PortHi:
			return "udp/53", true
		case s.Proto == 6 && s.PortLo <= 53 && 53 <= s.PortHi:
			return "tcp/53", true
		case s.Proto == 6 && s.PortLo <= 853 && 853 <= s.PortHi:
			return "tcp/853", true
		}
	}
	return "", false
}

// mayShareDevices reports whether two sources can name the same device:
// the same source, "any", or a device and a group it is in. Zones and
// networks are compared by name only.
func (b *builder) mayShareDevices(x, y Endpoint) bool {
	if x.Kind == EndpointAny || y.Kind == EndpointAny || x == y || x.String() == y.String() {
		return true
	}
	if x.Kind == EndpointGroup && y.Kind == EndpointDevice {
		x, y = y, x
	}
	if x.Kind == EndpointDevice && y.Kind == EndpointGroup {
		for _, d := range b.cfg.Devices {
			if d.Name == x.Name {
				for _, g := range d.Groups {
					if g == y.Name {
						return true
					}
				}
			}
		}
	}
	return false
}

// warnShadowedDNSChecks warns about a rule that checks DNS queries to the
// gateway (app = "dns", to = "gateway") while the gateway's default DNS
// service is on for every local zone: the default accepts the queries
// before any rule is asked, so the checks never run.
func (b *builder) warnShadowedDNSChecks() {
	def := b.cfg.Gateway.Defaults[GatewayDNS]
	if def.Off || len(def.From) > 0 {
		return
	}
	for i := range b.cfg.Allows {
		a := &b.cfg.Allows[i]
		if a.App != nil && a.App.Proto == "dns" && a.To.Kind == EndpointGateway {
			b.diag.warnf(a.Pos, "allow rule %q checks DNS queries to the gateway, but the gateway's default DNS service accepts them first: write dns = false in [gateway] (or narrow it to the sources no rule checks)", a.Name)
		}
	}
}
