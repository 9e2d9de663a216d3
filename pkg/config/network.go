package config

import (
	"errors"
	"net/netip"
	"slices"
)

// sources remembers where the names and references of a policy were
// written, parallel to the Config slices, so that the checks made once
// every file is read can point at the exact value.
type sources struct {
	zoneName   []Pos
	groupName  []Pos
	deviceName []Pos
	allowName  []Pos
	segFrom    []Pos
	segTo      []Pos
	devMAC     []Pos
	devIPs     [][]Pos
	devGroups  [][]Pos
	// unknownGroup is where [inventory] unknown_group is written.
	unknownGroup Pos
	spaKeyName   []Pos
}

// maxInterfaceName is IFNAMSIZ less the terminating NUL: Linux refuses
// longer interface names, so a longer one in a policy can never match.
const maxInterfaceName = 15

// required reports each of keys missing from the table, at the table.
func (t table) required(keys ...string) {
	for _, k := range keys {
		if !t.has(k) {
			t.errorf(t.Pos(), "missing key %q in %s", k, t.name)
		}
	}
}

// validName reports whether s can name a zone, group, device or rule.
// Names appear after "device:" in endpoints, in logs and in alerts, so
// they are kept to characters that need no quoting anywhere.
func validName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) }

// nameOf reads the table's required name. The name is kept even when it is
// malformed (that is reported), so references to it do not also fail.
func (t table) nameOf(kind string) (string, Pos) {
	t.required("name")
	s, pos, ok := t.str("name")
	if !ok {
		return "", t.Pos()
	}
	if !validName(s) {
		t.errorf(pos, "bad %s name %q: use letters, digits, '-', '_' and '.', starting with a letter or digit", kind, s)
	}
	return s, pos
}

// prefix parses a CIDR value, warning about and masking one with host bits
// set: "10.77.0.1/24" most likely means the /24, but the author should
// know what is used.
func (t table) prefix(s string, pos Pos) (netip.Prefix, bool) {
	p, err := parsePrefix(s)
	switch {
	case errors.Is(err, errHostBits):
		t.warnf(pos, "network %q has host bits set; using %s", s, p)
	case err != nil:
		t.errorf(pos, "%v", err)
		return p, false
	}
	return p, true
}

func (b *builder) zone(t table) {
	t.checkKeys("name", "interfaces", "networks", "bridge_filter", "port_routers")
	z := Zone{Pos: t.Pos()}
	var namePos Pos
	z.Name, namePos = t.nameOf("zone")
	ifaces, _ := t.strings("interfaces")
	for _, i := range ifaces {
		if i.s == "" || len(i.s) > maxInterfaceName {
			t.errorf(i.pos, "bad interface name %q: want 1-%d bytes", i.s, maxInterfaceName)
			continue
		}
		z.Interfaces = append(z.Interfaces, i.s)
	}
	nets, _ := t.strings("networks")
	for _, n := range nets {
		if p, ok := t.prefix(n.s, n.pos); ok {
			z.Networks = append(z.Networks, p)
		}
	}
	z.BridgeFilter, _ = t.boolean("bridge_filter")
	routers, _ := t.strings("port_routers")
	for _, r := range routers {
		mac, err := parseMAC(r.s)
		switch {
		case err != nil:
			t.errorf(r.pos, "port_routers: %v", err)
		case slices.Contains(z.PortRouters, mac):
			t.errorf(r.pos, "port_routers lists %s twice", r.s)
		default:
			z.PortRouters = append(z.PortRouters, mac)
		}
	}
	b.cfg.Zones = append(b.cfg.Zones, z)
	b.src.zoneName = append(b.src.zoneName, namePos)
}

func (b *builder) segment(t table) {
	t.checkKeys("from", "to", "action")
	t.required("from", "to", "action")
	s := Segment{Pos: t.Pos()}
	var fromPos, toPos Pos
	s.From, fromPos = t.zoneRef("from")
	s.To, toPos = t.zoneRef("to")
	if a, pos, ok := t.str("action"); ok {
		i := slices.Index(segmentActionNames[:], a)
		if i < 0 {
			t.errorf(pos, `action must be "allow", "deny" or "micro", not %q`, a)
		} else {
			s.Action = SegmentAction(i)
		}
	}
	b.cfg.Segments = append(b.cfg.Segments, s)
	b.src.segFrom = append(b.src.segFrom, fromPos)
	b.src.segTo = append(b.src.segTo, toPos)
}

// zoneRef reads a segment side: a zone name, resolved once every file is
// read, or "*".
func (t table) zoneRef(key string) (string, Pos) {
	s, pos, ok := t.str(key)
	if ok && s == "" {
		t.errorf(pos, `%s must be a zone name or "*"`, key)
	}
	return s, pos
}

func (b *builder) group(t table) {
	t.checkKeys("name")
	g := Group{Pos: t.Pos()}
	var namePos Pos
	g.Name, namePos = t.nameOf("group")
	b.cfg.Groups = append(b.cfg.Groups, g)
	b.src.groupName = append(b.src.groupName, namePos)
}

func (b *builder) device(t table) {
	t.checkKeys("name", "mac", "ip", "groups")
	d := Device{Pos: t.Pos()}
	var namePos, macPos Pos
	d.Name, namePos = t.nameOf("device")
	if s, pos, ok := t.str("mac"); ok {
		macPos = pos
		if mac, err := parseMAC(s); err != nil {
			t.errorf(pos, "%v", err)
		} else {
			d.MAC, d.HasMAC = mac, true
		}
	}
	var ipPos []Pos
	ips, _ := t.strings("ip")
	for _, s := range ips {
		ip, err := parseIP(s.s)
		if err != nil {
			t.errorf(s.pos, "%v", err)
			continue
		}
		if slices.Contains(d.IPs, ip) {
			t.errorf(s.pos, "device %q lists IP %s twice", d.Name, ip)
			continue
		}
		d.IPs = append(d.IPs, ip)
		ipPos = append(ipPos, s.pos)
	}
	// Only an absent or empty ip array counts as no IP: a malformed one is
	// reported already.
	ip, hasIP := t.n.fields["ip"]
	if !t.has("mac") && (!hasIP || ip.kind == nodeArray && len(ip.elems) == 0) {
		t.errorf(t.Pos(), "device %q needs a mac or an ip", d.Name)
	}
	var groupPos []Pos
	groups, _ := t.strings("groups")
	for _, g := range groups {
		d.Groups = append(d.Groups, g.s)
		groupPos = append(groupPos, g.pos)
	}
	b.cfg.Devices = append(b.cfg.Devices, d)
	b.src.deviceName = append(b.src.deviceName, namePos)
	b.src.devMAC = append(b.src.devMAC, macPos)
	b.src.devIPs = append(b.src.devIPs, ipPos)
	b.src.devGroups = append(b.src.devGroups, groupPos)
}
