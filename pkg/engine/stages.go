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
	return []Stage{identifyStage{}, segmentStage{}, microStage{}, picoStage{}}
}

// identifyStage names the devices at both ends and their zones, and
// refuses spoofed sources.
type identifyStage struct{}

func (identifyStage) Name() string { return "identify" }
func (identifyStage) Layer() Layer { return LayerIdentify }

func (identifyStage) Evaluate(c *Context) Result {
	p, pol := c.Packet, c.Policy
	src, dst := p.Src, p.Dst
	if c.Reversed {
		src, dst = dst, src
	}
	c.Src = policy.Side{Addr: src, Device: pol.DeviceByAddr(src), Zone: zoneOf(pol, c.InZone, src)}
	c.Dst = policy.Side{Addr: dst, Device: pol.DeviceByAddr(dst), Zone: zoneOf(pol, c.OutZone, dst)}
	if c.Reversed {
		c.Src.Zone, c.Dst.Zone = zoneOf(pol, c.OutZone, src), zoneOf(pol, c.InZone, dst)
	}
	if !p.HasMAC {
		return Result{Rule: policy.None}
	}
	// The hardware address names the sender. A known device is identified
	// by its MAC first: using an address that is not its own is spoofing,
	// and so is a known device's address arriving from another MAC.
	sender, senderAddr := &c.Src, src
	if c.Reversed {
		sender, senderAddr = &c.Dst, dst
	}
	if d := pol.DeviceByMAC(p.SrcMAC); d != policy.None {
		dev := &pol.Devices[d]
		if len(dev.Addrs) > 0 && !dev.HasAddr(senderAddr) {
			sender.Device = d
			return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedMAC, Event: EventSpoof}
		}
		sender.Device = d
		return Result{Rule: policy.None}
	}
	if d := sender.Device; d != policy.None && pol.Devices[d].HasMAC {
		return Result{Verdict: Drop, Rule: policy.None, Reason: ReasonSpoofedAddr, Event: EventSpoof}
	}
	return Result{Rule: policy.None}
}

func zoneOf(pol *policy.Policy, ifaceZone int32, a netip.Addr) int32 {
	if ifaceZone != policy.None {
		return ifaceZone
	}
	return pol.ZoneOfAddr(a)
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
	r := c.Policy.Match(&c.Src, &c.Dst, c.Packet.Proto, c.DPort, &c.scratch)
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
		reason, event := c.gen.budgets.admit(c.Rule, r, c.Src.Addr, c.Now, c.DryRun, c.Existing)
		if reason != ReasonNone {
			return Result{Verdict: Drop, Rule: c.Rule, Reason: reason, Event: event}
		}
	}
	// Size bounds are checked on the flow's first packets here: the
	// kernel's fast path cannot check them (a merged packet there is
	// several on the wire). Byte bounds are the kernel's, by class.
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
	until, ok := windowEnd(r, c.Now, c.Policy.Location)
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
