package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/picoseg/picoseg/pkg/policy"
)

// budgetTable keeps per-device counters for rules with an upper byte
// budget or a new-flow rate: one slot per (rule, source address). It is
// bounded: when full, a flow that would need a new slot is refused rather
// than let through uncounted.
type budgetTable struct {
	mu    sync.Mutex
	index map[budgetKey]int32
	slots []budget
	limit int
}

type budgetKey struct {
	rule int32
	addr netip.Addr
}

type budget struct {
	windowStart int64  // start of the current byte-budget period
	bytes       uint64 // bytes in the current period
	tat         int64  // theoretical arrival time of the rate limiter (GCRA)
	alerted     bool   // a volume event was raised this period
}

func newBudgetTable(limit int) *budgetTable {
	return &budgetTable{index: map[budgetKey]int32{}, limit: limit}
}

// admit decides whether a flow from addr may go on under rule r: its
// device must be within its byte budget and, for a new flow, within the
// new-flow rate (existing flows, judged again after a reload, do not count
// as new). It returns ReasonNone to admit.
func (t *budgetTable) admit(ri int32, r *policy.Rule, addr netip.Addr, now int64, dry, existing bool) (Reason, EventType) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[budgetKey{ri, addr}]
	if !ok {
		if dry {
			return ReasonNone, 0
		}
		if len(t.slots) >= t.limit {
			return ReasonStateFull, EventDeny
		}
		i = int32(len(t.slots))
		t.slots = append(t.slots, budget{windowStart: now, tat: now})
		t.index[budgetKey{ri, addr}] = i
	}
	b := &t.slots[i]
	if r.MaxDevice > 0 {
		b.roll(now, int64(r.MaxPer))
		if b.bytes >= r.MaxDevice {
			return ReasonDeviceBytes, EventVolume
		}
	}
	if r.NewFlows > 0 && !existing {
		// GCRA: each flow costs one emission interval; up to NewFlows
		// flows may come at once, then one per interval.
		interval := int64(r.NewFlowPer) / int64(r.NewFlows)
		tolerance := int64(r.NewFlowPer) - interval
		tat := max(b.tat, now)
		if tat-now > tolerance {
			return ReasonNewFlowRate, EventRate
		}
		if !dry {
			b.tat = tat + interval
		}
	}
	return ReasonNone, 0
}

// slot returns the slot of (rule, addr), or -1.
func (t *budgetTable) slot(ri int32, addr netip.Addr) int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[budgetKey{ri, addr}]; ok {
		return i
	}
	return -1
}

// add counts bytes against slot i and reports whether the period's budget
// is now exceeded, and whether this is the first time this period.
func (t *budgetTable) add(i int32, r *policy.Rule, bytes uint64, now int64) (over, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := &t.slots[i]
	b.roll(now, int64(r.MaxPer))
	b.bytes += bytes
	if b.bytes <= r.MaxDevice {
		return false, false
	}
	first = !b.alerted
	b.alerted = true
	return true, first
}

func (b *budget) roll(now, per int64) {
	if per > 0 && now-b.windowStart >= per {
		b.windowStart += (now - b.windowStart) / per * per
		b.bytes = 0
		b.alerted = false
	}
}

// minCounter accumulates a watched device's bytes for a rule's lower
// volume bound.
type minCounter struct {
	device      int32
	windowStart atomic.Int64
	bytes       atomic.Uint64
}

// minWatch holds the lower-bound counters of one rule: looked up by
// device on the packet path, walked in the policy's device order by Sweep
// so that the events it raises come out in the same order every run.
type minWatch struct {
	byDevice map[int32]*minCounter
	ordered  []*minCounter
}

// carryOver copies into t the budgets of old whose rule is still in the
// new policy under the same name and with the same bounds, so that a
// reload does not hand every device a fresh daily budget.
func (t *budgetTable) carryOver(old *budgetTable, oldRules, newRules []policy.Rule) {
	byName := make(map[string]int32, len(newRules))
	for i := range newRules {
		byName[newRules[i].Name] = int32(i)
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, i := range old.index {
		ni, ok := byName[oldRules[k.rule].Name]
		if !ok || !sameBounds(&oldRules[k.rule], &newRules[ni]) || len(t.slots) >= t.limit {
			continue
		}
		t.index[budgetKey{ni, k.addr}] = int32(len(t.slots))
		t.slots = append(t.slots, old.slots[i])
	}
}

func sameBounds(a, b *policy.Rule) bool {
	return a.MaxDevice == b.MaxDevice && a.MaxPer == b.MaxPer && a.NewFlows == b.NewFlows && a.NewFlowPer == b.NewFlowPer
}
