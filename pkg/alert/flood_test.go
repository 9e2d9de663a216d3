package alert

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

// floodSrc is the i-th spoofed source address of a flood.
func floodSrc(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) }

// 1000 denials a second from distinct addresses for 10 s, with the default
// budgets: a spoofed_address (crit) and a queue_overflow (err) raised
// meanwhile go out at once, every denial is counted in some alert, the
// warnings stay within their budget, and the operator is told once when
// warnings started being held back and once when that ended.
func TestLimiterFloodKeepsCritAndErr(t *testing.T) {
	l := NewLimiter(0, 0, 0)
	t0 := newClock().Now()
	var all []Alert
	spoofs := 0
	offer := func(a Alert, now time.Time) []Alert {
		out := l.Offer(nil, a, now)
		all = append(all, out...)
		return out
	}
	const floodMillis = 10000
	for i := range floodMillis {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		offer(denied("", floodSrc(i), 80, now), now)
		if i >= 2000 && i%10 == 0 {
			// plug1 keeps claiming the camera's address during the flood.
			spoofs++
			out := offer(Alert{Type: TypeSpoofedAddress, Severity: SeverityCritical, Time: now, Device: "plug1", Src: addr("10.77.0.11")}, now)
			if i == 2000 && (len(out) != 1 || out[0].Type != TypeSpoofedAddress || out[0].Count != 1 || out[0].Summary) {
				t.Fatalf("spoofed_address during a flood of warnings: got %+v, want it sent at once", out)
			}
		}
		if i == 3000 {
			out := offer(Alert{Type: TypeQueueOverflow, Severity: SeverityError, Time: now, Reason: "queue 4200"}, now)
			if len(out) != 1 || out[0].Type != TypeQueueOverflow {
				t.Fatalf("queue_overflow during a flood of warnings: got %+v, want it sent at once", out)
			}
		}
		if i%1000 == 999 {
			all = append(all, l.Tick(nil, now)...)
		}
	}
	end := t0.Add(floodMillis * time.Millisecond)
	for s := range 180 {
		all = append(all, l.Tick(nil, end.Add(time.Duration(s)*time.Second))...)
	}

	counts := map[Type]int{}
	var suppressed, resumed []Alert
	aggregates, warnings := 0, 0
	for _, a := range all {
		counts[a.Type] += a.Count
		switch {
		case a.Type == TypeAlertsSuppressed:
			suppressed = append(suppressed, a)
		case a.Type == TypeAlertsResumed:
			resumed = append(resumed, a)
		case a.Summary && a.Device == "" && !a.Src.IsValid():
			aggregates++
		}
		if a.Severity == SeverityWarning {
			warnings++
		}
	}
	if counts[TypeFlowDenied] != floodMillis {
		t.Errorf("flow_denied counts add up to %d, want %d: events were lost", counts[TypeFlowDenied], floodMillis)
	}
	if counts[TypeSpoofedAddress] != spoofs {
		t.Errorf("spoofed_address counts add up to %d, want %d", counts[TypeSpoofedAddress], spoofs)
	}
	if aggregates == 0 {
		t.Error("no aggregate: with 10 000 distinct sources over a 4096-key table some summaries must have been folded")
	}
	// 190 s at 100 a second, plus one second's burst.
	if limit := 191 * DefaultRate; warnings > limit {
		t.Errorf("%d warnings let out, over the budget of %d", warnings, limit)
	}
	if len(suppressed) != 1 || !strings.Contains(suppressed[0].Reason, "severity warning") {
		t.Fatalf("alerts_suppressed: %+v, want one, for warnings", suppressed)
	}
	if len(resumed) != 1 || !strings.Contains(resumed[0].Reason, "severity warning") || !resumed[0].Time.After(end) {
		t.Fatalf("alerts_resumed: %+v, want one, for warnings, after the flood", resumed)
	}
	t.Logf("%d alerts for %d events; %s; %s", len(all), floodMillis+spoofs+1, suppressed[0].Reason, resumed[0].Reason)
}

// A key evicted while its class's budget is spent: its pending summary
// goes into the aggregate, which Tick sends when the budget allows.
func TestLimiterEvictedSummaryIsAggregated(t *testing.T) {
	l := NewLimiter(time.Minute, 2, 1)
	now := newClock().Now()
	var all []Alert
	all = l.Offer(all, denied("dev-0", netip.Addr{}, 1, now), now) // passes, the last token
	all = l.Offer(all, denied("dev-0", netip.Addr{}, 2, now), now) // folded: a pending summary of 1
	all = l.Offer(all, denied("dev-1", netip.Addr{}, 1, now), now) // held back: pending 1
	all = l.Offer(all, denied("dev-2", netip.Addr{}, 1, now), now) // evicts dev-0, held back
	all = l.Offer(all, denied("dev-3", netip.Addr{}, 1, now), now) // evicts dev-1, held back
	if l.Aggregated() != 2 {
		t.Fatalf("aggregated %d summaries, want 2 (dev-0's and dev-1's)", l.Aggregated())
	}
	for s := 1; s <= 5; s++ {
		all = l.Tick(all, now.Add(time.Duration(s)*time.Second))
	}
	total := 0
	var agg *Alert
	for i, a := range all {
		if a.Type != TypeFlowDenied {
			continue
		}
		total += a.Count
		if a.Device == "" {
			agg = &all[i]
		}
	}
	if agg == nil || agg.Count != 2 || !agg.Summary || !strings.Contains(agg.Reason, "summaries of 2 devices") {
		t.Fatalf("aggregate %+v, want a summary of 2 events from 2 devices", agg)
	}
	// dev-2 and dev-3 still hold theirs, for their window's end.
	if total != 3 {
		t.Fatalf("sent counts add up to %d before the window ends, want 3 (dev-0's first and the aggregate of 2)", total)
	}
	all = l.Flush(all[:0], now.Add(6*time.Second))
	if countByType(all)[TypeFlowDenied] != 2 || countByType(all)[TypeAlertsResumed] != 1 {
		t.Fatalf("Flush: %+v, want dev-2's and dev-3's summaries and the end of the suppression", all)
	}
}

// Through the Dispatcher: engine events of a flood and a spoof, the spoof
// reaches the sink.
func TestDispatcherFloodStillSendsSpoof(t *testing.T) {
	c := newClock()
	rec := &recorder{}
	d := New(Options{Now: c.Now}, rec.sink())
	for i := range 3000 {
		d.Emit(engine.Event{Type: engine.EventDeny, Time: c.Now().UnixNano(), Layer: engine.LayerSegment, Reason: engine.ReasonNoAllowRule,
			Src: floodSrc(i), Dst: addr("10.88.0.10"), Proto: 6, SPort: 40000, DPort: 22})
		if i == 1500 {
			d.Emit(engine.Event{Type: engine.EventSpoof, Time: c.Now().UnixNano(), Device: "plug1", Src: addr("10.88.0.10"), Dst: addr("10.77.0.11"), Proto: 6, DPort: 80})
		}
		if i%500 == 499 {
			d.call(func() {})
			c.Advance(500 * time.Millisecond)
		}
	}
	d.call(func() {})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var spoof, held bool
	for _, a := range rec.got() {
		spoof = spoof || a.Type == TypeSpoofedAddress && a.Count == 1 && !a.Summary
		held = held || a.Type == TypeAlertsSuppressed
	}
	if !spoof || !held {
		t.Fatalf("spoofed_address sent: %v, alerts_suppressed sent: %v; want both", spoof, held)
	}
}

// A flood that fills the event queue before the dispatcher's goroutine
// drains it does not crowd out a spoof: events whose alerts are err or
// worse have a queue of their own.
func TestEmitKeepsRoomForSpoof(t *testing.T) {
	c := newClock()
	rec := &recorder{}
	d := New(Options{Now: c.Now, Buffer: 16}, rec.sink())
	release, busy := make(chan struct{}), make(chan struct{})
	go d.call(func() { close(busy); <-release }) // the goroutine is busy
	<-busy
	for i := range 100 {
		d.Emit(engine.Event{Type: engine.EventDeny, Time: c.Now().UnixNano(), Layer: engine.LayerSegment, Reason: engine.ReasonNoAllowRule,
			Src: floodSrc(i), Dst: addr("10.88.0.10"), Proto: 6, SPort: 40000, DPort: 22})
	}
	d.Emit(engine.Event{Type: engine.EventSpoof, Time: c.Now().UnixNano(), Device: "plug1", Src: addr("10.88.0.10"), Dst: addr("10.77.0.11"), Proto: 6, DPort: 80})
	close(release)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.EventsDropped != 84 {
		t.Errorf("%d events dropped, want the 84 denials that did not fit", st.EventsDropped)
	}
	for _, a := range rec.got() {
		if a.Type == TypeSpoofedAddress {
			return
		}
	}
	t.Fatalf("spoofed_address lost behind a full queue of denials: %s", dump(rec.got()))
}
