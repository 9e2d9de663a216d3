package nft

import (
	"slices"
	"time"
)

// Class is the kernel checks of one pico class: what a fast-pathed flow
// marked with the class is held to, packet by packet, without leaving the
// kernel.
//
// A new flow has no class in the kernel: its class is the verdict on its
// first packet. The kernel can still hold a class's new-flow rate on the
// openings it can classify without userspace: see NewFlows.
type Class struct {
	// Bytes bounds a flow's bytes, both directions, from conntrack's
	// counters: the packet past it is queued again, Tripped, for
	// userspace to cut the flow and raise the event. 0: no bound.
	Bytes uint64
	// HasWindow holds the class to Open: a packet at any other time is
	// dropped by the kernel. The daemon's periodic pass then cuts the flow
	// and raises the event; the kernel's drop is what makes the window
	// hold at its boundary rather than up to a pass later.
	HasWindow bool
	// Open is when the window is open, as spans of the UTC week
	// (WeekWindow builds them from the policy's local hours and days).
	Open []WeekSpan
	// HasSize bounds each packet's IP length to [SizeMin, SizeMax]. The
	// kernel checks the upper bound on UDP, ICMP and every protocol but
	// TCP: a forwarded TCP packet may be several on the wire merged by GRO
	// (or not yet split by GSO), so on TCP only the lower bound holds, as
	// in the engine.
	HasSize          bool
	SizeMin, SizeMax uint16
	// NewFlows per NewFlowPer bounds a source's repeated openings of a
	// service the class was accepted for (classrate_linux.go): once a
	// flow of the class is accepted, a new flow from the same source
	// address to the same peer, protocol (TCP or UDP) and port within a
	// minute is counted against the source's budget in the kernel, and
	// over it dropped there without reaching the queue. Other new flows
	// reach userspace as before, which judges the rate on all of them. 0:
	// none.
	NewFlows   uint32
	NewFlowPer time.Duration
}

// fastPathChecks reports whether the class checks its fast-pathed flows'
// packets (a rate checks new flows only).
func (c *Class) fastPathChecks() bool { return c.Bytes > 0 || c.HasWindow || c.HasSize }

// Seconds in a day and a week.
const (
	daySeconds  = 24 * 60 * 60
	weekSeconds = 7 * daySeconds
)

// WeekSpan is a span [From, To) of the UTC week, in seconds since Thursday
// 00:00 UTC: the weekday of the unix epoch, so that a time's place in the
// week is its unix time modulo a week.
type WeekSpan struct {
	From, To uint32
}

// DayRange is a daily window in minutes since local midnight, [Start,
// End); End <= Start wraps past midnight, and that part belongs to the day
// the window started on.
type DayRange struct {
	Start, End int
}

// WeekWindow folds a window written in local time (ranges on days, a bit
// set of time.Weekday; no ranges means all day, no days every day) onto
// the UTC week, as it holds for the week from now on: each point of the
// UTC week is the one instant in [now, now+7 days) it stands for, read on
// the local clock of that instant. A daylight saving change within the
// week is thus exact (the hour that is skipped never opens, the hour that
// repeats is judged twice, as the engine judges it); the ruleset only
// needs building again once the fold changes (WeekWindow at a later now
// differs), which happens as the week's horizon passes a change and as now
// does.
func WeekWindow(ranges []DayRange, days uint8, loc *time.Location, now time.Time) []WeekSpan {
	if len(ranges) == 0 {
		ranges = []DayRange{{0, 24 * 60}}
	}
	var spans []WeekSpan
	end := now.Unix() + weekSeconds
	// Piece by piece of constant offset from UTC: inside one, the local
	// clock is UTC plus the offset, and local days are whole multiples of
	// daySeconds of it.
	for from := now.Unix(); from < end; {
		t := time.Unix(from, 0).In(loc)
		_, offset := t.Zone()
		to := end
		if _, next := t.ZoneBounds(); !next.IsZero() && next.Unix() < end {
			to = next.Unix()
		}
		off := int64(offset)
		for day := floorDiv(from+off, daySeconds) - 1; day*daySeconds <= to+off; day++ {
			if weekday := mod(4+day, 7); days != 0 && days&(1<<uint(weekday)) == 0 {
				continue
			}
			for _, r := range ranges {
				a := day*daySeconds + int64(r.Start)*60
				b := day*daySeconds + int64(r.End)*60
				if r.End <= r.Start {
					b += daySeconds
				}
				// Local clock to UTC, inside this piece only.
				if a, b = max(a-off, from), min(b-off, to); a < b {
					spans = appendFolded(spans, a, b)
				}
			}
		}
		from = to
	}
	return mergeSpans(spans)
}

// appendFolded adds the unix-time span [from, to), at most a week long,
// as spans of the week.
func appendFolded(spans []WeekSpan, from, to int64) []WeekSpan {
	a := uint32(mod(from, weekSeconds))
	b := a + uint32(to-from)
	if b <= weekSeconds {
		return append(spans, WeekSpan{a, b})
	}
	return append(spans, WeekSpan{a, weekSeconds}, WeekSpan{0, b - weekSeconds})
}

func mod(a, n int64) int64 { return (a%n + n) % n }

// mergeSpans sorts spans and joins those that touch or overlap.
func mergeSpans(spans []WeekSpan) []WeekSpan {
	slices.SortFunc(spans, func(a, b WeekSpan) int { return int(a.From) - int(b.From) })
	var out []WeekSpan
	for _, s := range spans {
		if n := len(out); n > 0 && s.From <= out[n-1].To {
			out[n-1].To = max(out[n-1].To, s.To)
			continue
		}
		out = append(out, s)
	}
	return out
}

// closed returns the complement of the merged spans open in the week.
func closed(open []WeekSpan) []WeekSpan {
	var out []WeekSpan
	at := uint32(0)
	for _, s := range open {
		if s.From > at {
			out = append(out, WeekSpan{at, s.From})
		}
		at = max(at, s.To)
	}
	if at < weekSeconds {
		out = append(out, WeekSpan{at, weekSeconds})
	}
	return out
}

// hourPiece is a span the kernel can match: `meta day == Day meta hour >=
// From meta hour < To`, From and To in seconds of the UTC day (To may be
// daySeconds: to the end of the day).
type hourPiece struct {
	Day      uint8
	From, To uint32
}

// kernelPieces cuts the week spans into pieces the kernel matches with
// `meta day` and `meta hour`.
//
// The kernel (net/netfilter/nft_meta.c) gives `meta hour` as seconds of
// the UTC day, but `meta day` as the weekday in the kernel's own time zone
// (sys_tz, set by settimeofday; westOfUTC is its tz_minuteswest in
// seconds, 0 on most systems): the weekday flips at UTC midnight shifted
// by that offset. So the spans are cut at both, and each piece gets the
// weekday the kernel will report during it.
func kernelPieces(spans []WeekSpan, westOfUTC int64) []hourPiece {
	dayFlip := uint32(mod(westOfUTC, daySeconds))
	var out []hourPiece
	for _, s := range spans {
		for at := s.From; at < s.To; {
			dayStart := at / daySeconds * daySeconds
			next := min(s.To, dayStart+daySeconds)
			if flip := dayStart + dayFlip; flip > at && flip < next {
				next = flip
			}
			out = append(out, hourPiece{Day: kernelWeekday(at, westOfUTC), From: at - dayStart, To: next - dayStart})
			at = next
		}
	}
	return out
}

// kernelWeekday is the weekday (0 Sunday) the kernel's `meta day` gives at
// second at of the UTC week: nft_meta_weekday's (4 + days since the epoch
// in the kernel's time zone) % 7.
func kernelWeekday(at uint32, westOfUTC int64) uint8 {
	days := floorDiv(int64(at)-westOfUTC, daySeconds)
	return uint8(mod(4+days, 7))
}

func floorDiv(a, n int64) int64 {
	q := a / n
	if a%n != 0 && (a < 0) != (n < 0) {
		q--
	}
	return q
}
