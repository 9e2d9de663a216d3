package alert

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func denied(device string, src netip.Addr, port uint16, at time.Time) Alert {
	return Alert{Type: TypeFlowDenied, Severity: SeverityWarning, Time: at, Device: device, Src: src,
		Dst: addr("10.0.1.1"), Proto: "tcp", DPort: port}
}

func TestLimiterFoldsAFloodIntoOneSummary(t *testing.T) {
	l := NewLimiter(time.Minute, 0, -1)
	t0 := newClock().Now()
	var out []Alert
	for i := range 10000 {
		now := t0.Add(time.Duration(i) * time.Millisecond) // 10 s of scanning
		out = l.Offer(out, denied("camera-1", addr("10.0.0.5"), uint16(i), now), now)
	}
	if len(out) != 1 || out[0].Count != 1 || out[0].Summary || out[0].DPort != 0 {
		t.Fatalf("during the window got %+v, want the first event alone with Count 1", out)
	}
	out = l.Tick(out[:0], t0.Add(59*time.Second))
	if len(out) != 0 {
		t.Fatalf("Tick before the window ended emitted %+v", out)
	}
	out = l.Tick(out[:0], t0.Add(61*time.Second))
	if len(out) != 1 || out[0].Count != 9999 || !out[0].Summary || out[0].DPort != 9999 {
		t.Fatalf("after the window got %+v, want one summary with Count 9999 carrying the last event", out)
	}
	// Quiet for a whole further window: the key is forgotten, and the
	// next event is news again.
	out = l.Tick(out[:0], t0.Add(122*time.Second))
	if len(out) != 0 || l.Keys() != 0 {
		t.Fatalf("idle key: out %+v, %d keys", out, l.Keys())
	}
	now := t0.Add(130 * time.Second)
	out = l.Offer(out[:0], denied("camera-1", addr("10.0.0.5"), 1, now), now)
	if len(out) != 1 || out[0].Count != 1 || out[0].Summary {
		t.Fatalf("after a quiet window got %+v, want the event at once", out)
	}
}

func TestLimiterSummaryOnNextEvent(t *testing.T) {
	l := NewLimiter(time.Minute, 0, -1)
	t0 := newClock().Now()
	var out []Alert
	for i := range 5 {
		out = l.Offer(out, denied("plug", netip.Addr{}, 80, t0), t0.Add(time.Duration(i)*time.Second))
	}
	// No Tick: the first event after the window carries the summary out
	// and opens the next one.
	out = l.Offer(out[:0], denied("plug", netip.Addr{}, 80, t0), t0.Add(61*time.Second))
	if len(out) != 1 || out[0].Count != 4 || !out[0].Summary {
		t.Fatalf("got %+v, want a summary of 4", out)
	}
	out = l.Flush(out[:0], t0.Add(62*time.Second))
	if len(out) != 1 || out[0].Count != 1 {
		t.Fatalf("Flush got %+v, want the event that opened the next window", out)
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l := NewLimiter(time.Minute, 0, -1)
	now := newClock().Now()
	var out []Alert
	out = l.Offer(out, denied("camera-1", addr("10.0.0.5"), 1, now), now)
	out = l.Offer(out, denied("camera-2", addr("10.0.0.6"), 1, now), now)
	// Unknown devices are keyed by source address.
	out = l.Offer(out, denied("", addr("10.0.0.7"), 1, now), now)
	out = l.Offer(out, denied("", addr("10.0.0.8"), 1, now), now)
	// Another type for the same device is another key.
	s := denied("camera-1", addr("10.0.0.5"), 1, now)
	s.Type = TypePossibleScan
	out = l.Offer(out, s, now)
	if len(out) != 5 {
		t.Fatalf("got %d alerts, want 5 (one per key): %+v", len(out), out)
	}
	out = l.Offer(out[:0], denied("", addr("10.0.0.8"), 2, now), now)
	if len(out) != 0 {
		t.Fatalf("a repeat was not folded: %+v", out)
	}
}

func TestLimiterKeyCap(t *testing.T) {
	l := NewLimiter(time.Minute, 3, -1)
	now := newClock().Now()
	var out []Alert
	for i := range 3 {
		dev := fmt.Sprint("dev-", i)
		out = l.Offer(out, denied(dev, netip.Addr{}, 1, now), now)
		out = l.Offer(out, denied(dev, netip.Addr{}, 2, now), now) // pending summary of 1
	}
	out = l.Offer(out[:0], denied("dev-1", netip.Addr{}, 3, now), now) // dev-0 is now the oldest
	out = l.Offer(out, denied("dev-3", netip.Addr{}, 1, now), now)
	if l.Keys() != 3 || l.Evicted() != 1 {
		t.Fatalf("%d keys, %d evicted; want 3 and 1", l.Keys(), l.Evicted())
	}
	// dev-0's pending count is not lost with its key.
	if len(out) != 2 || out[0].Device != "dev-0" || out[0].Count != 1 || !out[0].Summary || out[1].Device != "dev-3" {
		t.Fatalf("got %+v, want dev-0's summary then dev-3's first alert", out)
	}
	for i := range 10000 {
		out = l.Offer(out[:0], denied("", netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1, now), now)
	}
	if l.Keys() != 3 {
		t.Fatalf("%d keys after a spoofed-source flood, want the cap 3", l.Keys())
	}
}

func TestLimiterBudget(t *testing.T) {
	l := NewLimiter(time.Minute, 0, 10)
	now := newClock().Now()
	var out []Alert
	for i := range 100 {
		out = l.Offer(out, denied(fmt.Sprint("dev-", i), netip.Addr{}, 1, now), now)
	}
	byType := countByType(out)
	if byType[TypeFlowDenied] != 10 || byType[TypeAlertsSuppressed] != 1 || len(out) != 11 || l.Suppressed() != 90 {
		t.Fatalf("%d alerts out (%v), %d suppressed; want 10 flow_denied, one alerts_suppressed, and 90 suppressed", len(out), byType, l.Suppressed())
	}
	// The suppressed events come back as summaries once there is room,
	// or in an aggregate, so no count is lost.
	total := 0
	for _, a := range out {
		if a.Type == TypeFlowDenied {
			total += a.Count
		}
	}
	for s := 1; s <= 20; s++ {
		out = l.Tick(out[:0], now.Add(time.Minute+time.Duration(s)*time.Second))
		if n := countByType(out)[TypeFlowDenied]; n > 10 {
			t.Fatalf("Tick let %d alerts out in one second, the budget is 10", n)
		}
		for _, a := range out {
			if a.Type == TypeFlowDenied {
				total += a.Count
			}
		}
	}
	if total != 100 {
		t.Fatalf("counts add up to %d, want 100", total)
	}
}

func countByType(as []Alert) map[Type]int {
	m := map[Type]int{}
	for _, a := range as {
		m[a.Type]++
	}
	return m
}

// Whatever the timing, the counts of everything let out add up to the
// number of events offered: folding loses nothing.
func TestLimiterCountsAddUp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 50 {
		l := NewLimiter(time.Duration(1+r.IntN(60))*time.Second, 0, 1+r.IntN(20))
		now := newClock().Now()
		var out []Alert
		total, n := 0, 1+r.IntN(5000)
		for range n {
			now = now.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
			out = l.Offer(out, denied(fmt.Sprint("dev-", r.IntN(8)), netip.Addr{}, 1, now), now)
			if r.IntN(50) == 0 {
				out = l.Tick(out, now)
			}
		}
		out = l.Flush(out, now)
		for _, a := range out {
			if a.Type == TypeFlowDenied {
				total += a.Count
			}
		}
		if total != n {
			t.Fatalf("run %d: counts add up to %d, want %d", run, total, n)
		}
		if l.Keys() != 0 {
			t.Fatalf("run %d: %d keys left after Flush", run, l.Keys())
		}
	}
}
