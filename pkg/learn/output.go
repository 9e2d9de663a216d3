package learn

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
)

// Write writes the proposal as the base policy's text followed by what it
// adds: the summary, the groups, the devices and the rules, in that
// order. The base's rules stay first, so no learned rule takes a flow one
// of them decides.
func (p *Proposal) Write(w io.Writer, base []byte) error {
	if _, err := w.Write(base); err != nil {
		return err
	}
	tw := config.NewWriter(w)
	if len(base) > 0 && base[len(base)-1] != '\n' {
		tw.Blank()
	}
	tw.Blank()
	tw.Comment(p.Summary...)
	for _, g := range p.Groups {
		tw.Blank()
		tw.Group(g.Group, g.Comment...)
	}
	for _, d := range p.Devices {
		tw.Blank()
		tw.Device(d.Device, d.Comment...)
	}
	for _, r := range p.Rules {
		tw.Blank()
		tw.Allow(r.Allow, r.Comment...)
	}
	return tw.Err()
}

func (l *Learner) stamp(ns int64) string {
	return time.Unix(0, ns).In(l.base.Location).Format("2006-01-02 15:04:05 MST")
}

// captureNames lists the captures of bit set set by file name.
func (l *Learner) captureNames(set uint64, more, record bool) string {
	var names []string
	if record {
		names = append(names, "the daemon's record")
	}
	for i, c := range l.captures {
		if i < maxCaptures && set&(1<<uint(i)) != 0 {
			names = append(names, filepath.Base(c))
		}
	}
	if more {
		names = append(names, "and later ones")
	}
	return strings.Join(names, ", ")
}

// evidence is a rule's comment: what it was learned from, what was
// observed, and the bounds it leaves out.
func (l *Learner) evidence(s subject, r *ruleStats, left []string) []string {
	volume := fmt.Sprintf(", %d packets, %d bytes", r.packets, r.bytes)
	if r.sizesUnknown {
		volume = ""
	}
	out := []string{
		fmt.Sprintf("learned from %d flows%s; first seen %s, last seen %s", r.flows, volume, l.stamp(r.first), l.stamp(r.last)),
		"captures: " + l.captureNames(r.captures, r.moreCaptures, r.fromRecord),
	}
	if len(s.members) > 1 {
		out = append(out, "devices: "+strings.Join(s.members, ", "))
	}
	out = append(out, r.peerComment()...)
	obs := fmt.Sprintf("observed: packets of %d-%d bytes, at most %d bytes in a flow", r.minSize, r.maxSize, r.maxFlowBytes)
	if r.sizesUnknown {
		obs = "observed: the flows' first packets only (sizes and volumes unknown)"
	}
	if !r.rateUnbounded {
		obs += fmt.Sprintf(", at most %d new flows in a minute per device", r.maxPerMinute)
	}
	if !r.sizesUnknown {
		obs += fmt.Sprintf(", at most %d bytes in an hour per device", r.maxHourPair)
	}
	obs += ", active hours " + hourList(r.hours)
	out = append(out, obs, fmt.Sprintf("bounds: what was observed with a %g%% margin (packet sizes and byte bounds rounded out to shared steps)", l.opts.Margin*100))
	for _, x := range left {
		out = append(out, "not bounded: "+x)
	}
	return out
}

func hourList(mask uint32) string {
	var hs []string
	for h := 0; h < 24; h++ {
		if mask&(1<<h) != 0 {
			hs = append(hs, fmt.Sprintf("%02d", h))
		}
	}
	return strings.Join(hs, ",")
}

var categoryNames = [catCount]string{"learned", "already allowed", "denied by a segment", "spoofed per the base policy", "outside an existing rule"}

// deviceComment says what the device is and what it did.
func (c *candidate) deviceComment(l *Learner) []string {
	var out []string
	if iv := c.inv; iv != nil {
		line := fmt.Sprintf("seen %s to %s", l.stamp(iv.FirstSeen.UnixNano()), l.stamp(iv.LastSeen.UnixNano()))
		if iv.Hostname != "" {
			line += ", DHCP hostname " + iv.Hostname
		}
		out = append(out, line)
	}
	d := c.learned
	if d == nil {
		return append(out, "opened no flow: no rule")
	}
	var parts []string
	for i, n := range d.flows {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, categoryNames[i]))
		}
	}
	out = append(out, fmt.Sprintf("opened %d flows: %s", d.total(), strings.Join(parts, ", ")))
	if d.scan != "" {
		out = append(out, "FLAGGED AS A SCAN: "+d.scan+"; nothing it did is allowed: find out what it is")
	}
	if d.unfollow > 0 {
		out = append(out, fmt.Sprintf("%d of its flows were not followed (scan threshold or learning bounds): no rule for them", d.unfollow))
	}
	for _, n := range slices.Sorted(maps.Keys(d.notes)) {
		out = append(out, fmt.Sprintf("%d flows %s", d.notes[n], n))
	}
	return out
}

// summary is the proposal's opening comment.
func (l *Learner) summary(p *Proposal, cands []*candidate, leftOut []string) []string {
	var names []string
	for _, c := range l.captures {
		names = append(names, filepath.Base(c))
	}
	rep := l.runner.Report()
	if l.fromRecord {
		names = append(names, "and the daemon's record")
	}
	out := []string{
		"---- proposed by picoseg learn: review before use ----",
		fmt.Sprintf("learned from %d captures (%s): %d packets, %d flows, from %s to %s, covering %v", len(l.captures), strings.Join(names, ", "), rep.Packets, rep.Flows, l.stamp(l.first), l.stamp(l.last), l.covered.Round(time.Second)),
		fmt.Sprintf("adds %d devices, %d groups and %d rules after the base policy's own; bounds are what was observed with a %g%% margin", len(p.Devices), len(p.Groups), len(p.Rules), l.opts.Margin*100),
		"in the traffic it learned from, this proposal denies none of the flows it learned (check with picoseg diff)",
		"peers are written as devices, the gateway, the sender's zone (broadcast, multicast), by DNS name (dns:NAME) where every flow to an address followed a DNS answer giving it to the device for that name, else as addresses (each rule says why)",
		"left out on purpose:",
	}
	var notes []string
	if l.fromOutside > 0 {
		notes = append(notes, fmt.Sprintf("%d flows opened from outside the local zones, or by the gateway: segments decide those, and learn adds none", l.fromOutside))
	}
	notes = append(notes, leftOut...)
	for _, c := range cands {
		d := c.learned
		if d == nil {
			continue
		}
		if d.scan != "" {
			notes = append(notes, fmt.Sprintf("device %s is flagged as a scan (%s): no rule for it", c.name, d.scan))
		}
		for _, n := range slices.Sorted(maps.Keys(d.notes)) {
			if !strings.HasPrefix(n, "already allowed") {
				notes = append(notes, fmt.Sprintf("device %s: %d flows %s (not widened: change the base policy if they are legitimate)", c.name, d.notes[n], n))
			}
		}
	}
	if l.recordRefused > 0 {
		notes = append(notes, fmt.Sprintf("%d flows the daemon's record had no room for (its bounds): not learned", l.recordRefused))
	}
	if l.notFollowed > 0 || l.flowsEvicted > 0 {
		notes = append(notes, fmt.Sprintf("learning bounds: %d flows of devices past %d devices not followed; %d live flows forgotten past %d", l.notFollowed, l.opts.MaxDevices, l.flowsEvicted, l.opts.MaxFlows))
	}
	if len(l.cfg.Files) > 1 {
		notes = append(notes, "the base policy includes other files: their rules come after the rules added here, and include paths are relative to this file")
	}
	if len(notes) == 0 {
		notes = append(notes, "nothing")
	}
	for _, n := range notes {
		out = append(out, "  - "+n)
	}
	if hints := poolHints(p.Rules); len(hints) > 0 {
		out = append(out, "worth a look:")
		for _, h := range hints {
			out = append(out, "  - "+h)
		}
	}
	return out
}

// poolHints points at a subject that reached one service at several
// addresses (an NTP pool, a CDN): those addresses change, and the rules
// written for them will not follow.
func poolHints(rules []ProposedRule) []string {
	count := map[string]int{}
	var keys []string
	for _, r := range rules {
		if r.Allow.To.Kind != config.EndpointNet {
			continue
		}
		for _, svc := range r.Allow.Services {
			k := r.Allow.From.String() + " " + config.FormatService(svc)
			if count[k] == 0 {
				keys = append(keys, k)
			}
			count[k]++
		}
	}
	var out []string
	for _, k := range keys {
		if count[k] >= 3 {
			from, svc, _ := strings.Cut(k, " ")
			out = append(out, fmt.Sprintf("%s reached %s at %d addresses, likely a pool of servers whose addresses change; its rules list only those seen", from, svc, count[k]))
		}
	}
	return out
}
