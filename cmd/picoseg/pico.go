package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

// checkClasses reports a policy with more pico classes than the mark
// field holds: the daemon could not install its kernel checks.
func checkClasses(pol *policy.Policy, mask uint32) error {
	marks := nft.Marks{Mask: mask}
	if mask == 0 {
		marks = nft.DefaultMarks()
	}
	if n := len(pol.Classes); marks.Validate() == nil && n > marks.MaxClasses() {
		return fmt.Errorf("%d pico classes (rules with different time windows, packet sizes or byte bounds, and one for each rule with max_new_flows), but mark_mask %#x holds %d: widen mark_mask or give rules the same bounds", n, marks.Mask, marks.MaxClasses())
	}
	return nil
}

// writePico lists what `check` says of the pico layer beyond "ok": the
// classes the kernel checks on the fast path, and the rules' fan-out
// bounds.
func writePico(w io.Writer, pol *policy.Policy) {
	rulesOf := make(map[uint16][]string)
	for _, r := range pol.Rules[:pol.UserRules] {
		if r.Class != 0 {
			rulesOf[r.Class] = append(rulesOf[r.Class], r.Name)
		}
	}
	if len(pol.Classes) > 1 {
		fmt.Fprintln(w, "pico classes, checked by the kernel on every fast-pathed packet:")
	}
	for c := 1; c < len(pol.Classes); c++ {
		fmt.Fprintf(w, "  class %-3d %s; rules %s\n", c, classText(&pol.Classes[c], pol.Location), strings.Join(rulesOf[uint16(c)], ", "))
	}
	for _, r := range pol.Rules[:pol.UserRules] {
		if r.FanPeers == 0 && r.FanPorts == 0 {
			continue
		}
		fmt.Fprintf(w, "fan-out bound of %s: %s per device per %v; past it, flows are refused (possible_scan)\n", r.Name, fanText(&r), r.FanWindow)
	}
	for _, r := range pol.Rules[:pol.UserRules] {
		if r.App == nil {
			continue
		}
		how := "its first packets are read in userspace until identified, then it is fast-pathed"
		if r.App.Lifelong() {
			how = "every packet is judged in userspace for the flow's life"
		}
		fmt.Fprintf(w, "application of %s: %s; %s\n", r.Name, r.App.Proto(), how)
	}
}

// classText describes a class's kernel checks.
func classText(c *policy.Class, loc *time.Location) string {
	var parts []string
	if c.HasWindow() {
		parts = append(parts, fmt.Sprintf("open %s %s (%s; the kernel drops a packet outside it)", hoursText(c.Hours), daysText(c.Days), loc))
	}
	if c.HasSize {
		parts = append(parts, fmt.Sprintf("packets of %d-%d bytes (on TCP only the lower bound)", c.SizeMin, c.SizeMax))
	}
	if c.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("flows up to %d bytes", c.Bytes))
	}
	if c.NewFlows > 0 {
		parts = append(parts, fmt.Sprintf("a device's repeated openings of a service it was allowed to, up to %d per %v (the rest are the engine's)", c.NewFlows, c.NewFlowPer))
	}
	return strings.Join(parts, ", ")
}

func hoursText(hours []config.TimeRange) string {
	if len(hours) == 0 {
		return "all day"
	}
	out := make([]string, len(hours))
	for i, h := range hours {
		out[i] = fmt.Sprintf("%02d:%02d-%02d:%02d", h.Start/60, h.Start%60, h.End/60, h.End%60)
	}
	return strings.Join(out, ", ")
}

func daysText(days config.Weekdays) string {
	if days == 0 {
		return "every day"
	}
	var out []string
	for d := time.Sunday; d <= time.Saturday; d++ {
		if days.Has(d) {
			out = append(out, strings.ToLower(d.String()[:3]))
		}
	}
	return "on " + strings.Join(out, " ")
}

// writeRulePico adds to explain's text the deciding rule's fan-out bound,
// which a single flow offline cannot show: there is no history, so the
// flow is judged as the device's first. (`check` lists the rules' kernel
// class checks.)
func writeRulePico(w io.Writer, pol *policy.Policy, rule int32) {
	if rule < 0 || int(rule) >= pol.UserRules {
		return
	}
	if r := &pol.Rules[rule]; r.FanPeers > 0 || r.FanPorts > 0 {
		fmt.Fprintf(w, "fan-out bound: %s per device per %v (explain keeps no history: judged as the device's first flow)\n", fanText(r), r.FanWindow)
	}
}

func fanText(r *policy.Rule) string {
	var parts []string
	if r.FanPeers > 0 {
		parts = append(parts, fmt.Sprintf("%d peers", r.FanPeers))
	}
	if r.FanPorts > 0 {
		parts = append(parts, fmt.Sprintf("%d ports on one peer", r.FanPorts))
	}
	return "at most " + strings.Join(parts, " and ")
}
