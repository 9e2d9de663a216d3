package learn

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/nft"
)

// How long the captures must span before a bound that depends on time is
// proposed: an hour of traffic says little about a day's.
const (
	spanForDeviceBytes = time.Hour
	spanForHours       = 24 * time.Hour
	spanForDays        = 7 * 24 * time.Hour
)

// packetSizeSteps are the upper packet-size bounds proposed: rules whose
// packets are alike share a kernel class, and mark_mask holds few.
var packetSizeSteps = []int{128, 256, 512, 1024, 1500, 9000, 65535}

// ethernetMTU is the largest IP packet an Ethernet link carries without
// jumbo frames.
const ethernetMTU = 1500

// rules writes each subject's rules, with bounds from what was observed
// plus the margin, the most used first when the kernel's pico classes run
// short.
func (l *Learner) rules(subjects []subject) []ProposedRule {
	used := map[string]bool{}
	for _, r := range l.cfg.Allows {
		used[r.Name] = true
	}
	var out []ProposedRule
	for _, s := range subjects {
		for _, spec := range slices.Sorted(maps.Keys(s.rules)) {
			r := s.rules[spec]
			a := config.Allow{
				Name: unique(s.name+"-to-"+r.peer, used), From: s.endpoint, To: r.to,
				Services: sortedServices(r.services),
			}
			notes := l.bound(&a, &r.edge)
			out = append(out, ProposedRule{Allow: a, Flows: r.flows, Comment: l.evidence(s, r, notes)})
		}
	}
	l.fitClasses(out)
	return out
}

// bound sets a's pico bounds from e and says which bounds it left out.
func (l *Learner) bound(a *config.Allow, e *edge) (left []string) {
	m := l.opts.Margin
	if e.sizesUnknown {
		left = append(left, "packet_size, max_flow_bytes and max_device_bytes: learned from the daemon's record, which holds each flow's first packet only")
		l.boundRate(a, e, &left)
		l.boundTime(a, e, &left)
		return left
	}
	lo := max(20, int(math.Floor(float64(e.minSize)*(1-m)))/20*20)
	hi := int(math.Ceil(float64(e.maxSize) * (1 + m)))
	for _, s := range packetSizeSteps {
		if s >= hi {
			hi = s
			break
		}
	}
	if e.maxSize <= ethernetMTU && hi > ethernetMTU {
		// None was larger than an Ethernet frame holds: a larger one
		// would be a change of link, not of behaviour.
		hi = ethernetMTU
	}
	a.PacketSize = &config.SizeRange{Min: lo, Max: min(hi, 65535)}
	a.MaxFlowBytes = roundUp125(uint64(math.Ceil(float64(e.maxFlowBytes) * (1 + m))))
	l.boundRate(a, e, &left)
	span := l.covered
	if span >= spanForDeviceBytes {
		a.MaxDeviceBytes = &config.Budget{Bytes: roundUp125(uint64(math.Ceil(float64(e.maxHourPair) * (1 + m)))), Per: time.Hour}
	} else {
		left = append(left, fmt.Sprintf("max_device_bytes: the captures cover %v, under %v", span.Round(time.Second), spanForDeviceBytes))
	}
	l.boundTime(a, e, &left)
	return left
}

// boundRate sets the rule's new-flow rate from the most openings seen in
// a minute.
func (l *Learner) boundRate(a *config.Allow, e *edge, left *[]string) {
	if e.rateUnbounded {
		*left = append(*left, fmt.Sprintf("max_new_flows: more than %d new flows in a minute", rateWindowCap))
	} else if e.maxPerMinute > 0 {
		a.MaxNewFlows = config.Rate{Count: int(math.Ceil(float64(e.maxPerMinute) * (1 + l.opts.Margin))), Per: time.Minute}
	}
}

// boundTime sets the rule's hours and days when what was learned from
// covers a day (a week).
func (l *Learner) boundTime(a *config.Allow, e *edge, left *[]string) {
	span := l.covered
	if span >= spanForHours {
		a.Hours = hoursOf(e.hours)
	} else {
		*left = append(*left, fmt.Sprintf("hours: the captures cover %v, under %v", span.Round(time.Second), spanForHours))
	}
	if span >= spanForDays && e.days != 0x7f {
		a.Days = config.Weekdays(e.days)
	}
}

// roundUp125 rounds n up to 1, 2 or 5 times a power of ten, at least 1000:
// byte bounds that are alike share a kernel class.
func roundUp125(n uint64) int64 {
	for p := uint64(1000); ; p *= 10 {
		for _, f := range []uint64{1, 2, 5} {
			if f*p >= n {
				return int64(f * p)
			}
		}
		if p > math.MaxInt64/100 {
			return math.MaxInt64
		}
	}
}

// hoursOf turns the hours of the day with traffic, each widened by an
// hour on both sides, into daily windows; none when that is every hour.
func hoursOf(mask uint32) []config.TimeRange {
	wide := mask | mask<<1 | mask>>1 | (mask&1)<<23 | (mask>>23)&1
	wide &= 1<<24 - 1
	if wide == 1<<24-1 {
		return nil
	}
	var out []config.TimeRange
	// Start at an hour without traffic, so a window across midnight is
	// one window.
	start := bits.TrailingZeros32(^wide)
	for i := 0; i < 24; {
		h := (start + i) % 24
		if wide&(1<<h) == 0 {
			i++
			continue
		}
		j := i
		for j < 24 && wide&(1<<((start+j)%24)) != 0 {
			j++
		}
		out = append(out, config.TimeRange{Start: h * 60, End: (start + j) % 24 * 60})
		i = j
	}
	for i := range out {
		if out[i].End == 0 {
			out[i].End = 24 * 60
		}
	}
	return out
}

// fitClasses keeps the proposal within the pico classes mark_mask holds
// (`check` refuses more): each rule with a rate is a class of its own, and
// rules with the same size, byte and time bounds share one. The rules
// learned from the most flows keep theirs; the others lose the rate
// first, then their kernel-checked bounds, and say so.
func (l *Learner) fitClasses(rules []ProposedRule) {
	marks := nft.Marks{Mask: l.cfg.Daemon.MarkMask}
	if marks.Validate() != nil {
		marks = nft.DefaultMarks()
	}
	capacity, used := marks.MaxClasses(), len(l.base.Classes)
	order := make([]int, len(rules))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rules[b].Flows, rules[a].Flows) })
	shared := map[string]bool{}
	for _, i := range order {
		r := &rules[i]
		a := &r.Allow
		if a.MaxNewFlows.Count > 0 {
			if used < capacity {
				used++
				continue
			}
			a.MaxNewFlows = config.Rate{}
			r.Comment = append(r.Comment, fmt.Sprintf("left out: max_new_flows (mark_mask %#x holds %d pico classes, and rules learned from more flows took them)", marks.Mask, capacity))
		}
		k := kernelKey(a)
		if k == "" || shared[k] {
			continue
		}
		if used < capacity {
			shared[k] = true
			used++
			continue
		}
		a.PacketSize, a.MaxFlowBytes, a.Hours, a.Days = nil, 0, nil, 0
		r.Comment = append(r.Comment, fmt.Sprintf("left out: packet_size, max_flow_bytes and hours (mark_mask %#x holds %d pico classes, and rules learned from more flows took them)", marks.Mask, capacity))
	}
}

// kernelKey is what makes a rule's pico class, apart from a rate: the
// bounds the kernel checks on fast-pathed packets.
func kernelKey(a *config.Allow) string {
	if a.PacketSize == nil && a.MaxFlowBytes == 0 && len(a.Hours) == 0 && a.Days == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%d|", a.MaxFlowBytes, a.Days)
	if a.PacketSize != nil {
		fmt.Fprintf(&b, "%d-%d|", a.PacketSize.Min, a.PacketSize.Max)
	}
	for _, h := range a.Hours {
		fmt.Fprintf(&b, "%d-%d,", h.Start, h.End)
	}
	return b.String()
}
