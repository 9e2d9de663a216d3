package engine

import (
	"time"

	"github.com/picoseg/picoseg/pkg/config"
)

// Volume charges bytes that a fast-pathed flow moved in the kernel, where
// the engine never saw them, to its rule's bounds: flowBytes is all the flow
// has moved, delta what it moved since the last report. It reports whether
// the flow must be cut: over its rule's max_flow_bytes, or its device over
// max_device_bytes for the period. The first time each bound is crossed, an
// event is raised. The flow's rule is found by judging q at now (Judge). In
// monitor mode the events are raised and nothing is cut. It allocates
// nothing.
func (e *Engine) Volume(q Query, flowBytes, delta uint64, now time.Time) (cut bool) {
	g := e.cur.Load()
	return e.volume(g, q, flowBytes, delta, now) && g.policy.Mode != config.ModeMonitor
}

func (e *Engine) volume(g *generation, q Query, flowBytes, delta uint64, now time.Time) bool {
	q.Existing = true
	// Judged under g, the generation whose rules d.Rule indexes.
	d := e.judge(g, q)
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
		g.budgets.admit(d.Rule, r, owner, now.UnixNano(), existingFlow)
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

// raise counts event ev and hands it to the sink.
func (e *Engine) raise(ev Event) {
	e.stats.Events.Add(1)
	e.sink.Emit(ev)
}
