package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
)

// Class is a pico class: the checks the kernel holds a fast-pathed flow of
// its rules to, packet by packet. Rules with the same checks share a class;
// class 0 has none.
type Class struct {
	// Bytes bounds a flow's bytes, both directions (0: none).
	Bytes uint64
	// Hours and Days are the rules' time window in the policy's time zone;
	// none of either means any time.
	Hours []config.TimeRange
	Days  config.Weekdays
	// HasSize bounds each packet's IP length to [SizeMin, SizeMax].
	HasSize          bool
	SizeMin, SizeMax uint16
	// NewFlows per NewFlowPer is the rule's max_new_flows, for the
	// kernel to hold a device's repeated openings of a service the rule
	// already accepted for it to. A class with a rate belongs to one rule
	// (RateRule), as the engine's rate does: shared, two rules' openings
	// would count against one bucket.
	NewFlows   int
	NewFlowPer time.Duration
	RateRule   int32
}

// HasWindow reports whether the class is held to a time window.
func (c *Class) HasWindow() bool { return len(c.Hours) > 0 || c.Days != 0 }

// Checks reports whether the class has any kernel check.
func (c *Class) Checks() bool { return c.Bytes > 0 || c.HasWindow() || c.HasSize || c.NewFlows > 0 }

// classOf is the class of rule ri's kernel checks.
func classOf(r *Rule, ri int32) Class {
	c := Class{Bytes: r.MaxFlow, Hours: r.Hours, Days: r.Days, HasSize: r.HasSize, SizeMin: r.SizeMin, SizeMax: r.SizeMax, RateRule: None}
	if r.NewFlows > 0 {
		c.NewFlows, c.NewFlowPer, c.RateRule = r.NewFlows, r.NewFlowPer, ri
	}
	return c
}

// key identifies a class's checks, for rules to share it.
func (c *Class) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%d|%v|%d-%d|%d/%v@%d|", c.Bytes, c.Days, c.HasSize, c.SizeMin, c.SizeMax, c.NewFlows, c.NewFlowPer, c.RateRule)
	for _, h := range c.Hours {
		fmt.Fprintf(&b, "%d-%d,", h.Start, h.End)
	}
	return b.String()
}

// classify gives each rule with kernel checks its class, shared by the
// rules whose checks are the same.
func (p *Policy) classify() {
	p.Classes = []Class{{RateRule: None}}
	index := map[string]uint16{}
	for i := range p.Rules {
		r := &p.Rules[i]
		c := classOf(r, int32(i))
		if !c.Checks() {
			continue
		}
		k := c.key()
		id, ok := index[k]
		if !ok {
			id = uint16(len(p.Classes))
			index[k] = id
			p.Classes = append(p.Classes, c)
		}
		r.Class = id
	}
}
