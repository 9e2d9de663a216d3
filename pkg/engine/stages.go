package engine

import (
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// pipeline is the one reviewed order of the stages. Each later stage only
// sees flows every earlier stage let through.
func pipeline() []Stage {
	return []Stage{identifyStage{}, gatewayStage{}, segmentStage{}, microStage{}, picoStage{}}
}

// identifyStage names the devices at both ends and their zones, and
// refuses spoofed sources.
type identifyStage struct{}

func (identifyStage) Name() string { return "identify" }
func (identifyStage) Layer() Layer { return LayerIdentify }

func (identifyStage) Evaluate(c *Context) Result {
	p := c.Packet
	src, dst := c.memo.addrs.get(c.gen, p.Src), c.memo.addrs.get(c.gen, p.Dst)
	c.Src = policy.Side{Addr: p.Src, Device: src.device, Zone: sideZone(c.InZone, src)}
	c.Dst = policy.Side{Addr: p.Dst, Device: dst.device, Zone: sideZone(c.OutZone, dst)}
	c.senderAddrDevice, c.dstBroadcast = src.device, dst.broadcast
	if c.Reversed {
		// Judged as the flow its destination opened: the packet's
		// destination is the initiator, and its ingress the responder's.
		c.Src, c.Dst = c.Dst, c.Src
		c.dstBroadcast = src.broadcast
	}
	// The spoofing checks are about the packet as it arrived, whichever
	// side of the flow sent it.
	if res := checkSource(c, src); res.Verdict != Continue {
		return res
	}
	if res := checkMAC(c); res.Verdict != Continue {
		return res
	}
	if res := checkBinding(c); res.Verdict != Continue {
		return res
	}
	if c.dstBroadcast {
		// Broadcast and multicast go to the whole link the sender is on,
		// the gateway included: one flow, whichever hook sees which copy.
		c.Dst.Zone = c.Src.Zone
	}
	// A flow "from the gateway" (Src.Zone == policy.Gateway) goes on to
	// the segment layer, where it reaches no segment: the kernel never
	// queues what the gateway sends (its replies pass in the kernel), so
	// one here is a packet that claims to answer the gateway without
	// conntrack knowing it as a reply, or, offline, the gateway's own
	// traffic in a capture. The kernel path cannot always tell which
	// (bridged traffic on an interface in no zone has neither zone), so
	// neither is trusted.
	return Result{Rule: policy.None}
}

// checkSource refuses a source address that cannot be the sender's: one
// of the gateway's own, one that belongs to another zone than the
// interface the packet came in on, or an unspecified address outside the
// few messages sent before a host has an address. The kernel's
// reverse-path check drops most of these before the queue; this is the
// engine's own check, and the only one for bridged (same-zone) traffic.
// src is what the policy says of the source address.
func checkSource(c *Context, src addrFacts) Result {
	p, pol := c.Packet, c.Policy
	if p.Src.Unmap().IsUnspecified() {
		if unspecifiedSourceOK(p) {
			return Result{Rule: policy.None}
		}
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonUnspecifiedSrc, Event: EventSpoof}
	}
	in := c.InZone
	if in < 0 {
		// Offline, or an interface in no zone: the ingress proves
		// nothing, so the address cannot be checked against it.
		return Result{Rule: policy.None}
	}
	if src.gateway {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedZone, Event: EventSpoof}
	}
	// An address proves identity only inside its own zone: a LAN admin's
	// address arriving on the IoT bridge is an IoT device posing as the
	// admin. Addresses of no local zone (the internet's, link-local) are
	// left to the kernel's reverse-path check: they name no device.
	// Two local zones may share a network (then either may use it); a
	// default route shares every network, and proves nothing.
	if z := src.localZone(pol); z != policy.None && z != in && !(pol.Zones[in].Local && pol.ZoneHasAddr(in, p.Src)) {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedZone, Event: EventSpoof}
	}
	return Result{Rule: policy.None}
}

// unspecifiedSourceOK reports whether a packet from 0.0.0.0 or :: is one
// that hosts send before they have an address: a DHCP request, IPv6
// duplicate address detection (a neighbour solicitation), a router
// solicitation, or a multicast group report (IGMPv3 and MLD allow the
// unspecified source). Anything else from it is forged: nobody can answer.
func unspecifiedSourceOK(p *packet.Packet) bool {
	switch p.Proto {
	case packet.ProtoUDP:
		return p.Src.Is4() && p.DstPort == 67
	case protoIGMP:
		return p.Src.Is4()
	case packet.ProtoICMPv6:
		switch p.ICMPType {
		case 133, 135, 131, 143: // router and neighbour solicitation, MLD reports
			return true
		}
	}
	return false
}

// protoIGMP is IGMP's IP protocol number.
const protoIGMP = 2

// checkMAC identifies the sender by its hardware address, when the packet
// has one. A known device is identified by its MAC first: using an address
// that is not its own is spoofing, and so is a known device's address
// arriving from another MAC. Addresses that name no one (unspecified,
// link-local) are not "another's" address: a device uses them before and
// beside the ones the policy lists.
func checkMAC(c *Context) Result {
	p, pol := c.Packet, c.Policy
	if !p.HasMAC {
		return Result{Rule: policy.None}
	}
	sender := &c.Src
	if c.Reversed {
		sender = &c.Dst
	}
	if d := c.memo.macs.get(c.gen, p.SrcMAC); d != policy.None {
		dev := &pol.Devices[d]
		anonymous := sender.Device == policy.None && namesNoOne(sender.Addr)
		if len(dev.Addrs) > 0 && !dev.HasAddr(sender.Addr) && !anonymous {
			sender.Device = d
			return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedMAC, Event: EventSpoof}
		}
		sender.Device = d
		if anonymous && c.InZone == policy.None && dev.Zone != policy.None {
			// Offline the address says nothing of where the device is;
			// its listed addresses do.
			sender.Zone = dev.Zone
		}
		return Result{Rule: policy.None}
	}
	if d := sender.Device; d != policy.None && pol.Devices[d].HasMAC {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedAddr, Event: EventSpoof}
	}
	return Result{Rule: policy.None}
}

// checkBinding holds a device known only by its address to the bridge
// port and MAC it was first seen on (bindingTable): inside its own zone
// the address is all that names it, and any host of the zone can write
// it. A host on another port, or with another MAC, claiming it while the
// binding is fresh is spoofing (a LAN host posing as the owner's phone to
// reach a plug's control port). A device with a MAC needs no binding:
// checkMAC already ties its address to its MAC.
func checkBinding(c *Context) Result {
	p, pol := c.Packet, c.Policy
	sender := &c.Src
	if c.Reversed {
		sender = &c.Dst
	}
	d := sender.Device
	if d == policy.None || pol.Devices[d].HasMAC {
		return Result{Rule: policy.None}
	}
	if !c.gen.bindings.check(d, c.InPort, p, c.Now, c.judging()) {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedPort, Event: EventSpoof}
	}
	return Result{Rule: policy.None}
}

// namesNoOne reports whether an address is one no policy device is known
// by: unspecified, or link-local.
func namesNoOne(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsUnspecified() || a.IsLinkLocalUnicast()
}

// sideZone is the zone of one side of a packet: its interface's when
// known (the ingress for the source, the egress for the destination, the
// gateway itself on the input hook: the caller says policy.Gateway), else,
// offline, its address's: the gateway for the gateway's own addresses.
func sideZone(ifaceZone int32, a addrFacts) int32 {
	switch {
	case ifaceZone != policy.None:
		return ifaceZone
	case a.gateway:
		return policy.Gateway
	}
	return a.zone
}

// gatewayStage lets through the services every network needs from its
// gateway (DHCP, DNS, ping, IPv6 neighbour discovery), unless the policy
// turned them off or narrowed them in [gateway]. DHCP and neighbour
// discovery are broadcast or multicast to the link, which the gateway is
// on: they pass to the link too. It runs before the
// segment layer: a segment that denies a zone the gateway must not cut
// its devices off DHCP. Everything else to the gateway is judged by the
// segment and micro layers like any other destination, so "no rule means
// deny" holds for the gateway too.
type gatewayStage struct{}

func (gatewayStage) Name() string { return "gateway" }
func (gatewayStage) Layer() Layer { return LayerMicro }

func (gatewayStage) Evaluate(c *Context) Result {
	if c.Dst.Zone != policy.Gateway && !c.dstBroadcast {
		return Result{Rule: policy.None}
	}
	r := c.Policy.GatewayDefault(&c.Src, &c.Dst, c.Packet.Proto, c.DPort, c.Packet.ICMPType, &c.scratch)
	if r == policy.None {
		return Result{Rule: policy.None}
	}
	return Result{Verdict: Accept, Rule: r, Reason: ReasonGatewayDefault}
}

// segmentStage applies the zone-to-zone matrix.
type segmentStage struct{}

func (segmentStage) Name() string { return "segment" }
func (segmentStage) Layer() Layer { return LayerSegment }

func (segmentStage) Evaluate(c *Context) Result {
	action, rule := c.Policy.Segment(c.Src.Zone, c.Dst.Zone)
	switch {
	case rule == policy.None:
		return Result{Verdict: Drop, Rule: rule, Reason: ReasonNoSegment}
	case action == config.SegmentDeny:
		return Result{Verdict: Drop, Rule: rule, Reason: ReasonSegmentDeny}
	case action == config.SegmentAllow:
		return Result{Verdict: Accept, Rule: rule, Reason: ReasonSegmentAllow}
	}
	return Result{Rule: rule}
}

// microStage finds the allow rule that permits this device, peer and
// service.
type microStage struct{}

func (microStage) Name() string { return "micro" }
func (microStage) Layer() Layer { return LayerMicro }

func (microStage) Evaluate(c *Context) Result {
	c.scratch.SetNames(c.gen.names, c.Now, nameWindow(c))
	r := c.memo.matches.match(c.gen, &c.Src, &c.Dst, c.Packet.Proto, c.DPort, &c.scratch)
	if r == policy.None {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonNoAllowRule}
	}
	c.Rule = r
	return Result{Rule: r}
}

// picoStage enforces the matched rule's constraints on the flow's first
// packets. Constraints that span the flow's life (window end, byte limits,
// sizes of later packets) are checked again on the cached path.
type picoStage struct{}

func (picoStage) Name() string { return "pico" }
func (picoStage) Layer() Layer { return LayerPico }

func (picoStage) Evaluate(c *Context) Result {
	r := &c.Policy.Rules[c.Rule]
	if res := checkAuth(c, r); res.Verdict != Continue {
		return res
	}
	if !r.Pico {
		return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonAllowRule}
	}
	if res := checkWindow(c, r); res.Verdict != Continue {
		return res
	}
	if r.HasSize && sizeOutside(r, c.Packet.Length, c.Merged) {
		return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonPacketSize}
	}
	if r.MaxFlow > 0 && uint64(c.Packet.Length) > r.MaxFlow {
		return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonFlowBytes, Event: EventVolume}
	}
	if r.MaxDevice > 0 || r.NewFlows > 0 {
		c.owner = ownerOf(c.Src.Device, c.Src.Addr)
		reason, event := c.gen.budgets.admit(c.Rule, r, c.owner, c.Now, c.judging())
		if reason != ReasonNone {
			return Result{Verdict: Drop, Rule: c.Rule, Reason: reason, Event: event}
		}
	}
	if res := checkFanOut(c, r); res.Verdict != Continue {
		return res
	}
	if r.App != nil {
		return appStage(c, r)
	}
	// Size bounds are checked on the flow's first packets here, and on
	// the fast path by the kernel's class check (the upper bound on
	// everything but TCP, whose merged packets there are several on the
	// wire). Byte bounds and windows are the kernel's too, by class.
	if r.HasSize {
		return Result{Verdict: NeedMore, Rule: c.Rule, Reason: ReasonInspecting}
	}
	return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonWithinLimits}
}

// checkWindow drops a flow outside its rule's hours and days, and records
// in the flow when its current window closes.
func checkWindow(c *Context, r *policy.Rule) Result {
	if len(r.Hours) == 0 && r.Days == 0 {
		return Result{}
	}
	until, ok := c.memo.windows.end(c.gen, c.Rule, r, c.Now)
	if !ok {
		return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonOutsideWindow, Event: EventWindow}
	}
	c.Flow.ValidUntil = until
	return Result{}
}

// windowEnd reports whether now is inside one of the rule's windows and,
// if so, when that window closes (unix nanoseconds).
func windowEnd(r *policy.Rule, now int64, loc *time.Location) (int64, bool) {
	t := time.Unix(0, now).In(loc)
	y, mo, d := t.Date()
	midnight := time.Date(y, mo, d, 0, 0, 0, 0, loc)
	minute := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if len(r.Hours) == 0 {
		if !r.Days.Has(day) {
			return 0, false
		}
		return midnight.AddDate(0, 0, 1).UnixNano(), true
	}
	for _, h := range r.Hours {
		switch {
		case h.Start < h.End:
			if minute >= h.Start && minute < h.End && r.Days.Has(day) {
				return midnight.Add(time.Duration(h.End) * time.Minute).UnixNano(), true
			}
		default: // wraps past midnight: the part after midnight belongs to the day it started
			if minute >= h.Start && r.Days.Has(day) {
				return midnight.AddDate(0, 0, 1).Add(time.Duration(h.End) * time.Minute).UnixNano(), true
			}
			if minute < h.End && r.Days.Has((day+6)%7) {
				return midnight.Add(time.Duration(h.End) * time.Minute).UnixNano(), true
			}
		}
	}
	return 0, false
}

// transportPort returns the destination port the micro layer matches on:
// the TCP or UDP port, zero for protocols without ports.
func transportPort(p *packet.Packet, reversed bool) uint16 {
	if reversed {
		return p.SrcPort
	}
	return p.DstPort
}
