package mud

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// SegmentNotes adds to the proposal's notes what the policy's segments do
// to its rules, judged in pol (the proposal merged into its base): a rule
// only decides where the segment between its zones says "micro". Under
// "allow" the segment lets everything through and the MUD file restricts
// nothing there, which a reviewer who imported it to lock the device down
// must be told; under "deny" (or no segment) the rule never applies. The
// device's zone comes from its addresses: without them nothing is said.
func (p *Proposal) SegmentNotes(pol *policy.Policy) {
	dev := policy.None
	for _, s := range p.Device.IPs {
		if a, err := netip.ParseAddr(s); err == nil {
			if dev = pol.ZoneOfAddr(a); dev != policy.None {
				break
			}
		}
	}
	if dev == policy.None {
		return
	}
	seen := map[[2]int32]bool{}
	for _, r := range p.Rules {
		if r.Disabled != "" {
			continue
		}
		peerSide, deviceOpens := r.To, true
		if r.To == "group:"+p.Group {
			peerSide, deviceOpens = r.From, false
		}
		for _, z := range peerZones(pol, peerSide) {
			pair := [2]int32{dev, z}
			if !deviceOpens {
				pair = [2]int32{z, dev}
			}
			if seen[pair] {
				continue
			}
			seen[pair] = true
			if note := segmentNote(pol, pair, r.Name); note != "" {
				p.Notes = append(p.Notes, note)
			}
		}
	}
}

func segmentNote(pol *policy.Policy, pair [2]int32, rule string) string {
	action, _ := pol.Segment(pair[0], pair[1])
	seg := pol.ZoneName(pair[0]) + "->" + pol.ZoneName(pair[1])
	switch action {
	case config.SegmentAllow:
		return fmt.Sprintf("segment %s is \"allow\": everything passes there, so %s and the other MUD rules restrict nothing between those zones (make it \"micro\")", seg, rule)
	case config.SegmentDeny:
		return fmt.Sprintf("segment %s denies (or there is none): %s never applies there", seg, rule)
	}
	return ""
}

// peerZones are the zones an endpoint's addresses can be in: its zone, the
// zone of its network or device, the gateway, and for any address or a DNS
// name the zones holding a default route (the internet). Groups name
// devices in any zone, and say nothing here.
func peerZones(pol *policy.Policy, ep string) []int32 {
	kind, name, _ := strings.Cut(ep, ":")
	switch kind {
	case "zone":
		for i := range pol.Zones {
			if pol.Zones[i].Name == name {
				return []int32{int32(i)}
			}
		}
	case "net":
		if pfx, err := netip.ParsePrefix(name); err == nil {
			if z := pol.ZoneOfAddr(pfx.Addr()); z != policy.None {
				return []int32{z}
			}
		}
	case "device":
		for _, d := range pol.Devices {
			if d.Name == name && d.Zone != policy.None {
				return []int32{d.Zone}
			}
		}
	case "gateway":
		return []int32{policy.Gateway}
	case "any", "dns":
		var out []int32
		for i := range pol.Zones {
			if !pol.Zones[i].Local {
				out = append(out, int32(i))
			}
		}
		return out
	}
	return nil
}
