package learn

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Proposal is a learned policy: what Propose adds to the base policy.
type Proposal struct {
	Groups  []ProposedGroup
	Devices []ProposedDevice
	Rules   []ProposedRule
	// Summary is the proposal's opening comment: what it learned from,
	// and what it leaves out on purpose.
	Summary []string
	// Learned names the subjects (devices and groups) that got rules.
	Learned []string
	// Scans names the devices flagged as scans.
	Scans []string
	// Contested lists the addresses more than one MAC sent from: no
	// device has them, and their flows are left out.
	Contested []netip.Addr
}

// ProposedGroup is a [[group]] with its comment.
type ProposedGroup struct {
	Group   config.Group
	Comment []string
}

// ProposedDevice is a [[device]] with its comment.
type ProposedDevice struct {
	Device  config.Device
	Comment []string
}

// ProposedRule is an [[allow]] rule with its evidence.
type ProposedRule struct {
	Allow   config.Allow
	Comment []string
	// Flows is how many flows it was learned from.
	Flows uint64
}

// candidate is a device the proposal names: one it adds, or one of the
// base policy's.
type candidate struct {
	name     string
	base     bool // named by the base policy: no [[device]] is written
	dev      config.Device
	zone     int32
	hostname string
	inv      *inventory.Device
	learned  *device // its flows, nil when it opened none
	rules    map[string]*ruleStats
	group    string
	comment  []string
}

// Propose builds the proposal from everything learned so far.
func (l *Learner) Propose() *Proposal {
	p := &Proposal{}
	cands, byAddr, leftOut := l.candidates()
	for _, c := range cands {
		if c.learned != nil && c.learned.scan == "" {
			c.rules = l.rulesOf(c, byAddr)
		}
	}
	groups := l.group(cands)
	for _, c := range cands {
		if !c.base {
			p.Devices = append(p.Devices, ProposedDevice{Device: c.dev, Comment: c.deviceComment(l)})
		}
		if c.learned != nil && c.learned.scan != "" {
			p.Scans = append(p.Scans, c.name)
		}
	}
	var subjects []subject
	for _, g := range groups {
		p.Groups = append(p.Groups, ProposedGroup{Group: config.Group{Name: g.name}, Comment: []string{
			"devices that did the same things in the captures: " + strings.Join(g.members, ", ")}})
		subjects = append(subjects, g.subject)
	}
	for _, c := range cands {
		if c.group == "" && len(c.rules) > 0 {
			subjects = append(subjects, subject{endpoint: config.Endpoint{Kind: config.EndpointDevice, Name: c.name}, name: c.name, members: []string{c.name}, rules: c.rules, zone: c.zone})
		}
	}
	p.Rules = l.rules(subjects)
	p.Contested = sortedAddrs(l.contested)
	for _, s := range subjects {
		p.Learned = append(p.Learned, s.name)
	}
	p.Summary = l.summary(p, cands, leftOut)
	return p
}

// candidates lists the devices of the proposal, in a fixed order: those
// the base policy names, then the new ones by MAC, then by address. It
// also returns which candidate each listed address names, and the notes
// about devices left out.
func (l *Learner) candidates() ([]*candidate, map[netip.Addr]*candidate, []string) {
	var out []*candidate
	byAddr := map[netip.Addr]*candidate{}
	byKey := map[string]*candidate{}
	var leftOut []string
	used := map[string]bool{}
	for _, d := range l.base.Devices {
		used[d.Name] = true
	}
	invDevs := l.inv.Devices()
	for i := range invDevs {
		iv := &invDevs[i]
		var mac [6]byte
		if hw, err := net.ParseMAC(iv.MAC); err == nil && len(hw) == 6 {
			copy(mac[:], hw)
		}
		if iv.MAC != "" && l.routers[mac] {
			leftOut = append(leftOut, fmt.Sprintf("%s (%s) also sends from outside the local zones: a router (the upstream router, or the gateway: list the gateway's addresses in [gateway]), not a device", iv.MAC, strings.Join(iv.Addrs, ", ")))
			continue
		}
		c := &candidate{inv: iv, zone: policy.None}
		if iv.Known {
			c.name, c.base = iv.Name, true
			for _, d := range l.base.Devices {
				if d.Name == iv.Name {
					c.zone = d.Zone
				}
			}
		} else if !l.newDevice(c, iv, mac, used) {
			leftOut = append(leftOut, fmt.Sprintf("%s: no address of a local zone that is not already another device's or contested", strings.TrimSpace(iv.MAC+" "+strings.Join(iv.Addrs, ", "))))
			continue
		}
		out = append(out, c)
		for _, a := range c.dev.IPs {
			byAddr[a] = c
		}
		if iv.MAC != "" {
			byKey["mac:"+iv.MAC] = c
		}
		for _, a := range iv.Addrs {
			if _, ok := byKey["addr:"+a]; !ok {
				byKey["addr:"+a] = c
			}
		}
	}
	for _, a := range sortedAddrs(l.contested) {
		leftOut = append(leftOut, fmt.Sprintf("%s was sent from by more than one MAC: given to no device (decide who owns it, and give that device a MAC)", a))
	}
	if l.ownersFull {
		leftOut = append(leftOut, "learning bounds: some addresses were not checked for a second MAC")
	}
	for _, k := range slices.Sorted(maps.Keys(l.devices)) {
		d := l.devices[k]
		if c := byKey[k]; c != nil {
			if c.learned == nil {
				c.learned = d
			} else {
				c.learned.merge(d)
			}
			continue
		}
		if d.hasMAC && l.routers[d.mac] {
			continue
		}
		leftOut = append(leftOut, fmt.Sprintf("%s: opened %d flows but has no address of a local zone: no rule", strings.TrimPrefix(strings.TrimPrefix(k, "mac:"), "addr:"), d.total()))
	}
	return out, byAddr, leftOut
}

// newDevice fills in a device the base policy does not name: its
// addresses of one local zone (not link-local: those name no one, and
// not another device's), its MAC, and a name from its DHCP hostname, its
// MAC or its address. It reports false when no address places it.
func (l *Learner) newDevice(c *candidate, iv *inventory.Device, mac [6]byte, used map[string]bool) bool {
	for _, s := range iv.Addrs {
		a, err := netip.ParseAddr(s)
		if err != nil || a.IsLinkLocalUnicast() || !l.local(a) || l.base.DeviceByAddr(a) != policy.None || l.contested[a] {
			continue
		}
		z := l.base.LocalZoneOf(a)
		if c.zone == policy.None {
			c.zone = z
		}
		if z == c.zone {
			c.dev.IPs = append(c.dev.IPs, a)
		}
	}
	if len(c.dev.IPs) == 0 {
		return false
	}
	if iv.MAC != "" {
		c.dev.MAC, c.dev.HasMAC = mac, true
	}
	c.hostname = iv.Hostname
	name := sanitize(iv.Hostname)
	switch {
	case name != "":
	case iv.MAC != "":
		name = "dev-" + strings.ReplaceAll(iv.MAC, ":", "")
	default:
		name = "dev-" + sanitize(c.dev.IPs[0].String())
	}
	c.name = unique(name, used)
	c.dev.Name = c.name
	return true
}

// sanitize keeps what a policy name may hold: letters, digits, '-', '_'
// and '.', starting with a letter or digit; the rest becomes '-'.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.TrimLeft(string(b), "-_.")
}

// unique returns name, or name-2, name-3 ... when it is taken, and takes
// it.
func unique(name string, used map[string]bool) string {
	n := name
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	used[n] = true
	return n
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (d *device) total() uint64 {
	var n uint64
	for _, f := range d.flows {
		n += f
	}
	return n
}

// merge adds o (the same device, seen first by its address) into d.
func (d *device) merge(o *device) {
	for i := range d.flows {
		d.flows[i] += o.flows[i]
	}
	for k, v := range o.notes {
		d.notes[k] += v
	}
	d.unfollow += o.unfollow
	if d.scan == "" {
		d.scan = o.scan
	}
	for k, e := range o.edges {
		if mine := d.edges[k]; mine != nil {
			mine.merge(e)
		} else {
			d.edges[k] = e
		}
	}
}

// merge adds o's evidence into e. Rates and hourly bytes add up: the most
// in a minute (or an hour) of two sets of flows is at most the sum of
// each one's most.
func (e *edge) merge(o *edge) {
	for s, n := range o.services {
		e.services[s] += n
	}
	e.flows += o.flows
	e.bytes += o.bytes
	e.packets += o.packets
	if o.first != 0 && (e.first == 0 || o.first < e.first) {
		e.first = o.first
	}
	e.sizesUnknown = e.sizesUnknown || o.sizesUnknown
	e.fromRecord = e.fromRecord || o.fromRecord
	e.last = max(e.last, o.last)
	e.minSize, e.maxSize = min(e.minSize, o.minSize), max(e.maxSize, o.maxSize)
	e.maxFlowBytes = max(e.maxFlowBytes, o.maxFlowBytes)
	e.hours |= o.hours
	e.days |= o.days
	e.captures |= o.captures
	e.moreCaptures = e.moreCaptures || o.moreCaptures
	e.maxHourPair += o.maxHourPair
	e.maxPerMinute += o.maxPerMinute
	e.rateUnbounded = e.rateUnbounded || o.rateUnbounded
	for n, c := range o.named {
		if e.named == nil {
			e.named = map[string]uint64{}
		}
		e.named[n] += c
	}
	e.unnamed += o.unnamed
	e.judged += o.judged
	e.resolver = e.resolver || o.resolver
}

// clone copies e for a rule's evidence, its maps too: merging into the
// copy must not change the device's own record.
func (e *edge) clone() edge {
	c := *e
	c.opens = nil
	c.services = maps.Clone(e.services)
	c.named = maps.Clone(e.named)
	return c
}

// ruleStats is what one device did with one peer as a rule names it.
type ruleStats struct {
	to   config.Endpoint
	peer string // for the rule's name
	edge
	// addrs are the addresses a "dns:" rule was learned from; poolNames
	// the names a "dns:*.POOL" rule gathers; why says why a peer outside
	// the local zones is written as its address.
	addrs     []netip.Addr
	poolNames []string
	why       string
}

// rulesOf turns c's learned pairs into what its rules will cover, one per
// peer as the engine will name it.
func (l *Learner) rulesOf(c *candidate, byAddr map[netip.Addr]*candidate) map[string]*ruleStats {
	out := map[string]*ruleStats{}
	names, why := peerNames(c.learned)
	for _, k := range slices.Sorted(maps.Keys(c.learned.edges)) {
		e := c.learned.edges[k]
		to, peer := l.resolve(e.peer, c, byAddr)
		var addrs []netip.Addr
		if n, ok := names[k]; ok {
			addrs = []netip.Addr{to.Prefix.Addr()}
			to, peer = config.Endpoint{Kind: config.EndpointDNS, Name: n}, sanitize(n)
		}
		spec := to.String()
		if r := out[spec]; r != nil {
			r.merge(e)
			r.addrs = append(r.addrs, addrs...)
			continue
		}
		out[spec] = &ruleStats{to: to, peer: peer, edge: e.clone(), addrs: addrs, why: why[k]}
	}
	collapsePools(out)
	return out
}

// resolve turns a peer key into the rule's "to" and a short name for the
// rule's name.
func (l *Learner) resolve(key string, c *candidate, byAddr map[netip.Addr]*candidate) (config.Endpoint, string) {
	kind, val, _ := strings.Cut(key, ":")
	switch kind {
	case "link":
		z := l.base.ZoneName(c.zone)
		return config.Endpoint{Kind: config.EndpointZone, Name: z}, "zone-" + z
	case "gateway":
		return config.Endpoint{Kind: config.EndpointGateway}, "gateway"
	case "device":
		return config.Endpoint{Kind: config.EndpointDevice, Name: val}, val
	case "addr":
		a, _ := netip.ParseAddr(val)
		if p := byAddr[a]; p != nil {
			return config.Endpoint{Kind: config.EndpointDevice, Name: p.name}, p.name
		}
		return config.Endpoint{Kind: config.EndpointNet, Prefix: netip.PrefixFrom(a, a.BitLen())}, sanitize(a.String())
	}
	pfx, _ := netip.ParsePrefix(val)
	return config.Endpoint{Kind: config.EndpointNet, Prefix: pfx}, sanitize(pfx.Addr().String())
}

// subject is who a set of rules is for: a device, or a group of devices
// that did the same things.
type subject struct {
	endpoint config.Endpoint
	name     string
	members  []string
	rules    map[string]*ruleStats
	zone     int32
}

type learnedGroup struct {
	subject
}

// group gathers new devices of one zone whose rules name the same peers
// and services into groups, so that the proposal has one rule where they
// did one thing. Devices of the base policy keep their own rules.
func (l *Learner) group(cands []*candidate) []learnedGroup {
	bySig := map[string][]*candidate{}
	var sigs []string
	for _, c := range cands {
		if c.base || len(c.rules) == 0 {
			continue
		}
		sig := c.signature()
		if bySig[sig] == nil {
			sigs = append(sigs, sig)
		}
		bySig[sig] = append(bySig[sig], c)
	}
	used := map[string]bool{}
	for _, g := range l.base.Groups {
		used[g] = true
	}
	var out []learnedGroup
	for _, sig := range sigs {
		members := bySig[sig]
		if len(members) < 2 {
			continue
		}
		name := unique("like-"+members[0].name, used)
		g := learnedGroup{subject{endpoint: config.Endpoint{Kind: config.EndpointGroup, Name: name}, name: name, rules: map[string]*ruleStats{}, zone: members[0].zone}}
		for _, m := range members {
			m.group = name
			m.dev.Groups = append(m.dev.Groups, name)
			g.members = append(g.members, m.name)
			for spec, r := range m.rules {
				if mine := g.rules[spec]; mine != nil {
					mine.mergeMember(&r.edge)
					mine.addrs = append(mine.addrs, r.addrs...)
					mine.poolNames = slices.Compact(slices.Sorted(slices.Values(append(mine.poolNames, r.poolNames...))))
				} else {
					cp := *r
					cp.edge = r.clone()
					cp.addrs = slices.Clone(r.addrs)
					cp.poolNames = slices.Clone(r.poolNames)
					g.rules[spec] = &cp
				}
			}
		}
		out = append(out, g)
	}
	return out
}

// mergeMember adds another device's evidence to a group rule: counts add
// up, but bounds that hold per device (rate, hourly bytes) take the
// larger device's.
func (e *edge) mergeMember(o *edge) {
	rate, hour := max(e.maxPerMinute, o.maxPerMinute), max(e.maxHourPair, o.maxHourPair)
	e.merge(o)
	e.maxPerMinute, e.maxHourPair = rate, hour
}

// signature is what a device did, as its rules say it, for grouping:
// devices whose rules name other devices (each its own peer) rarely
// match, and that is right.
func (c *candidate) signature() string {
	var parts []string
	for spec, r := range c.rules {
		var svcs []string
		for s := range r.services {
			svcs = append(svcs, config.FormatService(s))
		}
		slices.Sort(svcs)
		parts = append(parts, spec+"="+strings.Join(svcs, ","))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d|%s", c.zone, strings.Join(parts, ";"))
}

func sortedServices(m map[config.Service]uint64) []config.Service {
	out := make([]config.Service, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b config.Service) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.PortLo, b.PortLo), cmp.Compare(a.PortHi, b.PortHi))
	})
	return out
}
