package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

// rejudgeResult counts what a re-judgement changed.
type rejudgeResult struct {
	Checked int // flows with a picoseg mark
	Cut     int // accepted flows now denied: marked DROPPED
	Cleared int // flows whose mark no longer fits: their next packet is judged
	// Reclassed counts allowed flows moved to another pico class.
	Reclassed int
}

// rejudge judges again at now every flow the kernel tracks with a picoseg
// mark, as the queue saw it (conntrack.Flow.Judged: after destination NAT,
// so an allowed port forward is judged as the forward to its LAN host, not
// as a flow to the gateway's own port). Accepted flows are fast-pathed and
// never reach the engine again, so this is how a reload, a closing time
// window or a spent budget reaches them:
//   - accepted, now denied: set DROPPED, so the kernel drops the next packet;
//   - accepted, now under inspection again: clear, so it is queued;
//   - dropped, now allowed: clear, so its next packet is judged;
//   - under inspection, now denied: set DROPPED; otherwise left as it is:
//     the kernel queues its opener's next payload anyway, and the engine
//     judges it under the policy of the day.
func rejudge(ctx context.Context, ct conntrack.Controller, eng *engine.Engine, marks nft.Marks, now time.Time) (rejudgeResult, error) {
	var res rejudgeResult
	err := ct.Each(ctx, func(f conntrack.Flow) error {
		return rejudgeFlow(f, ct, eng, marks, now, &res)
	})
	return res, err
}

// rejudgeFlow is rejudge for one flow of a dump, counted into res.
func rejudgeFlow(f conntrack.Flow, ct conntrack.Controller, eng *engine.Engine, marks nft.Marks, now time.Time, res *rejudgeResult) error {
	state, class := marks.Decode(f.Mark)
	if state == nft.StateUnjudged {
		return nil
	}
	res.Checked++
	d := eng.Judge(judgedQuery(&f, now))
	var want uint32
	switch {
	case state == nft.StateInspecting && d.Verdict != engine.Drop:
		// Like an unjudged flow: nothing the kernel passes of it is read
		// by anyone, and what is read is still queued.
		return nil
	case d.Verdict == engine.Accept && state == nft.StateAccepted && class == d.Class:
		return nil
	case d.Verdict == engine.Accept && state == nft.StateAccepted:
		// Still allowed, under another class (the new policy's numbering,
		// or another byte bound): the kernel's checks must be the new ones.
		want = marks.Accepted(d.Class)
		res.Reclassed++
	case d.Verdict == engine.Drop && state == nft.StateDropped:
		return nil
	case d.Verdict == engine.Drop:
		want = marks.Dropped()
		res.Cut++
	default:
		res.Cleared++
	}
	return setMark(ct, f, want, marks.Mask)
}

// judgedQuery asks the engine about a tracked flow as the queue saw it.
func judgedQuery(f *conntrack.Flow, now time.Time) engine.Query {
	src, dst, dport := f.Judged()
	return engine.Query{From: src, To: dst, Proto: f.Proto, DPort: dport, At: now, Existing: true}
}

// setMark re-marks a flow of a pass over the table. A flow that closed
// since the dump listed it needs no new mark: its not-found error is not a
// reason to stop the pass (it would leave every later flow unjudged).
func setMark(ct conntrack.Controller, f conntrack.Flow, mark, mask uint32) error {
	if err := ct.SetMark(f, mark, mask); err != nil && !errors.Is(err, conntrack.ErrNotFound) {
		return err
	}
	return nil
}

// hasWindows reports whether any rule of pol has a time window, so that
// flows must be judged again as windows close.
func hasWindows(pol *policy.Policy) bool {
	for i := range pol.Rules {
		if len(pol.Rules[i].Hours) > 0 || pol.Rules[i].Days != 0 {
			return true
		}
	}
	return false
}
