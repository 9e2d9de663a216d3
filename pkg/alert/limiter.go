package alert

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/picoseg/picoseg/internal/lru"
)

// Limiter folds repeated alerts into summaries and caps the alert rate, so
// that a scanning or misbehaving device produces a handful of alerts with
// counts instead of one line per packet, and so that a flood of one kind
// of alert can neither hide another nor lose its counts.
//
// Alerts are keyed by (type, device), where the device is the device name
// or, for traffic from no known device, the source address. Per key:
//
//   - the first alert passes at once, with Count 1;
//   - further alerts within Window of it are counted, not emitted;
//   - when the window has ended, one summary alert (Summary set, Count = the
//     number folded) is emitted, on the key's next alert or on Tick. While
//     alerts keep coming, that is one summary per window;
//   - a key idle for a whole window is forgotten, so its next alert passes
//     at once again.
//
// Each severity class (crit and worse, err, warning, notice and milder) has
// its own keys and its own token bucket of Rate alerts a second: a flood of
// flow_denied warnings from spoofed sources cannot spend the budget or
// evict the keys of a spoofed_address (crit) or a queue_overflow (err).
//
// Nothing is lost:
//
//   - an alert the budget holds back is counted into its key's next
//     summary, and Suppressed counts the refusal;
//   - a summary that cannot be sent when it is due (its class's budget is
//     spent), and the pending summary of a key evicted because the class
//     holds MaxKeys keys, are folded into one aggregate per type: a summary
//     without device or address whose Count is all the events folded in.
//     Tick sends it as soon as the budget allows.
//
// When a class's budget first holds an alert back, the limiter emits one
// alerts_suppressed alert for that class; when the class has had nothing
// held back for SuppressionQuiet, one alerts_resumed saying how many alerts
// were held back. These two bypass the budgets (there is at most one pair
// per class per episode, and an episode lasts at least SuppressionQuiet).
//
// A Limiter is not safe for concurrent use: the Dispatcher's goroutine owns
// one. Time is always passed in, so tests drive it without sleeping.
type Limiter struct {
	window  time.Duration
	classes [classCount]classState

	suppressed, folded, evicted, aggregated uint64
}

// class is a group of severities sharing one budget.
type class uint8

const (
	classCrit    class = iota // emerg, alert, crit
	classErr                  // err
	classWarning              // warning
	classNotice               // notice, info, debug
	classCount
)

// classOf returns the budget class of severity s.
func classOf(s Severity) class {
	switch {
	case s <= SeverityCritical:
		return classCrit
	case s == SeverityError:
		return classErr
	case s == SeverityWarning:
		return classWarning
	}
	return classNotice
}

// classNames name the classes in alerts_suppressed and alerts_resumed.
var classNames = [classCount]string{"crit", "err", "warning", "notice"}

// classState is one severity class's keys, budget, aggregates and
// suppression episode.
type classState struct {
	keys   *lru.Map[limitKey, limitState]
	bucket bucket
	agg    [typeCount]aggregate

	suppressing bool
	since       time.Time // the episode's first refusal
	lastRefused time.Time
	held        uint64 // refusals in the episode
}

type limitKey struct {
	typ    Type
	device string
	src    netip.Addr // only when device is ""
}

type limitState struct {
	start time.Time // start of the current window
	n     int       // events folded since the key's last alert
	last  Alert     // the latest folded alert, the summary's template
}

// aggregate is the summaries of one type that could not be sent on their
// own, folded together.
type aggregate struct {
	n    int   // events
	keys int   // summaries folded in
	last Alert // the latest, for type, severity and time
}

// Limiter defaults.
const (
	DefaultWindow  = 60 * time.Second
	DefaultMaxKeys = 4096
	// DefaultRate is each severity class's budget, alerts a second.
	DefaultRate = 100
	// SuppressionQuiet is how long a class must have nothing held back
	// before its suppression episode ends (alerts_resumed).
	SuppressionQuiet = 10 * time.Second
)

// NewLimiter returns a limiter. Zero values take the defaults (60 s, 4096
// keys per severity class, 100 alerts/s per severity class); a negative
// rate disables the budgets.
func NewLimiter(window time.Duration, maxKeys, rate int) *Limiter {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if rate == 0 {
		rate = DefaultRate
	}
	l := &Limiter{window: window}
	for i := range l.classes {
		l.classes[i].keys = lru.NewMap[limitKey, limitState](maxKeys)
		l.classes[i].bucket = bucket{rate: float64(rate)}
	}
	return l
}

func keyOf(a *Alert) limitKey {
	if a.Device != "" {
		return limitKey{typ: a.Type, device: a.Device}
	}
	return limitKey{typ: a.Type, src: a.Src}
}

// Offer hands the limiter one alert at time now and appends what it lets
// out to out: nothing, the alert itself (Count 1), the summary of the
// key's previous window or of a key it evicted, and alerts_suppressed when
// the alert's class runs out of budget.
func (l *Limiter) Offer(out []Alert, a Alert, now time.Time) []Alert {
	cl := classOf(a.Severity)
	c := &l.classes[cl]
	k := keyOf(&a)
	st := c.keys.Get(k)
	if st == nil {
		var ev *lru.Entry[limitKey, limitState]
		st, ev = c.keys.Add(k, limitState{start: now})
		if ev != nil {
			l.evicted++
			if ev.Value.n > 0 {
				// No later try for an evicted key: sent now, or into
				// the aggregate.
				out = l.summaryOrAggregate(out, cl, &ev.Value, now)
			}
		}
		return l.pass(out, cl, st, a, now)
	}
	if now.Sub(st.start) < l.window {
		l.fold(st, a)
		return out
	}
	if st.n == 0 {
		// Quiet for a whole window: this is news again.
		st.start = now
		return l.pass(out, cl, st, a, now)
	}
	out, ok := l.summary(out, cl, st, now)
	if ok {
		// The key is still busy: this event opens the next summary
		// rather than passing at once, so a steady stream costs one
		// alert a window.
		st.start = now
	}
	l.fold(st, a)
	return out
}

// Tick emits, class by class within each class's budget, the pending
// aggregates and the summaries of every window that has ended by now; a
// due summary the budget refuses goes into its type's aggregate. It
// forgets keys that were quiet for a whole window, and ends suppression
// episodes that have been quiet for SuppressionQuiet. Call it about once
// a second; without it a summary waits for its key's next alert.
func (l *Limiter) Tick(out []Alert, now time.Time) []Alert {
	for cl := range classCount {
		c := &l.classes[cl]
		for t := range c.agg {
			g := &c.agg[t]
			if g.n == 0 {
				continue
			}
			if c.bucket.allow(now) {
				out = append(out, aggregateOf(g))
				*g = aggregate{}
			}
		}
		c.keys.Each(func(e *lru.Entry[limitKey, limitState]) {
			st := &e.Value
			if now.Sub(st.start) < l.window {
				return
			}
			if st.n == 0 {
				c.keys.Delete(e.Key)
				return
			}
			out = l.summaryOrAggregate(out, cl, st, now)
			st.start = now
		})
		if c.suppressing && now.Sub(c.lastRefused) >= SuppressionQuiet {
			out = append(out, l.resumed(cl, now))
		}
	}
	return out
}

// Flush emits every pending summary and aggregate now, windows ended or
// not and ignoring the budgets (it is for shutdown, when counts must not
// be lost), ends every suppression episode, and forgets every key.
func (l *Limiter) Flush(out []Alert, now time.Time) []Alert {
	for cl := range classCount {
		c := &l.classes[cl]
		for t := range c.agg {
			if c.agg[t].n > 0 {
				out = append(out, aggregateOf(&c.agg[t]))
				c.agg[t] = aggregate{}
			}
		}
		c.keys.Each(func(e *lru.Entry[limitKey, limitState]) {
			if e.Value.n > 0 {
				out = append(out, summaryOf(&e.Value))
			}
			c.keys.Delete(e.Key)
		})
		if c.suppressing {
			out = append(out, l.resumed(cl, now))
		}
	}
	return out
}

// Suppressed is how many alerts a budget held back (each counted into its
// key's summary).
func (l *Limiter) Suppressed() uint64 { return l.suppressed }

// Folded is how many alerts were counted into summaries instead of being
// emitted on their own.
func (l *Limiter) Folded() uint64 { return l.folded }

// Evicted is how many keys were dropped to stay within the key cap.
func (l *Limiter) Evicted() uint64 { return l.evicted }

// Aggregated is how many summaries were folded into aggregates.
func (l *Limiter) Aggregated() uint64 { return l.aggregated }

// Keys is the number of keys currently tracked, over all classes.
func (l *Limiter) Keys() int {
	n := 0
	for i := range l.classes {
		n += l.classes[i].keys.Len()
	}
	return n
}

func (l *Limiter) pass(out []Alert, cl class, st *limitState, a Alert, now time.Time) []Alert {
	if !l.classes[cl].bucket.allow(now) {
		l.fold(st, a)
		return l.holdBack(out, cl, now)
	}
	a.Count, a.Summary = 1, false
	return append(out, a)
}

func (l *Limiter) fold(st *limitState, a Alert) {
	st.n++
	st.last = a
	l.folded++
}

// holdBack counts an alert class cl's budget held back (it was folded into its
// key's summary); the first of an episode emits alerts_suppressed. Only
// alerts offered count: a summary due when the budget is spent goes into
// an aggregate, which is already what the episode promises.
func (l *Limiter) holdBack(out []Alert, cl class, now time.Time) []Alert {
	c := &l.classes[cl]
	l.suppressed++
	c.held++
	c.lastRefused = now
	if c.suppressing {
		return out
	}
	c.suppressing, c.since = true, now
	return append(out, Alert{Type: TypeAlertsSuppressed, Severity: TypeAlertsSuppressed.Severity(), Time: now, Count: 1,
		Reason: "severity " + classNames[cl] + ": more than " + strconv.FormatFloat(c.bucket.rate, 'f', -1, 64) +
			" a second; what is held back is counted in summaries"})
}

// resumed ends class cl's suppression episode.
func (l *Limiter) resumed(cl class, now time.Time) Alert {
	c := &l.classes[cl]
	a := Alert{Type: TypeAlertsResumed, Severity: TypeAlertsResumed.Severity(), Time: now, Count: 1,
		Reason: "severity " + classNames[cl] + ": " + strconv.FormatUint(c.held, 10) + " held back over " +
			c.lastRefused.Sub(c.since).Round(time.Second).String() + ", all counted in summaries"}
	c.suppressing, c.held = false, 0
	return a
}

// summary emits st's summary if class cl's budget allows and then resets
// its count; otherwise the count is kept for a later try.
func (l *Limiter) summary(out []Alert, cl class, st *limitState, now time.Time) ([]Alert, bool) {
	if !l.classes[cl].bucket.allow(now) {
		return out, false
	}
	out = append(out, summaryOf(st))
	st.n = 0
	st.last = Alert{}
	return out, true
}

// summaryOrAggregate emits st's summary if the budget allows, and folds it
// into its type's aggregate otherwise; either way st's count is taken.
func (l *Limiter) summaryOrAggregate(out []Alert, cl class, st *limitState, now time.Time) []Alert {
	out, ok := l.summary(out, cl, st, now)
	if ok {
		return out
	}
	g := &l.classes[cl].agg[st.last.Type]
	g.n += st.n
	g.keys++
	g.last = st.last
	st.n = 0
	st.last = Alert{}
	l.aggregated++
	return out
}

func summaryOf(st *limitState) Alert {
	s := st.last
	s.Count, s.Summary = st.n, true
	return s
}

// aggregateOf is the alert for an aggregate: the type, severity and time
// of its latest event, no device or addresses (they differ), and a reason
// saying how many summaries it stands for.
func aggregateOf(g *aggregate) Alert {
	return Alert{Type: g.last.Type, Severity: g.last.Severity, Time: g.last.Time, Count: g.n, Summary: true,
		Reason: "summaries of " + strconv.Itoa(g.keys) + " devices or addresses folded together (more than the alert budget or key table holds)"}
}

// bucket is a token bucket refilled at rate tokens a second, holding at
// most one second's worth. rate < 0 means no cap.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time) bool {
	if b.rate < 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens, b.last = b.rate, now
	} else if d := now.Sub(b.last); d > 0 {
		// A clock that steps backwards adds nothing rather than going
		// negative.
		b.tokens = min(b.rate, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
