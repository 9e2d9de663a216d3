package mud

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
)

// Options says how to import a MUD file.
type Options struct {
	// Name names the device's group, its rules (NAME-mud-1, ...) and the
	// device; "" derives it from the file's model-name, systeminfo or URL.
	Name string
	// MAC and IPs identify the device. Without either, the [[device]] is
	// written commented out for the reviewer to complete.
	MAC string
	IPs []string
	// Map says what the MUD abstractions are on this network.
	Map Mapping
	// DNSNames is true when the policy language has destinations by DNS
	// name ("dns:NAME"); without it such rules are written commented out.
	DNSNames bool
	// Base holds the names the policy merged into already uses; nil for
	// none.
	Base *Names
}

// Names are the names a base policy defines.
type Names struct {
	Zones, Groups, Devices, Rules map[string]bool
}

// Proposal is an imported MUD file: what to add to a policy.
type Proposal struct {
	File *File
	// Group is the device's group; NewGroup is false when the base
	// policy has it already.
	Group    string
	NewGroup bool
	// Device is the device itself; its MAC and IPs are empty when the
	// options gave none (it is then written commented out).
	Device Device
	// Groups are the groups the abstractions became, to be filled by the
	// reviewer.
	Groups []Group
	// Rules are the [[allow]] rules, the commented-out ones included.
	Rules []Rule
	// Problems are what could not be represented; Notes are what the
	// reviewer should know but loses nothing.
	Problems []Problem
	Notes    []string
}

// Device is the device a proposal adds.
type Device struct {
	Name string
	MAC  string
	IPs  []string
}

// Group is a group a proposal adds, with why it is there.
type Group struct {
	Name, Why string
}

// Rule is one proposed [[allow]] rule.
type Rule struct {
	Name     string
	From, To string
	Services []string
	// Evidence says which entries of the MUD file the rule comes from.
	Evidence []string
	// Disabled, when set, is why the rule is written commented out.
	Disabled string
}

// Problem is something in the MUD file a picoseg policy cannot represent.
type Problem struct {
	// Path is the entry's place in the file, Entry its name.
	Path, Entry string
	Msg         string
}

// String formats the problem as "PATH (entry NAME): MSG".
func (p Problem) String() string {
	return fmt.Sprintf("%s (entry %q): %s", p.Path, clip(p.Entry), p.Msg)
}

// dnsReason is why a rule to a DNS name is written commented out while
// the policy language has no such destinations.
const dnsReason = "destinations by DNS name (dns:NAME) are not in this picoseg's policy language yet: uncomment once they are"

// Import turns f into a proposal. Mapping and naming mistakes (an
// invalid name, a mapping to a zone or device the base does not define)
// are errors; entries picoseg cannot represent are Problems.
func Import(f *File, o Options) (*Proposal, error) {
	name := o.Name
	if name == "" {
		name = defaultName(f)
	}
	if !validName(name) {
		return nil, fmt.Errorf("name %q: a name is letters, digits, '-', '_' and '.', starting with a letter or digit", clip(name))
	}
	if err := checkDevice(o); err != nil {
		return nil, err
	}
	im := &importer{f: f, o: o, p: &Proposal{File: f, Group: name}, groups: map[string]bool{}, rules: map[string]*Rule{}}
	if err := im.checkBase(); err != nil {
		return nil, err
	}
	im.p.NewGroup = !im.baseHas("group", name)
	im.p.Device = Device{Name: name, MAC: o.MAC, IPs: o.IPs}
	var replies []half
	for _, dir := range []Direction{FromDevice, ToDevice} {
		for _, acl := range f.Policies[dir] {
			for i := range acl.ACEs {
				h, ok := im.half(dir, acl, &acl.ACEs[i])
				switch {
				case !ok:
				case h.reply:
					replies = append(replies, h)
				default:
					im.add(h)
				}
			}
		}
	}
	for _, h := range replies {
		im.addReply(h)
	}
	im.notes()
	return im.p, nil
}

// checkDevice checks the device's MAC and addresses before they are
// written into a policy.
func checkDevice(o Options) error {
	_, err := Device{MAC: o.MAC, IPs: o.IPs}.config("")
	return err
}

// config is the device as a policy's [[device]] in group.
func (d Device) config(group string) (config.Device, error) {
	c := config.Device{Name: d.Name, Groups: []string{group}}
	if d.MAC != "" {
		hw, err := net.ParseMAC(d.MAC)
		if err != nil || len(hw) != 6 {
			return c, fmt.Errorf("MAC %q: want six bytes, 02:00:00:00:00:11", clip(d.MAC))
		}
		c.HasMAC = true
		copy(c.MAC[:], hw)
	}
	for _, ip := range d.IPs {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return c, fmt.Errorf("IP %q: want an IPv4 or IPv6 address", clip(ip))
		}
		c.IPs = append(c.IPs, a)
	}
	return c, nil
}

// defaultName is the group name a file suggests.
func defaultName(f *File) string {
	for _, s := range []string{f.Model, f.SystemInfo} {
		if n := slug(s); n != "" {
			return n
		}
	}
	if u, err := url.Parse(f.URL); err == nil {
		if n := slug(strings.TrimSuffix(u.Path, ".json")); n != "" {
			return n
		}
	}
	return "mud-device"
}

type importer struct {
	f      *File
	o      Options
	p      *Proposal
	groups map[string]bool  // groups added to the proposal
	rules  map[string]*Rule // by from, to and disabled reason
	order  []*Rule
	next   int // the last rule number used
	// oneFamily is set when an entry written for one IP version became a
	// rule that holds for both.
	oneFamily bool
}

// half is one entry read as a flow: who opens it, to or from which peer,
// on what.
type half struct {
	deviceOpens bool
	reply       bool
	peer        string
	service     string
	evidence    string
	disabled    []string
	problems    []Problem
}

func (im *importer) baseHas(kind, name string) bool {
	b := im.o.Base
	if b == nil {
		return false
	}
	switch kind {
	case "zone":
		return b.Zones[name]
	case "group":
		return b.Groups[name]
	case "device":
		return b.Devices[name]
	}
	return b.Rules[name]
}

// checkBase refuses a device name the base uses already, and mappings to
// zones and devices it does not define (a typo would otherwise surface as
// an error in the output).
func (im *importer) checkBase() error {
	if im.o.Base == nil {
		return nil
	}
	if (im.o.MAC != "" || len(im.o.IPs) > 0) && im.baseHas("device", im.p.Group) {
		return fmt.Errorf("the base policy has a device %q already: choose another name", im.p.Group)
	}
	keys := make([]string, 0, len(im.o.Map))
	for k := range im.o.Map {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kind, name, _ := strings.Cut(im.o.Map[k], ":")
		if (kind == "zone" || kind == "device") && !im.baseHas(kind, name) {
			return fmt.Errorf("mapping %s=%s: the base policy has no %s %q", k, im.o.Map[k], kind, name)
		}
	}
	return nil
}

// problem records a problem with the entry h is read from. The problems
// of a reply half are kept back: when the half joins the rule of the flow
// it answers, that rule already lets its packets through, and nothing is
// lost.
func (h *half) problem(a *ACE, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	h.problems = append(h.problems, Problem{Path: a.Path, Entry: a.Name, Msg: msg})
	return msg
}

// half reads one entry; ok is false when it gives no rule at all.
func (im *importer) half(dir Direction, acl *ACL, a *ACE) (half, bool) {
	h := half{evidence: fmt.Sprintf("%s list %q entry %q", dir, clip(acl.Name), clip(a.Name))}
	if a.Action != "accept" {
		h.problem(a, "action %q: picoseg denies what no rule allows, and a deny entry inside what others allow cannot be written as a rule; not imported", clip(a.Action))
		im.p.Problems = append(im.p.Problems, h.problems...)
		return h, false
	}
	if a.Proto == 0 {
		h.disabled = append(h.disabled, h.problem(a, "protocol 0 (IPv6 hop-by-hop options) is not a protocol a rule can name"))
	}
	if len(a.Unsupported) > 0 {
		h.disabled = append(h.disabled, h.problem(a, "matches picoseg cannot express (%s); the rule without them would allow more", strings.Join(a.Unsupported, ", ")))
	}
	devPort, remPort := a.SrcPort, a.DstPort
	devNet, devDNS, remNet, remDNS := a.SrcNet, a.SrcDNS, a.DstNet, a.DstDNS
	if dir == ToDevice {
		devPort, remPort = remPort, devPort
		devNet, devDNS, remNet, remDNS = remNet, remDNS, devNet, devDNS
	}
	if devNet.IsValid() || devDNS != "" {
		h.disabled = append(h.disabled, h.problem(a, "constrains the device's own address or name; picoseg identifies the device itself"))
	}
	h.deviceOpens = dir == FromDevice
	switch {
	case a.HasInitiated:
		if a.Proto != protoTCP {
			h.disabled = append(h.disabled, h.problem(a, "direction-initiated on %s: it is defined for TCP connections only", protoName(a.Proto)))
		}
		h.deviceOpens = a.Initiated == FromDevice
	case remPort.Set && !devPort.Set:
		h.deviceOpens = true
	case devPort.Set && !remPort.Set:
		h.deviceOpens = false
	}
	h.reply = h.deviceOpens != (dir == FromDevice)
	svcPort, openerPort := devPort, remPort
	if h.deviceOpens {
		svcPort, openerPort = remPort, devPort
	}
	if openerPort.Set {
		h.disabled = append(h.disabled, h.problem(a, "matches the opening side's port %s; picoseg services match the port a flow is opened to", portString(openerPort)))
	}
	h.service = service(a.Proto, svcPort)
	h.peer = im.peer(a, remNet, remDNS, &h)
	if !h.deviceOpens && strings.HasPrefix(h.peer, "dns:") && !h.reply {
		h.disabled = append(h.disabled, h.problem(a, "a flow opened by %s: a DNS name is a destination, never a source", h.peer))
	}
	if !h.deviceOpens && h.peer == "gateway" {
		im.p.Notes = append(im.p.Notes, fmt.Sprintf("%s: flows the gateway opens are not judged by picoseg; nothing to allow", h.evidence))
		return h, false
	}
	if a.Family != 0 && !remNet.IsValid() && !h.reply && a.Proto != protoICMP && a.Proto != protoICMPv6 {
		im.oneFamily = true
	}
	return h, true
}

// peer is the endpoint of the other side.
func (im *importer) peer(a *ACE, remNet netip.Prefix, remDNS string, h *half) string {
	var peers []string
	if remDNS != "" {
		peers = append(peers, "dns:"+strings.TrimSuffix(remDNS, "."))
		if !im.o.DNSNames {
			h.disabled = append(h.disabled, dnsReason)
			h.problem(a, "destination %s: %s", peers[len(peers)-1], dnsReason)
		}
	}
	if remNet.IsValid() {
		peers = append(peers, "net:"+remNet.String())
	}
	for _, ab := range a.Abstractions {
		ep, reason := im.resolve(ab)
		if reason != "" {
			h.disabled = append(h.disabled, h.problem(a, "%s", reason))
		}
		peers = append(peers, ep)
	}
	switch len(peers) {
	case 0:
		return "any"
	case 1:
		return peers[0]
	}
	h.disabled = append(h.disabled, h.problem(a, "names several peers at once (%s); a rule has one", strings.Join(peers, ", ")))
	return peers[0]
}

// resolve maps an abstraction to an endpoint; reason is set when it cannot
// be mapped.
func (im *importer) resolve(ab Abstraction) (ep, reason string) {
	if ep, ok := im.o.Map[ab.String()]; ok {
		if g, isGroup := strings.CutPrefix(ep, "group:"); isGroup {
			im.addGroup(g, "what the MUD file calls "+clip(ab.String())+" (mapped): add its devices")
		}
		return ep, ""
	}
	var g, why string
	switch ab.Kind {
	case "local-networks":
		return "zone:local", "local-networks: which zone is the local network? map it (--local-zone ZONE)"
	case "same-manufacturer":
		g, why = "mfr-"+slug(im.authority()), "devices of the same manufacturer as "+im.p.Group
	case "manufacturer":
		g, why = "mfr-"+slug(ab.Value), "devices of manufacturer "+clip(ab.Value)
	case "model":
		g, why = "model-"+slug(trimScheme(ab.Value)), "devices of model "+clip(ab.Value)
	case "my-controller":
		g, why = im.p.Group+"-controller", "the controller of "+im.p.Group+" (my-controller)"
	case "controller":
		g, why = "controller-"+slug(trimScheme(ab.Value)), "controllers of class "+clip(ab.Value)
	}
	if !validName(g) {
		g = slug(ab.Kind)
	}
	im.addGroup(g, why+": empty until you add devices to it; map it instead with --map "+clip(ab.String())+"=ENDPOINT")
	return "group:" + g, ""
}

// trimScheme shortens a URI for a group name: "https://x/y" is "x/y",
// RFC 8520's "urn:ietf:params:mud:dns" is "mud:dns".
func trimScheme(uri string) string {
	for _, p := range []string{"https://", "http://", "urn:ietf:params:"} {
		uri = strings.TrimPrefix(uri, p)
	}
	return uri
}

// authority is the MUD URL's host: RFC 8520 defines the manufacturer by
// it.
func (im *importer) authority() string {
	if u, err := url.Parse(im.f.URL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	if im.f.Manufacturer != "" {
		return im.f.Manufacturer
	}
	return "unknown"
}

func (im *importer) addGroup(name, why string) {
	if im.groups[name] || im.baseHas("group", name) || name == im.p.Group {
		return
	}
	im.groups[name] = true
	im.p.Groups = append(im.p.Groups, Group{Name: name, Why: why})
}

// endpoints returns the rule's from and to.
func (im *importer) endpoints(h half) (from, to string) {
	dev := "group:" + im.p.Group
	if h.deviceOpens {
		return dev, h.peer
	}
	return h.peer, dev
}

// add merges an opening half into the rule for its endpoints: one rule per
// pair of endpoints, its services the union of the entries'.
func (im *importer) add(h half) {
	im.p.Problems = append(im.p.Problems, h.problems...)
	from, to := im.endpoints(h)
	reason := strings.Join(slices.Compact(h.disabled), "; ")
	key := from + "\x00" + to + "\x00" + reason
	r := im.rules[key]
	if r == nil {
		r = &Rule{Name: im.ruleName(), From: from, To: to, Disabled: reason}
		im.rules[key] = r
		im.order = append(im.order, r)
	}
	if !slices.Contains(r.Services, h.service) {
		r.Services = append(r.Services, h.service)
	}
	r.Evidence = append(r.Evidence, h.evidence)
}

// addReply joins a reply half to the rule whose flows it answers. A reply
// with no such rule allows nothing a picoseg rule could: the device (or
// the peer) may not open the flow it answers.
func (im *importer) addReply(h half) {
	from, to := im.endpoints(h)
	for _, r := range im.order {
		if r.From == from && r.To == to && slices.Contains(r.Services, h.service) {
			r.Evidence = append(r.Evidence, h.evidence+" (replies)")
			return
		}
	}
	im.p.Notes = append(im.p.Notes, fmt.Sprintf("%s only allows the replies of flows from %s to %s on %s, which no entry allows to be opened: nothing imported", h.evidence, from, to, h.service))
}

// ruleName is the next free NAME-mud-N.
func (im *importer) ruleName() string {
	for {
		im.next++
		name := im.p.Group + "-mud-" + strconv.Itoa(im.next)
		if !im.baseHas("rule", name) {
			return name
		}
	}
}

func (im *importer) notes() {
	for _, r := range im.order {
		im.p.Rules = append(im.p.Rules, *r)
	}
	if im.oneFamily {
		im.p.Notes = append(im.p.Notes, "picoseg rules hold for IPv4 and IPv6 alike: entries written for one of them to names, zones, groups or any allow the other too")
	}
	for _, name := range im.f.Unused {
		im.p.Notes = append(im.p.Notes, fmt.Sprintf("access list %q is defined but neither policy uses it: not imported", clip(name)))
	}
}

// service writes a protocol and port range as an [[allow]] service.
func service(proto int, ports PortRange) string {
	switch proto {
	case protoAny:
		return "any"
	case protoTCP, protoUDP:
		s := protoName(proto)
		if !ports.Set || ports.Lo == 0 && ports.Hi == 65535 {
			return s
		}
		return s + "/" + portString(ports)
	case protoICMP:
		return "icmp"
	case protoICMPv6:
		return "icmpv6"
	}
	return "proto/" + strconv.Itoa(proto)
}

func protoName(p int) string {
	switch p {
	case protoAny:
		return "any protocol"
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMP:
		return "icmp"
	case protoICMPv6:
		return "icmpv6"
	}
	return "protocol " + strconv.Itoa(p)
}

func portString(p PortRange) string {
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo))
	}
	return strconv.Itoa(int(p.Lo)) + "-" + strconv.Itoa(int(p.Hi))
}
