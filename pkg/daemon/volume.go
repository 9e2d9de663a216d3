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
	last, next map[uint64]uint64 // bytes at the previous dump, by conntrack.Flow.Hash
	cut        int
	err        error
}

func newVolumes() *volumes {
	return &volumes{last: map[uint64]uint64{}, next: map[uint64]uint64{}}
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
	clear(v.next)
	v.cut, v.err = 0, nil
}

// flow charges one flow of the dump.
func (v *volumes) flow(f *conntrack.Flow, eng *engine.Engine, marks nft.Marks, ct conntrack.Controller, now time.Time) {
	if state, _ := marks.Decode(f.Mark); state != nft.StateAccepted || v.err != nil {
		return
	}
	k := f.Hash()
	total := f.OrigBytes + f.ReplyBytes
	delta := total
	if prev, ok := v.last[k]; ok && prev <= total {
		delta = total - prev
	}
	v.next[k] = total
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
	v.last, v.next = v.next, v.last
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
