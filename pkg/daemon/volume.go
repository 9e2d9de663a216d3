package daemon

import (
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

// volumes holds fast-pathed flows to their rules' device byte budgets.
// Once a flow is accepted its packets stay in the kernel, so the engine
// never counts them; conntrack does. Each dump's counters are charged to
// the flow's rule, and a flow whose device is over max_device_bytes is
// marked DROPPED and cut at its next packet. (A flow's own max_flow_bytes
// is the kernel's class check; Volume backs it up.)
type volumes struct {
	moved *conntrack.Tracker // of the accepted flows
	cut   int
	err   error
}

func newVolumes() *volumes {
	return &volumes{moved: conntrack.NewTracker()}
}

// needed reports whether pol has any device budget to hold flows to.
func (v *volumes) needed(pol *policy.Policy) bool {
	for i := range pol.Rules {
		if pol.Rules[i].MaxDevice > 0 {
			return true
		}
	}
	return false
}

// begin starts charging one dump, taken a flow at a time.
func (v *volumes) begin() {
	v.moved.Begin()
	v.cut, v.err = 0, nil
}

// flow charges one flow of the dump.
func (v *volumes) flow(f *conntrack.Flow, eng *engine.Engine, marks nft.Marks, ct conntrack.Controller, now time.Time) {
	if state, _ := marks.Decode(f.Mark); state != nft.StateAccepted || v.err != nil {
		return
	}
	m := v.moved.Flow(f)
	total, delta := f.OrigBytes+f.ReplyBytes, m.Orig+m.Reply
	// Charged to the rule that admitted the flow as the queue saw it (a
	// port forward's bytes go to the forward's rule and device).
	if !eng.Volume(judgedQuery(f, now), total, delta, now) {
		return
	}
	if err := setMark(ct, *f, marks.Dropped(), marks.Mask); err != nil {
		v.err = err
		return
	}
	v.cut++
}

// end finishes the dump: how many flows it cut, and the first error.
func (v *volumes) end() (int, error) {
	v.moved.End()
	return v.cut, v.err
}

// apply charges one whole dump.
func (v *volumes) apply(flows []conntrack.Flow, eng *engine.Engine, marks nft.Marks, ct conntrack.Controller, now time.Time) (int, error) {
	v.begin()
	for i := range flows {
		v.flow(&flows[i], eng, marks, ct, now)
	}
	return v.end()
}
