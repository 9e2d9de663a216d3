package engine

import (
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// quotedFlow judges an ICMP or ICMPv6 error by the flow of the packet it
// quotes. An error is allowed only when that flow is accepted, the error
// goes to the quoted packet's sender, and it comes from the quoted
// packet's destination or from a router on the way (an address that is no
// device of the policy: a device speaks only for its own flows). The
// quoted packet may be of either direction of its flow: both sides of an
// accepted flow may hear of its failures. An error never opens a flow and
// is never stored: otherwise a device could send anything to anyone dressed
// as "destination unreachable", and quoting a flow it invented would make
// that flow.
//
// A quoted flow the table does not hold, or holds from an older policy, is
// judged afresh without being stored (openingAllowed): the kernel queues
// the errors of flows it fast-paths, and after a restart or a reload the
// table has not seen them yet. A path-MTU error for a running download
// must not be lost then.
func (w *Worker) quotedFlow(g *generation, p *packet.Packet, now int64, m Meta) Decision {
	// The sender is identified like any other: an error from a spoofed
	// address is spoofing before it is anything else.
	c := w.begin(g, p, now, m, opening)
	if res := (identifyStage{}).Evaluate(c); res.Verdict == Drop {
		d := Decision{Verdict: Drop, Layer: LayerIdentify, Reason: res.Reason, Rule: res.Rule,
			SrcDevice: c.Src.Device, DstDevice: c.Dst.Device, Related: true}
		return w.finish(d, p, now, denial(res.Event))
	}
	d := Decision{Verdict: Drop, Layer: LayerMicro, Reason: ReasonErrorNoFlow, Rule: policy.None,
		SrcDevice: c.Src.Device, DstDevice: c.Dst.Device, Related: true}
	q := &w.quoted
	if !p.QuotedPacket(q) || q.Src != p.Dst {
		return w.finish(d, p, now, EventDeny)
	}
	if q.Dst == p.Src || c.Src.Device == policy.None {
		if layer, rule, cached, ok := w.quotedAllowed(g, q, now, m); ok {
			d.Verdict, d.Layer, d.Reason, d.Rule, d.Cached = Accept, layer, ReasonErrorOfFlow, rule, cached
			return w.finish(d, p, now, noEvent)
		}
	}
	if g.policy.IsGateway(q.Src) {
		// The quoted packet is the gateway's: the error may be about one
		// of the gateway's own connections, which no verdict covers.
		return w.gatewayFlowError(d, p, q, now, m)
	}
	return w.finish(d, p, now, EventDeny)
}

// quotedAllowed reports whether the quoted packet's flow is accepted: by
// its verdict in the table (cached), or, when the table does not hold it
// from this policy, by a dry judgement of its opening.
func (w *Worker) quotedAllowed(g *generation, q *packet.Packet, now int64, m Meta) (Layer, int32, bool, bool) {
	key, _ := flow.KeyOf(q)
	var st flow.State
	if w.e.flows.Peek(key, now, &st) && st.Gen == g.id {
		return Layer(st.Layer), st.Rule, true, st.Verdict != uint8(Drop)
	}
	layer, rule, ok := w.openingAllowed(g, q, now, m)
	return layer, rule, false, ok
}

// gatewayFlowError judges an error about one of the gateway's own
// connections (the quoted packet is the gateway's). picoseg does not judge
// what the gateway opens, and the kernel accepts such an error as a reply;
// it is queued so that a device cannot cut the gateway's connections or
// shrink their path MTU with forged errors. The error must come from the
// connection's peer or from a zone that is not local (the internet's
// routers on the way). Local zones hold devices, not routers of the
// gateway's paths: there only the peer speaks for the connection. An error
// arriving on an interface in no zone proves nothing either way and is
// accepted, as the kernel would.
func (w *Worker) gatewayFlowError(d Decision, p, q *packet.Packet, now int64, m Meta) Decision {
	pol := w.ctx.Policy
	in := m.InZone
	if p.Src == q.Dst || in < 0 || !pol.Zones[in].Local {
		d.Verdict, d.Layer, d.Reason = Accept, LayerIdentify, ReasonErrorOfFlow
		return w.finish(d, p, now, noEvent)
	}
	d.Reason = ReasonErrorOffPath
	return w.finish(d, p, now, EventDeny)
}

// openingAllowed reports whether the current policy lets the quoted
// packet's flow be opened, by the quoted packet's sender or, the quoted
// packet being a reply, by its destination; and if so by which layer and
// rule. It is a dry run: nothing is stored, no rate or budget is charged
// and no event is raised for the judged opening (the error's own verdict
// raises its event). The worker's context is the error's again afterwards,
// for the error's event.
//
// The quoted packet travelled the other way from the error: it came in
// where the error goes out, so the error's zones are swapped (on the input
// hook the quoted packet came from the gateway). Its bridge
// port is unknown (the error's is not its). The quoted packet's length is
// not the flow's, so the rule's packet size bounds do not decide (the
// kernel's checks of the flow's class, and its own packets, answer for
// them).
//
// A flow denied by an older policy but allowed by this one has its errors
// accepted: its next packet of its own is judged again and accepted too.
func (w *Worker) openingAllowed(g *generation, q *packet.Packet, now int64, m Meta) (Layer, int32, bool) {
	c := &w.ctx
	src, dst, dport, st := c.Src, c.Dst, c.DPort, w.st
	qm := Meta{InZone: m.OutZone, OutZone: m.InZone}
	layer, rule, ok := LayerNone, policy.None, false
	for _, reversed := range quotedOpenings(q) {
		how := existingFlow | dryRun
		if reversed {
			how |= asReply
		}
		d, _ := w.run(g, q, now, qm, how)
		if d.Verdict != Drop || d.Layer == LayerPico && d.Reason == ReasonPacketSize {
			layer, rule, ok = d.Layer, d.Rule, true
			break
		}
	}
	c.Src, c.Dst, c.DPort, w.st = src, dst, dport, st
	return layer, rule, ok
}

// quotedOpenings lists the ways the quoted packet's flow may have been
// opened: by its sender (reversed false) or by its destination, the quoted
// packet being a reply. An ICMP query says which: a request opens from its
// sender, a reply answers a request its destination sent. A TCP or UDP
// quote carries no flags, so either side may have opened.
func quotedOpenings(q *packet.Packet) []bool {
	switch role, _ := packet.ICMPRoleOf(q.Proto, q.ICMPType); role {
	case packet.ICMPRequest:
		return openedBySender
	case packet.ICMPReply:
		return openedByReceiver
	}
	return openedByEither
}

var (
	openedBySender   = []bool{false}
	openedByReceiver = []bool{true}
	openedByEither   = []bool{false, true}
)
