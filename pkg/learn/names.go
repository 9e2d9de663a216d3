package learn

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// maxNameTexts bounds the question names kept as text (to be written back
// as "dns:NAME"); a flow under a name past it counts as unnamed.
const maxNameTexts = 4096

// minPoolNames is how many numbered names of one pool
// ("0.pool.example.org", "1.pool.example.org") a subject must have used
// for one service before its rules become one "dns:*.pool.example.org".
const minPoolNames = 2

// dnsView is what DNS answers told each device, as the engine keeps it: the
// same names table (package dnsnames: an answer counts only as the answer
// to the device's own outstanding query, per device, within TTL plus the
// policy's grace), fed the same way, so that a rule learned as "dns:NAME"
// matches in the engine exactly where it matched here. The table keeps
// names as hashes; text maps them back to the question names.
type dnsView struct {
	table  *dnsnames.Table
	msg    appid.DNSMessage
	text   map[uint64]string
	grace  time.Duration
	owners [1]netip.Addr
	found  [8]dnsnames.Name
}

func newDNSView(base *policy.Policy) *dnsView {
	grace := base.DNSGrace()
	if grace <= 0 {
		grace = config.DefaultDNSGrace
	}
	// The engine's default sizes: past them the engine forgets answers
	// too, and a rule learned from an answer it would have forgotten
	// would not match there.
	return &dnsView{table: dnsnames.New(dnsnames.Sizes{}), text: map[uint64]string{}, grace: grace}
}

// observeDNS reads a DNS message of the flow rec as the engine's DNS
// observer does. A query counts only from the device that opened the
// flow, and only when the proposal keeps that flow allowed (the base
// policy allows it, or it is learned and followed): the engine sees
// answers only to queries it let through, so a name learned through a
// query the proposal would drop would match nothing. An answer counts
// only as the answer to such a query, once; its addresses in the local
// zones, the gateway's, and those that are no global unicast are not
// recorded (the engine refuses them: DNS rebinding).
func (l *Learner) observeDNS(p *packet.Packet, rec *flowRec, now int64) {
	if p.Proto != packet.ProtoUDP || rec.dev == nil || (p.DstPort != dnsnames.Port && p.SrcPort != dnsnames.Port) {
		return
	}
	v := l.dns
	m := &v.msg
	if m.Parse(p.Payload) != nil {
		return
	}
	q := dnsnames.MessageQuery(p.Src, p.Dst, p.SrcPort, p.DstPort, m.Header.ID)
	if p.DstPort == dnsnames.Port {
		kept := rec.cat == catAllowed || rec.edge != nil
		if kept && q.Client == rec.ends.opener && !m.Header.Response() && m.Header.Opcode() == 0 {
			v.table.Query(q, dnsnames.Hash(m.Question.Bytes()), now)
		}
		return
	}
	if !m.Header.Response() || !v.table.Answer(q, dnsnames.Hash(m.Question.Bytes()), now) || m.NAddrs == 0 {
		return
	}
	name := dnsnames.MakeName(m.Question.Bytes())
	recorded := false
	for _, a := range m.Addrs[:m.NAddrs] {
		if addr := a.Addr.Unmap(); l.base.Nameable(addr) {
			v.table.Record(q.Client, addr, &name, a.TTL, now)
			recorded = true
		}
	}
	if _, ok := v.text[name.Full]; recorded && !ok && len(v.text) < maxNameTexts {
		v.text[name.Full] = m.Question.String()
	}
}

// nameFlow notes on e which names the device that opened a flow to dst at
// now had been given dst for: the names a "dns:" rule would match the
// flow by when the engine judges it.
func (l *Learner) nameFlow(e *edge, opener, dst netip.Addr, now int64) {
	v := l.dns
	e.judged++
	v.owners[0] = opener
	n := v.table.Lookup(v.owners[:], dst, now, v.grace, &v.found)
	named := false
	for _, nm := range v.found[:n] {
		if text, ok := v.text[nm.Full]; ok {
			if e.named == nil {
				e.named = map[string]uint64{}
			}
			e.named[text]++
			named = true
		}
	}
	if !named {
		e.unnamed++
	}
}

// peerNames chooses, for each learned peer address of d, the DNS name its
// rule is written with: a name every flow to the address followed an
// answer for. When several names qualify (one address serving several
// names the device asked for), the one most of d's addresses qualify for
// is taken, so that the addresses of one name share one rule; ties go to
// the first in order. Addresses with no such name are left out, with why.
func peerNames(d *device) (names, why map[string]string) {
	names, why = map[string]string{}, map[string]string{}
	uses := map[string]int{}
	full := map[string][]string{}
	for _, k := range slices.Sorted(maps.Keys(d.edges)) {
		e := d.edges[k]
		if !strings.HasPrefix(k, "net:") {
			continue
		}
		if w := e.unnamedWhy(); w != "" {
			why[k] = w
			continue
		}
		var ok []string
		for _, n := range slices.Sorted(maps.Keys(e.named)) {
			if e.named[n] != e.judged {
				continue
			}
			if _, err := config.ParseDNSEndpoint(n); err != nil {
				why[k] = fmt.Sprintf("the name %q cannot be written as a dns: destination", n)
				continue
			}
			ok = append(ok, n)
			uses[n]++
		}
		if len(ok) > 0 {
			full[k] = ok
			delete(why, k)
		} else if why[k] == "" {
			why[k] = fmt.Sprintf("its %d flows followed answers for different names, none of them for all", e.judged)
		}
	}
	for k, ok := range full {
		best := ok[0]
		for _, n := range ok[1:] {
			if uses[n] > uses[best] {
				best = n
			}
		}
		names[k] = best
	}
	return names, why
}

// unnamedWhy says why e's peer cannot be written by name, "" when every
// flow was named.
func (e *edge) unnamedWhy() string {
	switch {
	case e.resolver:
		return "the device sent DNS to it: a resolver stays an address, the answers dns: rules need come from it"
	case e.unnamed > 0 && e.fromRecord:
		return fmt.Sprintf("%d of its %d flows followed no DNS answer giving it to the device (the daemon's record keeps no names)", e.unnamed, e.judged)
	case e.unnamed > 0 || e.judged == 0:
		// Flows are counted as the engine judges them new: an old
		// flow judged again after it sat idle is one more.
		return fmt.Sprintf("%d of its %d flows followed no DNS answer giving it to the device", e.unnamed, e.judged)
	}
	return ""
}

// poolOf returns the pool a name is a numbered member of: "pool.example.org"
// for "3.pool.example.org". The pool must have at least three labels, so
// that it is never a whole registered domain of the usual two
// ("1.example.com" and "2.example.com" stay apart: "*.example.com" would
// open all of a vendor's names), and at most what a "dns:*.SUFFIX"
// pattern may hold.
func poolOf(name string) (string, bool) {
	first, rest, ok := strings.Cut(name, ".")
	if !ok || first == "" || strings.Trim(first, "0123456789") != "" || strings.Count(rest, ".") < 2 ||
		strings.Count(rest, ".")+1 > config.MaxDNSSuffixLabels {
		return "", false
	}
	return rest, true
}

// collapsePools merges the "dns:" rules of one subject for numbered members
// of one pool ("0.pool.ntp.org", "1.pool.ntp.org", ...) that carry the
// same services into one "dns:*.POOL" rule. It is kept to that obvious
// case: names that differ only in a leading number are one service's
// servers handed out in turn, and the device would ask for the next
// number tomorrow. Other names under one domain (two products of one
// vendor, buckets of one storage provider) stay apart: a wildcard would
// open every other name under it.
func collapsePools(rules map[string]*ruleStats) {
	byPool := map[string][]string{}
	for _, spec := range slices.Sorted(maps.Keys(rules)) {
		r := rules[spec]
		if r.to.Kind != config.EndpointDNS {
			continue
		}
		if pool, ok := poolOf(r.to.Name); ok {
			k := pool + " " + serviceList(r.services)
			byPool[k] = append(byPool[k], spec)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byPool)) {
		specs := byPool[k]
		pool, _, _ := strings.Cut(k, " ")
		wild := "dns:*." + pool
		if len(specs) < minPoolNames || rules[wild] != nil {
			continue
		}
		w := rules[specs[0]]
		delete(rules, specs[0])
		for _, spec := range specs[1:] {
			w.merge(&rules[spec].edge)
			w.addrs = append(w.addrs, rules[spec].addrs...)
			w.poolNames = append(w.poolNames, rules[spec].to.Name)
			delete(rules, spec)
		}
		w.poolNames = append(w.poolNames, w.to.Name)
		slices.Sort(w.poolNames)
		w.to = config.Endpoint{Kind: config.EndpointDNS, Name: "*." + pool}
		w.peer = sanitize(pool)
		rules[wild] = w
	}
}

func serviceList(m map[config.Service]uint64) string {
	var out []string
	for _, s := range sortedServices(m) {
		out = append(out, config.FormatService(s))
	}
	return strings.Join(out, ",")
}

// peerComment says how a rule's peer was written: by which name and for
// which addresses, or why as an address.
func (r *ruleStats) peerComment() []string {
	switch {
	case r.to.Kind == config.EndpointDNS && len(r.poolNames) > 0:
		return []string{
			fmt.Sprintf("peer by DNS name: numbered servers of one pool (%s), every flow to %s after an answer giving the address to the device for one of them", strings.Join(r.poolNames, ", "), addrList(r.addrs)),
			"a dns: rule matches only addresses the device's own DNS answers gave it: keep its queries going to the resolver they went to here",
		}
	case r.to.Kind == config.EndpointDNS:
		return []string{
			fmt.Sprintf("peer by DNS name: every flow to %s followed an answer giving the address to the device for %s", addrList(r.addrs), r.to.Name),
			"a dns: rule matches only addresses the device's own DNS answers gave it: keep its queries going to the resolver they went to here",
		}
	case r.why != "":
		return []string{"peer by address: " + r.why}
	}
	return nil
}

func addrList(addrs []netip.Addr) string {
	s := slices.Clone(addrs)
	slices.SortFunc(s, netip.Addr.Compare)
	s = slices.Compact(s)
	out := make([]string, len(s))
	for i, a := range s {
		out[i] = a.String()
	}
	return strings.Join(out, ", ")
}
