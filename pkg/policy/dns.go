package policy

import (
	"net/netip"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
)

// selDNS is the selector kind of a "dns:" destination; its id numbers the
// distinct names and patterns.
const selDNS selector = 6 << 32

// NameLookup is what the policy asks of the names table (dnsnames.Table):
// the names under which one device (owners: its addresses) was given addr,
// valid at now with grace.
type NameLookup interface {
	Lookup(owners []netip.Addr, addr netip.Addr, now int64, grace time.Duration, out *[8]dnsnames.Name) int
}

// dnsIndex finds the "dns:" selectors a name hash stands for.
type dnsIndex struct {
	// exact maps the hash of NAME in "dns:NAME", suffix the hash of
	// SUFFIX in "dns:*.SUFFIX", to the selector id.
	exact, suffix map[uint64]int32
	ids           map[string]int32
	// sources are the source selectors of rules with a "dns:"
	// destination: only their flows need the names table.
	sources map[selector]bool
	grace   time.Duration
	// checks is set when a rule has a DNS checker (app = "dns").
	checks bool
}

// dnsScratch is the names table's part of a Scratch.
type dnsScratch struct {
	lookup NameLookup
	now    int64
	window NameWindow
	owners [8]netip.Addr
	found  [8]dnsnames.Name
	n      int
}

// NameWindow says how long past its TTL an answer's address is matched.
type NameWindow uint8

const (
	// NewFlowNames matches addresses within TTL plus the policy's grace:
	// a new flow after that is refused.
	NewFlowNames NameWindow = iota
	// RunningFlowNames matches addresses within TTL plus
	// RunningFlowHorizon: a flow judged again (after a reload, or from its
	// conntrack entry) was opened when its name was valid, and lives on.
	RunningFlowNames
)

// RunningFlowHorizon is how long past its TTL an answer still vouches for
// a flow opened under it, when the flow is judged again. The table keeps
// entries that long (within its bounds): a reload must not cut a running
// flow because its device has not asked for the name again since.
const RunningFlowHorizon = 24 * time.Hour

// SetNames gives Match the names table, the time to judge "dns:"
// destinations at, and which window applies. Without it (nil) no "dns:"
// rule matches.
func (s *Scratch) SetNames(l NameLookup, now int64, w NameWindow) {
	s.dns.lookup, s.dns.now, s.dns.window = l, now, w
}

// UsesDNS reports whether a rule has a "dns:" destination: the names
// table must then see DNS answers.
func (p *Policy) UsesDNS() bool { return len(p.dns.ids) > 0 }

// MatchUsesNames reports whether Match consults the names table (a rule
// has a "dns:" destination). Without, Match is a function of its arguments
// and the policy alone.
func (p *Policy) MatchUsesNames() bool { return len(p.dns.sources) > 0 }

// HasDNSChecks reports whether a rule checks DNS queries (app = "dns").
func (p *Policy) HasDNSChecks() bool { return p.dns.checks }

func (p *Policy) anyDNSCheck() bool {
	for i := range p.Rules {
		if p.DNSChecker(int32(i)) != nil {
			return true
		}
	}
	return false
}

// DNSGrace is how long past its TTL an answer's address stays usable.
func (p *Policy) DNSGrace() time.Duration { return p.dns.grace }

func (p *Policy) compileDNS(cfg *config.Config) {
	p.dns.grace = cfg.DNS.Grace
	if p.dns.grace <= 0 {
		p.dns.grace = config.DefaultDNSGrace
	}
}

// dnsSelector numbers a "dns:" destination, and remembers the source
// selector of its rule.
func (p *Policy) dnsSelector(e config.Endpoint, from selector) selector {
	d := &p.dns
	if d.ids == nil {
		d.exact, d.suffix, d.ids, d.sources = map[uint64]int32{}, map[uint64]int32{}, map[string]int32{}, map[selector]bool{}
	}
	d.sources[from] = true
	id, ok := d.ids[e.Name]
	if !ok {
		id = int32(len(d.ids))
		d.ids[e.Name] = id
		if suffix, wild := strings.CutPrefix(e.Name, "*."); wild {
			d.suffix[dnsnames.HashString(suffix)] = id
		} else {
			d.exact[dnsnames.HashString(e.Name)] = id
		}
	}
	return sel(selDNS, id)
}

// lookupDNS fills the scratch with the names the flow's source was given
// its destination for, when one of the source's selectors has a "dns:"
// rule. The source is known by its address and, for a device of the
// policy, by all of its addresses: a name resolved over IPv4 opens its
// AAAA address to the same device's IPv6 flow.
func (p *Policy) lookupDNS(srcSel []selector, src, dst *Side, s *Scratch) {
	s.dns.n = 0
	if s.dns.lookup == nil || len(p.dns.sources) == 0 {
		return
	}
	under := false
	for _, a := range srcSel {
		if p.dns.sources[a] {
			under = true
			break
		}
	}
	if !under {
		return
	}
	owners := append(s.dns.owners[:0], src.Addr.Unmap())
	if src.Device >= 0 {
		for _, a := range p.Devices[src.Device].Addrs {
			if a != owners[0] && len(owners) < cap(owners) {
				owners = append(owners, a)
			}
		}
	}
	grace := p.dns.grace
	if s.dns.window == RunningFlowNames {
		grace = max(grace, RunningFlowHorizon)
	}
	s.dns.n = s.dns.lookup.Lookup(owners, dst.Addr, s.dns.now, grace, &s.dns.found)
}

// matchDNS returns the better of best and the first rule of byDst whose
// "dns:" destination names one of the names found by lookupDNS.
func (p *Policy) matchDNS(byDst map[selector]*serviceIndex, proto uint8, port uint16, s *Scratch, best int32) int32 {
	try := func(id int32, ok bool) {
		if !ok {
			return
		}
		if idx := byDst[sel(selDNS, id)]; idx != nil {
			if r := idx.lookup(proto, port); r >= 0 && (best < 0 || r < best) {
				best = r
			}
		}
	}
	for i := 0; i < s.dns.n; i++ {
		n := &s.dns.found[i]
		id, ok := p.dns.exact[n.Full]
		try(id, ok)
		for j := 0; j < int(n.N); j++ {
			id, ok := p.dns.suffix[n.Parents[j]]
			try(id, ok)
		}
	}
	return best
}
