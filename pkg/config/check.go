package config

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// check validates what spans the whole policy, once every file is read:
// names are unique, every reference resolves, and no device address is
// claimed twice. It also warns about rules that cannot do what they say.
func (b *builder) check() {
	c := &b.cfg
	zones := b.unique("zone", names(c.Zones, func(z Zone) string { return z.Name }), b.src.zoneName)
	groups := b.unique("group", names(c.Groups, func(g Group) string { return g.Name }), b.src.groupName)
	devices := b.unique("device", names(c.Devices, func(d Device) string { return d.Name }), b.src.deviceName)
	b.unique("allow rule", names(c.Allows, func(a Allow) string { return a.Name }), b.src.allowName)

	b.checkSegments(zones)
	b.checkDevices(groups)
	b.checkInventory(groups)
	b.checkGateway(zones, groups, devices)
	for _, a := range c.Allows {
		b.resolve(a.From, zones, groups, devices)
		b.resolve(a.To, zones, groups, devices)
	}
	b.checkSPA(zones, groups, devices)
	b.warnOverlappingRules()
	b.warnUnseenBridges()
	b.warnUnseenResolvers()
	b.warnEncryptedApps()
}

func names[T any](list []T, name func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = name(v)
	}
	return out
}

// unique reports every name defined twice, at the second definition, and
// returns the index of each name's first definition. Empty names were
// reported as missing already.
func (b *builder) unique(kind string, names []string, at []Pos) map[string]int {
	index := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			continue
		}
		if first, dup := index[n]; dup {
			b.diag.errorf(at[i], "duplicate %s %q, first defined at %s", kind, n, at[first])
			continue
		}
		index[n] = i
	}
	return index
}

func (b *builder) checkSegments(zones map[string]int) {
	type pair struct{ from, to string }
	seen := map[pair]int{}
	for i, s := range b.cfg.Segments {
		for _, side := range []struct {
			zone string
			pos  Pos
		}{{s.From, b.src.segFrom[i]}, {s.To, b.src.segTo[i]}} {
			if side.zone == GatewayZoneName && side.pos == b.src.segTo[i] {
				continue // the gateway itself, as a destination
			}
			if _, ok := zones[side.zone]; !ok && side.zone != "" && side.zone != "*" {
				if side.zone == GatewayZoneName {
					b.diag.errorf(side.pos, `"gateway" cannot be a segment's from: picoseg judges what reaches the gateway, not what it sends`)
					continue
				}
				b.diag.errorf(side.pos, "unknown zone %q", side.zone)
			}
		}
		if s.From == "" || s.To == "" {
			continue
		}
		// Two segments for one pair of zones would leave it to the
		// compiler to pick one; make the author pick.
		p := pair{s.From, s.To}
		if first, dup := seen[p]; dup {
			b.diag.errorf(s.Pos, "duplicate segment %s -> %s, first defined at %s", s.From, s.To, b.cfg.Segments[first].Pos)
			continue
		}
		seen[p] = i
	}
}

// checkDevices resolves device groups and refuses a MAC or IP claimed by two
// devices: the device a packet comes from must be one device, or every
// per-device rule and budget would depend on lookup order.
func (b *builder) checkDevices(groups map[string]int) {
	type claim struct {
		device string
		pos    Pos
	}
	macs := make(map[[6]byte]claim, len(b.cfg.Devices))
	ips := make(map[netip.Addr]claim, len(b.cfg.Devices))
	for i, d := range b.cfg.Devices {
		for k, g := range d.Groups {
			if _, ok := groups[g]; !ok {
				b.diag.errorf(b.src.devGroups[i][k], "unknown group %q", g)
			}
		}
		if !d.HasMAC {
			// Without a MAC the address is the only proof of identity: it
			// is checked against the zone the packet arrives from, but
			// inside that zone any host can claim it.
			b.diag.warnf(d.Pos, "device %q has no mac: it can only be identified by its address, which any host in its zone can claim", d.Name)
		}
		if d.HasMAC {
			b.warnNoIPv6(d)
			if first, dup := macs[d.MAC]; dup {
				b.diag.errorf(b.src.devMAC[i], "device %q has MAC %s, already used by device %q at %s",
					d.Name, net.HardwareAddr(d.MAC[:]), first.device, first.pos)
			} else {
				macs[d.MAC] = claim{d.Name, b.src.devMAC[i]}
			}
		}
		for k, ip := range d.IPs {
			pos := b.src.devIPs[i][k]
			if first, dup := ips[ip]; dup {
				b.diag.errorf(pos, "device %q has IP %s, already used by device %q at %s", d.Name, ip, first.device, first.pos)
			} else {
				ips[ip] = claim{d.Name, pos}
			}
			if !b.inSomeZone(ip) {
				b.diag.warnf(pos, "IP %s of device %q is in no zone's networks", ip, d.Name)
			}
		}
	}
}

// warnNoIPv6 warns about a device known by its MAC that lists IPv4
// addresses only while its zone has an IPv6 network: a known MAC sending
// from an address that is not its own is spoofing, so the device's global
// IPv6 traffic (SLAAC, DHCPv6) is dropped; only link-local addresses,
// which name no one, pass.
func (b *builder) warnNoIPv6(d Device) {
	if len(d.IPs) == 0 {
		return
	}
	for _, ip := range d.IPs {
		if ip.Unmap().Is6() {
			return
		}
	}
	for _, z := range b.cfg.Zones {
		if !zoneHolds(z, d.IPs[0]) {
			continue
		}
		for _, n := range z.Networks {
			if n.Addr().Is6() && !n.Addr().Is4In6() && n.Bits() > 0 {
				b.diag.warnf(d.Pos, "device %q lists no IPv6 address, but its zone %q has the IPv6 network %s: its IPv6 traffic from any address but a link-local one is dropped as spoofing; list its IPv6 addresses", d.Name, z.Name, n)
				return
			}
		}
	}
}

// zoneHolds reports whether one of z's networks, other than a default
// route, holds ip.
func zoneHolds(z Zone, ip netip.Addr) bool {
	for _, n := range z.Networks {
		if n.Bits() > 0 && n.Contains(ip) {
			return true
		}
	}
	return false
}

func (b *builder) inSomeZone(ip netip.Addr) bool {
	for _, z := range b.cfg.Zones {
		for _, n := range z.Networks {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

func (b *builder) resolve(e Endpoint, zones, groups, devices map[string]int) {
	var known map[string]int
	switch e.Kind {
	case EndpointDevice:
		known = devices
	case EndpointGroup:
		known = groups
	case EndpointZone:
		known = zones
	default:
		return
	}
	if _, ok := known[e.Name]; !ok {
		kind, _, _ := strings.Cut(e.String(), ":")
		b.diag.errorf(e.Pos, "unknown %s %q", kind, e.Name)
	}
}

// warnOverlappingRules warns about an allow rule that repeats an earlier
// one, or that an earlier unconstrained rule already decides for all of its
// traffic. Rules are only compared with rules of the same from and to, so
// the cost stays proportional to the rules that could overlap.
func (b *builder) warnOverlappingRules() {
	type sides struct{ from, to string }
	bySides := map[sides][]int{}
	for i, a := range b.cfg.Allows {
		k := sides{a.From.String(), a.To.String()}
		bySides[k] = append(bySides[k], i)
	}
	services := make([][]Service, len(b.cfg.Allows))
	for i := range b.cfg.Allows {
		services[i] = canonicalServices(b.cfg.Allows[i].Services)
	}
	for _, rules := range bySides {
		for n, j := range rules {
			later := &b.cfg.Allows[j]
			for _, i := range rules[:n] {
				earlier := &b.cfg.Allows[i]
				if slices.Equal(services[i], services[j]) {
					b.diag.warnf(later.Pos, "allow rules %q and %q are duplicates: same from, to and services (%q is at %s)",
						earlier.Name, later.Name, earlier.Name, earlier.Pos)
					break
				}
				if !earlier.HasPico() && covers(services[i], services[j]) {
					b.diag.warnf(later.Pos, "allow rule %q is shadowed by %q at %s, which allows all of its services without constraints: %q never decides",
						later.Name, earlier.Name, earlier.Pos, later.Name)
					break
				}
			}
		}
	}
}

// canonicalServices returns a service set in one spelling: sorted, with
// overlapping and adjacent port ranges merged, and "any" (or no services
// at all) as the single any-protocol service. Two sets are the same set
// exactly when their canonical forms are equal.
func canonicalServices(list []Service) []Service {
	if len(list) == 0 || slices.ContainsFunc(list, func(s Service) bool { return s.Proto == 0 }) {
		return []Service{{}}
	}
	sorted := slices.Clone(list)
	slices.SortFunc(sorted, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.PortLo, b.PortLo), cmp.Compare(a.PortHi, b.PortHi))
	})
	out := sorted[:1]
	for _, s := range sorted[1:] {
		last := &out[len(out)-1]
		if s.Proto == last.Proto && (!hasPorts(s.Proto) || int(s.PortLo) <= int(last.PortHi)+1) {
			last.PortHi = max(last.PortHi, s.PortHi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// covers reports whether the canonical set outer allows everything the
// canonical set inner allows. Merged ranges make one containing range
// enough to check.
func covers(outer, inner []Service) bool {
	if len(outer) == 1 && outer[0].Proto == 0 {
		return true
	}
	for _, s := range inner {
		if !slices.ContainsFunc(outer, func(o Service) bool {
			return o.Proto == s.Proto && o.PortLo <= s.PortLo && s.PortHi <= o.PortHi
		}) {
			return false
		}
	}
	return true
}

// warnUnseenBridges warns when micro rules inside a bridged zone cannot be
// enforced: frames between two ports of one bridge never reach the IP
// forward hook unless br_netfilter passes them there.
func (b *builder) warnUnseenBridges() {
	for _, z := range b.cfg.Zones {
		if z.BridgeFilter || !slices.ContainsFunc(z.Interfaces, func(i string) bool { return strings.HasPrefix(i, "br") }) {
			continue
		}
		if b.sameZoneAction(z.Name) == SegmentMicro {
			b.diag.warnf(z.Pos, "same-bridge traffic in zone %s is not seen by the firewall without bridge_filter = true; micro rules between its devices cannot be enforced", z.Name)
		}
	}
}

// sameZoneAction returns the action of the segment that decides traffic
// from zone to itself: the exact segment if there is one, else one with a
// wildcard on one side (micro if any of them is), else "*" -> "*". With no
// segment at all it returns SegmentDeny.
func (b *builder) sameZoneAction(zone string) SegmentAction {
	best, bestRank := SegmentDeny, 0
	for _, s := range b.cfg.Segments {
		if (s.From != zone && s.From != "*") || (s.To != zone && s.To != "*") {
			continue
		}
		rank := 1
		if s.From == zone {
			rank++
		}
		if s.To == zone {
			rank++
		}
		if rank > bestRank || rank == bestRank && s.Action == SegmentMicro {
			best, bestRank = s.Action, rank
		}
	}
	return best
}
