package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Query is one hypothetical flow for explain.
type Query struct {
	From, To netip.Addr
	// FromMAC is the sender's hardware address, when known.
	FromMAC *[6]byte
	Proto   uint8
	DPort   uint16
	// Size is the first packet's IP length (default 60).
	Size uint16
	At   time.Time
	// InIface and OutIface name the interfaces, when known.
	InIface, OutIface string
	// Existing asks about a flow that is already running (the daemon
	// judging a conntrack entry again), not a new one: a new-flow rate
	// does not apply to it.
	Existing bool
}

// ExplainQuery judges a hypothetical flow's first packet (see Explain).
func (e *Engine) ExplainQuery(q Query) Trace {
	p := packet.Packet{Kind: packet.KindOK, Src: q.From.Unmap(), Dst: q.To.Unmap(), Proto: q.Proto, Length: q.Size}
	if p.Length == 0 {
		p.Length = 60
	}
	if q.Proto == packet.ProtoTCP || q.Proto == packet.ProtoUDP {
		p.DstPort, p.SrcPort = q.DPort, 40000
	}
	// The first packet of a flow from q.From: a SYN, an echo request.
	switch q.Proto {
	case packet.ProtoTCP:
		p.TCPFlags = packet.TCPSyn
	case packet.ProtoICMP:
		p.ICMPType = 8
	case packet.ProtoICMPv6:
		p.ICMPType = 128
	}
	// An ICMP flow is opened by a query (conntrack tracks no other): a
	// hypothetical or re-judged one is an echo request, as the gateway's
	// default ping service expects.
	switch q.Proto {
	case packet.ProtoICMP:
		p.ICMPType = 8
	case packet.ProtoICMPv6:
		p.ICMPType = 128
	}
	if q.FromMAC != nil {
		p.HasMAC, p.SrcMAC = true, *q.FromMAC
	}
	pol := e.Policy()
	m := Meta{InZone: policy.None, OutZone: policy.None}
	if q.InIface != "" {
		m.InZone = pol.ZoneOfInterface(q.InIface)
	}
	if q.OutIface != "" {
		m.OutZone = pol.ZoneOfInterface(q.OutIface)
	}
	return e.explain(&p, q.At, m, q.Existing)
}

// traceJSON is the JSON form of a trace.
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

func (t *Trace) view(pol *policy.Policy, q Query) traceJSON {
	d := t.Decision
	v := traceJSON{
		Verdict: d.Verdict.String(), WouldDrop: d.WouldDrop, Layer: d.Layer.String(),
		Rule: d.RuleName(pol), Reason: d.Reason.String(),
		From: sideJSON{Addr: q.From.String(), Device: pol.DeviceName(d.SrcDevice), Zone: pol.ZoneName(zoneFor(pol, q.InIface, q.From))},
		To:   sideJSON{Addr: q.To.String(), Device: pol.DeviceName(d.DstDevice), Zone: pol.ZoneName(dstZoneFor(pol, q))},
	}
	if d.Rule >= 0 {
		switch d.Layer {
		case LayerSegment:
			v.RuleAt = pol.Segments[d.Rule].Pos.String()
		case LayerMicro, LayerPico:
			// A default service of the gateway that no [gateway] table
			// mentions was written nowhere.
			if pos := pol.Rules[d.Rule].Pos; pos.Line > 0 {
				v.RuleAt = pos.String()
			}
		}
	}
	for _, s := range t.Steps {
		v.Steps = append(v.Steps, stepJSON{Stage: s.Stage, Verdict: s.Result.Verdict.String(), Rule: ruleName(pol, s.Layer, s.Result.Rule), Reason: s.Result.Reason.String()})
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
func dstZoneFor(pol *policy.Policy, q Query) int32 {
	switch {
	case pol.IsLinkBroadcast(q.To):
		return zoneFor(pol, q.InIface, q.From)
	case q.OutIface == "" && pol.IsGatewayDst(q.To):
		return policy.Gateway
	}
	return zoneFor(pol, q.OutIface, q.To)
}

// WriteJSON writes the trace of q as one JSON object.
func (t *Trace) WriteJSON(w io.Writer, pol *policy.Policy, q Query) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(t.view(pol, q))
}

// WriteText writes the trace of q for people.
func (t *Trace) WriteText(w io.Writer, pol *policy.Policy, q Query) error {
	v := t.view(pol, q)
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
	case t.Decision.Verdict == NeedMore:
		verdict = "accept, still inspecting (the flow's next packets are judged too)"
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

// Volume charges bytes that a fast-pathed flow moved in the kernel, where
// the engine never saw them, to its rule's bounds: flowBytes is all the flow
// has moved, delta what it moved since the last report. It reports whether
// the flow must be cut: over its rule's max_flow_bytes, or its device over
// max_device_bytes for the period. The first time each bound is crossed, an
// event is raised. The flow's rule is found by judging q at now. In
// monitor mode the events are raised and nothing is cut.
func (e *Engine) Volume(q Query, flowBytes, delta uint64, now time.Time) (cut bool) {
	g := e.cur.Load()
	return e.volume(g, q, flowBytes, delta, now) && g.policy.Mode != config.ModeMonitor
}

func (e *Engine) volume(g *generation, q Query, flowBytes, delta uint64, now time.Time) bool {
	q.Existing = true
	d := e.ExplainQuery(q).Decision
	if d.Layer != LayerPico || d.Rule < 0 || d.Verdict == Drop {
		return false
	}
	r := &g.policy.Rules[d.Rule]
	ev := Event{Type: EventVolume, Time: now.UnixNano(), Layer: LayerPico, Rule: r.Name,
		Device: g.policy.DeviceName(d.SrcDevice), Src: q.From.Unmap(), Dst: q.To.Unmap(), Proto: q.Proto, DPort: q.DPort}
	if r.MaxFlow > 0 && flowBytes > r.MaxFlow {
		ev.Reason, ev.Bytes = ReasonFlowBytes, flowBytes
		e.raise(ev)
		return true
	}
	if r.MaxDevice == 0 {
		return false
	}
	owner := ownerOf(d.SrcDevice, q.From)
	slot := g.budgets.handle(d.Rule, owner)
	if slot < 0 {
		// The flow was admitted under another generation of the policy:
		// open the device's budget under this one.
		g.budgets.admit(d.Rule, r, owner, now.UnixNano(), false, true)
		if slot = g.budgets.handle(d.Rule, owner); slot < 0 {
			return false
		}
	}
	over, first := g.budgets.add(slot, r, delta, now.UnixNano())
	if first {
		ev.Reason, ev.Bytes = ReasonDeviceBytes, delta
		e.raise(ev)
	}
	return over
}

func (e *Engine) raise(ev Event) {
	e.stats.Events.Add(1)
	e.sink.Emit(ev)
}
