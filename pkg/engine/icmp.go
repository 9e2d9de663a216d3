package engine

import (
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// quotedFlow judges an ICMP or ICMPv6 error by the flow of the packet it
// quotes. An error is allowed only when that flow is known and accepted,
// the error goes to the quoted packet's sender, and it comes from the
// quoted packet's destination or from a router on the way (an address that
// is no device of the policy: a device speaks only for its own flows). The
// quoted packet may be of either direction of its flow: both sides of an
// accepted flow may hear of its failures. An error never opens a flow and
// is never stored: otherwise a device could send anything to anyone dressed
// as "destination unreachable", and quoting a flow it invented would make
// that flow.
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
	if !p.QuotedPacket(q) || q.Src != p.Dst || (q.Dst != p.Src && c.Src.Device != policy.None) {
		return w.finish(d, p, now, EventDeny)
	}
	key, _ := flow.KeyOf(q)
	var st flow.State
	// The quoted flow's judgement must be this policy's: a flow an older
	// policy accepted is judged again on its own next packet, and until
	// then its errors wait (a lost error costs a retransmission).
	if !w.e.flows.Peek(key, now, &st) || st.Verdict == uint8(Drop) || st.Gen != g.id {
		return w.finish(d, p, now, EventDeny)
	}
	d.Verdict, d.Layer, d.Reason, d.Rule, d.Cached = Accept, Layer(st.Layer), ReasonErrorOfFlow, st.Rule, true
	return w.finish(d, p, now, noEvent)
}
