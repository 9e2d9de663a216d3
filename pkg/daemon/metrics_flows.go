package daemon

import (
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/metrics"
)

// flowRuleCounts serves picoseg_flow_rule_total: flows in the flow table by
// deciding layer, rule and verdict. It reads the counts the flow table
// keeps as flows come and go (flow.Table.Tallies), never the flows: a
// scrape, which anyone who reaches the metrics port can repeat, must not
// hold the packet path's locks for a walk of a hundred thousand flows.
func flowRuleCounts(eng *engine.Engine) func(add func(float64, ...metrics.Label)) {
	return func(add func(float64, ...metrics.Label)) {
		type key struct{ layer, rule, verdict string }
		counts := map[key]int{}
		pol := eng.Policy()
		for t, n := range eng.Flows().Tallies() {
			d := engine.Decision{Layer: engine.Layer(t.Layer), Rule: t.Rule}
			// Flows judged by an earlier policy generation keep their
			// rule index until their next packet judges them again;
			// they are named after the current policy, as before.
			counts[key{d.Layer.String(), d.RuleName(pol), engine.Verdict(t.Verdict).String()}] += n
		}
		for k, n := range counts {
			add(float64(n), metrics.L("layer", k.layer), metrics.L("rule", k.rule), metrics.L("verdict", k.verdict))
		}
	}
}
