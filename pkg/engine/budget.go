package engine

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/policy"
)

// budgetTable keeps per-device counters for rules with an upper byte
// budget or a new-flow rate: one slot per (rule, owner), where the owner is
// the device as far as the engine can tell (ownerOf).
//
// It is bounded against a source that multiplies itself: the policy's own
// devices always get their slot (there are as many as the policy has
// devices and rules, whatever the traffic), while other owners share limit
// slots. A slot whose byte period has ended, whose rate has recovered and
// that nothing used for budgetIdle is reclaimed (by Sweep, and on demand
// when the table is full), so the table never stays full. When it is full
// of live slots, a new owner shares its rule's one overflow budget: a full
// table never means "not counted", nor does it lock out the policy's
// devices.
type budgetTable struct {
	mu    sync.Mutex
	rules []policy.Rule
	index map[budgetKey]int32
	slots []budget
	free  []int32 // reclaimed slots, reused before the table grows
	// others counts the live slots of owners that are no policy device;
	// limit bounds it.
	others, limit int
	// hand is where the next search for an idle slot starts, so that a
	// full table is searched a little at a time, not whole per flow.
	hand int
}

// budgetIdle is how long a slot whose period has ended and whose rate has
// recovered stays unused before it is reclaimed. Forgetting such a slot
// loses nothing its owner could use: a fresh slot starts with the same
// empty period and full rate.
const budgetIdle = int64(5 * time.Minute)

// reclaimScan is how many slots a full table looks at for an idle one
// before a new owner is sent to the overflow budget.
const reclaimScan = 32

// Budget handles (flow.State.Budget) carry the slot's index and its reuse
// count, so that a flow still holding a reclaimed slot's handle charges
// nothing to the slot's next owner.
const (
	handleIndexBits = 20
	handleIndexMask = 1<<handleIndexBits - 1
	handleEpochMask = 1<<(31-handleIndexBits) - 1
	// maxBudgetSlots bounds the table's slots, overflow and devices
	// included, to what a handle can index.
	maxBudgetSlots = 1 << handleIndexBits
)

// budgetOwner is who a budget belongs to: a pointer-free key.
type budgetOwner struct {
	kind uint8
	id   [16]byte
}

const (
	ownerNone   uint8 = iota
	ownerDevice       // a device of the policy, by index
	ownerAddr4        // an IPv4 source of no known device
	ownerNet6         // the /64 of an IPv6 source of no known device
	ownerShared       // every owner that found the table full
)

// ownerOf is the budget owner of a flow opened by device dev (policy.None
// when unknown) from address a.
//
// A known device is its own owner, whatever address it uses: rotating IPv6
// privacy addresses, or several addresses, gains it nothing. A source the
// policy does not know (a rule whose from is a zone or a network) is owned
// by its IPv4 address, or by its IPv6 /64: a host picks its privacy and
// temporary addresses inside its link's /64 at will, but it cannot pick
// another /64 on that link, and the kernel's reverse-path check drops
// addresses of no network behind its interface. The frame's MAC is not
// used: the bytes of fast-pathed flows come from conntrack, which knows no
// MAC, and a budget counted under two keys would count half.
func ownerOf(dev int32, a netip.Addr) budgetOwner {
	var o budgetOwner
	a = a.Unmap()
	switch {
	case dev != policy.None:
		o.kind = ownerDevice
		binary.BigEndian.PutUint32(o.id[:], uint32(dev))
	case a.Is4():
		o.kind = ownerAddr4
		b := a.As4()
		copy(o.id[:], b[:])
	case a.Is6():
		o.kind = ownerNet6
		b := a.As16()
		copy(o.id[:8], b[:8])
	}
	return o
}

type budgetKey struct {
	rule  int32
	owner budgetOwner
}

type budget struct {
	key         budgetKey
	live        bool
	epoch       uint32
	windowStart int64  // start of the current byte-budget period
	bytes       uint64 // bytes in the current period
	tat         int64  // theoretical arrival time of the rate limiter (GCRA)
	last        int64  // last time a flow was admitted or bytes charged
	alerted     bool   // a volume event was raised this period
	fan         fanOut // the peers and ports of the rule's fan-out bound
}

func newBudgetTable(limit int, rules []policy.Rule) *budgetTable {
	return &budgetTable{index: map[budgetKey]int32{}, limit: limit, rules: rules}
}

// admit decides whether a flow of owner o may go on under rule r: its
// device must be within its byte budget and, for a new flow, within the
// new-flow rate (existing flows, judged again after a reload, do not count
// as new). It returns ReasonNone to admit. A dry judgement (how has
// dryRun) changes nothing.
func (t *budgetTable) admit(ri int32, r *policy.Rule, o budgetOwner, now int64, how judging) (Reason, EventType) {
	dry, existing := how&dryRun != 0, how&existingFlow != 0
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.find(ri, o)
	if !ok {
		if dry {
			return ReasonNone, 0
		}
		if i = t.open(ri, o, now); i < 0 {
			return ReasonStateFull, EventDeny
		}
	}
	b := &t.slots[i]
	if dry {
		// A dry judgement reads a copy: not even the roll into a new
		// period is its to make (a query may be about any time, and
		// rolling early would forget the bytes of the period in force).
		copied := *b
		b = &copied
	} else {
		b.last = now
	}
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

// find returns the slot of (rule, o): its own, or the rule's overflow
// budget when o was sent there because the table was full.
func (t *budgetTable) find(ri int32, o budgetOwner) (int32, bool) {
	if i, ok := t.index[budgetKey{ri, o}]; ok {
		return i, true
	}
	return -1, false
}

// open gives (rule, o) a slot: a free one, a new one, an idle one
// reclaimed, or when the table is full of live slots the rule's overflow
// budget. It returns -1 only when no handle can index another slot.
func (t *budgetTable) open(ri int32, o budgetOwner, now int64) int32 {
	k := budgetKey{ri, o}
	if o.kind != ownerDevice && t.others >= t.limit && !t.reclaimOne(now) {
		// Full of live slots: share the rule's overflow budget. Its
		// owners are counted together; none goes uncounted.
		k = budgetKey{ri, budgetOwner{kind: ownerShared}}
		if i, ok := t.index[k]; ok {
			return i
		}
	}
	var i int32
	switch {
	case len(t.free) > 0:
		i = t.free[len(t.free)-1]
		t.free = t.free[:len(t.free)-1]
	case len(t.slots) < maxBudgetSlots:
		i = int32(len(t.slots))
		t.slots = append(t.slots, budget{})
	default:
		return -1
	}
	b := &t.slots[i]
	fan := b.fan // a reused slot keeps its lists' capacity
	fan.reset()
	*b = budget{key: k, live: true, epoch: b.epoch + 1, windowStart: now, tat: now, last: now, fan: fan}
	t.index[k] = i
	if countsAsOther(k.owner) {
		t.others++
	}
	return i
}

// countsAsOther reports whether a slot of o counts against the limit: the
// policy's devices and the overflow budgets are bounded by the policy.
func countsAsOther(o budgetOwner) bool {
	return o.kind != ownerDevice && o.kind != ownerShared
}

// reclaimOne looks at the next few slots for an idle one of an owner that
// counts against the limit, and frees it.
func (t *budgetTable) reclaimOne(now int64) bool {
	for n := 0; n < reclaimScan && len(t.slots) > 0; n++ {
		t.hand = (t.hand + 1) % len(t.slots)
		if b := &t.slots[t.hand]; countsAsOther(b.key.owner) && t.idle(b, now) {
			t.release(int32(t.hand))
			return true
		}
	}
	return false
}

// reclaim frees every idle slot; Sweep calls it.
func (t *budgetTable) reclaim(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.slots {
		if t.idle(&t.slots[i], now) {
			t.release(int32(i))
		}
	}
}

// idle reports whether forgetting b loses nothing: its period has ended
// (so its bytes start again from zero), its rate has recovered, and
// nothing used it for budgetIdle.
func (t *budgetTable) idle(b *budget, now int64) bool {
	if !b.live || now-b.last < budgetIdle || b.tat > now {
		return false
	}
	r := &t.rules[b.key.rule]
	if r.FanWindow > 0 && now-b.last < int64(r.FanWindow) {
		return false // it still remembers peers its fan-out bound counts
	}
	return r.MaxDevice == 0 || r.MaxPer <= 0 || now-b.windowStart >= int64(r.MaxPer)
}

func (t *budgetTable) release(i int32) {
	b := &t.slots[i]
	delete(t.index, b.key)
	if countsAsOther(b.key.owner) {
		t.others--
	}
	b.live = false
	t.free = append(t.free, i)
}

// handle returns the handle of (rule, o)'s slot for a flow to keep, or -1.
func (t *budgetTable) handle(ri int32, o budgetOwner) int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.find(ri, o); ok {
		return t.handleOf(i)
	}
	if i, ok := t.index[budgetKey{ri, budgetOwner{kind: ownerShared}}]; ok && t.others >= t.limit {
		return t.handleOf(i)
	}
	return -1
}

func (t *budgetTable) handleOf(i int32) int32 {
	return int32(t.slots[i].epoch&handleEpochMask)<<handleIndexBits | i
}

// add counts bytes against the slot of handle h and reports whether the
// period's budget is now exceeded, and whether this is the first time this
// period. A handle whose slot was reclaimed since counts nothing.
func (t *budgetTable) add(h int32, r *policy.Rule, bytes uint64, now int64) (over, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := h & handleIndexMask
	if h < 0 || int(i) >= len(t.slots) {
		return false, false
	}
	b := &t.slots[i]
	if !b.live || int32(b.epoch&handleEpochMask) != h>>handleIndexBits {
		return false, false
	}
	b.last = now
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
// reload does not hand every device a fresh daily budget. A device's
// budget follows the device by name; one whose device is gone is dropped.
func (t *budgetTable) carryOver(old *budgetTable, oldPol, newPol *policy.Policy) {
	byName := make(map[string]int32, len(newPol.Rules))
	for i := range newPol.Rules {
		byName[newPol.Rules[i].Name] = int32(i)
	}
	devices := make(map[string]int32, len(newPol.Devices))
	for i := range newPol.Devices {
		devices[newPol.Devices[i].Name] = int32(i)
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, i := range old.index {
		ni, ok := byName[oldPol.Rules[k.rule].Name]
		if !ok || !sameBounds(&oldPol.Rules[k.rule], &newPol.Rules[ni]) {
			continue
		}
		o := k.owner
		if o.kind == ownerDevice {
			d, ok := devices[oldPol.Devices[binary.BigEndian.Uint32(o.id[:])].Name]
			if !ok {
				continue
			}
			o = ownerOf(d, netip.Addr{})
		}
		if countsAsOther(o) && t.others >= t.limit || len(t.slots) >= maxBudgetSlots {
			continue
		}
		b := old.slots[i]
		b.key, b.epoch, b.fan = budgetKey{ni, o}, 1, b.fan.clone()
		t.index[b.key] = int32(len(t.slots))
		t.slots = append(t.slots, b)
		if countsAsOther(o) {
			t.others++
		}
	}
}

func sameBounds(a, b *policy.Rule) bool {
	return a.MaxDevice == b.MaxDevice && a.MaxPer == b.MaxPer && a.NewFlows == b.NewFlows && a.NewFlowPer == b.NewFlowPer &&
		a.FanPeers == b.FanPeers && a.FanPorts == b.FanPorts && a.FanWindow == b.FanWindow
}
