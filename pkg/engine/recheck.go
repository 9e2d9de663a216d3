package engine

import (
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/policy"
)

// recheck is the pico stage's judgement of one more packet of a flow it
// accepted: the constraints of rule r that span the flow's life, checked in
// one place for every later packet (Evaluate checks the first). st is the
// flow with this packet of size bytes already counted. It returns
// ReasonNone when the flow may go on, else why it must be cut and the event
// to raise. When the flow's time window has ended and another has begun, it
// moves st.ValidUntil to the new window's end and reports moved, so that
// the caller stores it.
func (picoStage) recheck(g *generation, r *policy.Rule, st *flow.State, size uint16, now int64, m Meta) (reason Reason, event EventType, moved bool) {
	if trippedOver(r, m) {
		return ReasonFlowBytes, EventVolume, false
	}
	if st.ValidUntil != 0 && now >= st.ValidUntil {
		until, ok := windowEnd(r, now, g.policy.Location)
		if !ok {
			return ReasonOutsideWindow, EventWindow, false
		}
		st.ValidUntil, moved = until, true
	}
	if r.HasSize && sizeOutside(r, size, m.Merged) {
		return ReasonPacketSize, EventDeny, moved
	}
	if r.MaxFlow > 0 && st.Bytes > r.MaxFlow {
		return ReasonFlowBytes, EventVolume, moved
	}
	if st.Budget >= 0 {
		if over, _ := g.budgets.add(st.Budget, r, uint64(size), now); over {
			return ReasonDeviceBytes, EventVolume, moved
		}
	}
	return ReasonNone, 0, moved
}

// trippedOver reports whether the kernel queued the packet because its flow
// went past the rule's byte bound on the fast path, where the engine did not
// see the bytes.
func trippedOver(r *policy.Rule, m Meta) bool {
	return m.Tripped && r.MaxFlow > 0
}
