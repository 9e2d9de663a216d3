package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"

	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/policy"
)

// traceJSON is the JSON form of explain's answer.
type traceJSON struct {
	Verdict   string     `json:"verdict"`
	WouldDrop bool       `json:"would_drop,omitempty"`
	Layer     string     `json:"layer"`
	Rule      string     `json:"rule"`
	RuleAt    string     `json:"rule_at,omitempty"`
	Reason    string     `json:"reason"`
	From      sideJSON   `json:"from"`
	To        sideJSON   `json:"to"`
	Steps     []stepJSON `json:"steps"`
	// App is the protocol the deciding rule's flows must speak, "" for
	// none: the flow's first bytes decide what explain cannot see.
	App string `json:"app,omitempty"`
}

type sideJSON struct {
	Addr   string `json:"addr"`
	Device string `json:"device,omitempty"`
	Zone   string `json:"zone"`
}

type stepJSON struct {
	Stage   string `json:"stage"`
	Verdict string `json:"verdict"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// traceView is the trace t of query q in the names of pol.
func traceView(t *engine.Trace, pol *policy.Policy, q engine.Query) traceJSON {
	d := t.Decision
	v := traceJSON{
		Verdict: d.Verdict.String(), WouldDrop: d.WouldDrop, Layer: d.Layer.String(),
		Rule: d.RuleName(pol), Reason: d.Reason.String(),
		From: sideJSON{Addr: q.From.String(), Device: pol.DeviceName(d.SrcDevice), Zone: pol.ZoneName(zoneFor(pol, q.InIface, q.From))},
		To:   sideJSON{Addr: q.To.String(), Device: pol.DeviceName(d.DstDevice), Zone: pol.ZoneName(dstZoneFor(pol, q))},
	}
	if d.Rule >= 0 {
		switch d.Layer {
		case engine.LayerSegment:
			v.RuleAt = pol.Segments[d.Rule].Pos.String()
		case engine.LayerMicro, engine.LayerPico:
			// A default service of the gateway that no [gateway] table
			// mentions was written nowhere.
			if pos := pol.Rules[d.Rule].Pos; pos.Line > 0 {
				v.RuleAt = pos.String()
			}
		}
	}
	if d.Layer == engine.LayerPico && d.Rule >= 0 && int(d.Rule) < len(pol.Rules) && pol.Rules[d.Rule].App != nil {
		v.App = pol.Rules[d.Rule].App.Proto().String()
	}
	for i := range t.Steps {
		s := &t.Steps[i]
		v.Steps = append(v.Steps, stepJSON{Stage: s.Stage, Verdict: s.Result.Verdict.String(), Rule: s.RuleName(pol), Reason: s.Result.Reason.String()})
	}
	return v
}

func zoneFor(pol *policy.Policy, iface string, a netip.Addr) int32 {
	if iface != "" {
		if z := pol.ZoneOfInterface(iface); z != policy.None {
			return z
		}
	}
	return pol.ZoneOfAddr(a.Unmap())
}

// dstZoneFor is zoneFor for q's destination, which may be the gateway, or
// with a broadcast or multicast address the sender's own link.
func dstZoneFor(pol *policy.Policy, q engine.Query) int32 {
	switch {
	case pol.IsLinkBroadcast(q.To):
		return zoneFor(pol, q.InIface, q.From)
	case q.OutIface == "" && pol.IsGatewayDst(q.To):
		return policy.Gateway
	}
	return zoneFor(pol, q.OutIface, q.To)
}

// writeTraceJSON writes the trace of q as one JSON object.
func writeTraceJSON(w io.Writer, t *engine.Trace, pol *policy.Policy, q engine.Query) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(traceView(t, pol, q))
}

// writeTraceText writes the trace of q for people.
func writeTraceText(w io.Writer, t *engine.Trace, pol *policy.Policy, q engine.Query) error {
	v := traceView(t, pol, q)
	name := func(s sideJSON) string {
		if s.Device != "" {
			return fmt.Sprintf("%s (device %s, zone %s)", s.Addr, s.Device, s.Zone)
		}
		return fmt.Sprintf("%s (zone %s)", s.Addr, s.Zone)
	}
	verdict := v.Verdict
	switch {
	case v.WouldDrop:
		verdict = "accept (monitor mode; enforce would drop)"
	case t.Decision.Verdict == engine.NeedMore:
		verdict = "accept, still inspecting (the flow's next packets are judged too)"
	}
	if v.App != "" {
		verdict += "; the flow must speak " + v.App + ", read from its first bytes"
	}
	fmt.Fprintf(w, "%s: %s -> %s\n", verdict, name(v.From), name(v.To))
	rule := v.Rule
	if rule == "" {
		rule = "(default)"
	}
	if v.RuleAt != "" {
		rule += " at " + v.RuleAt
	}
	fmt.Fprintf(w, "decided by %s layer, rule %s\nbecause %s\n", v.Layer, rule, v.Reason)
	for _, s := range v.Steps {
		line := fmt.Sprintf("  %-9s %s", s.Stage, s.Verdict)
		if s.Rule != "" {
			line += " rule " + s.Rule
		}
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		fmt.Fprintln(w, line)
	}
	return nil
}
