package engine

import (
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Trace is the answer to explain: every stage's result in order, and the
// final decision. It is data only; commands render it.
type Trace struct {
	Steps    []Step
	Decision Decision
}

// Step is one stage's result in a Trace.
type Step struct {
	Stage  string
	Layer  Layer
	Result Result
}

// RuleName names the step's rule in pol, "" for none.
func (s *Step) RuleName(pol *policy.Policy) string {
	return ruleName(pol, s.Layer, s.Result.Rule)
}

// Explain judges one hypothetical packet at time at without touching the
// flow table or any counter, and returns each stage's answer. Its decision
// is the one Judge gives for the same flow.
func (e *Engine) Explain(p *packet.Packet, at time.Time, m Meta) Trace {
	var t Trace
	w := e.tracer(&t)
	t.Decision = w.decide(e.cur.Load(), p, at.UnixNano(), m, opening)
	return t
}

// ExplainQuery is Judge with every stage's answer (see Explain).
func (e *Engine) ExplainQuery(q Query) Trace {
	var t Trace
	var p packet.Packet
	t.Decision = e.tracer(&t).query(e.cur.Load(), q, &p)
	return t
}

// tracer returns a Worker that records every stage's answer in t.
func (e *Engine) tracer(t *Trace) *Worker {
	w := e.NewWorker()
	w.trace = &t.Steps
	return w
}
