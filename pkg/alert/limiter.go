package alert

import (
	"net/netip"
	"time"
)

// Limiter folds repeated alerts into summaries and caps the overall alert
// rate, so that a scanning or misbehaving device produces a handful of
// alerts with counts instead of one line per packet.
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
// On top of that a token bucket caps alerts (first ones and summaries) to
// GlobalRate a second. An alert held back by the cap is not lost: its event
// is counted into its key's next summary, and Suppressed counts the refusal.
//
// The number of keys is capped; when full, the least recently seen key is
// evicted (its pending summary, if any, is emitted first, still under the
// global cap).
//
// A Limiter is not safe for concurrent use: the Dispatcher's goroutine owns
// one. Time is always passed in, so tests drive it without sleeping.
type Limiter struct {
	window time.Duration
	keys   *lru[limitKey, limitState]
	bucket bucket

	suppressed uint64
	folded     uint64
	evicted    uint64
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

// Limiter defaults.
const (
	DefaultWindow     = 60 * time.Second
	DefaultMaxKeys    = 4096
	DefaultGlobalRate = 100
)

// NewLimiter returns a limiter. Zero values take the defaults (60 s, 4096
// keys, 100 alerts/s); a negative globalRate disables the global cap.
func NewLimiter(window time.Duration, maxKeys, globalRate int) *Limiter {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if globalRate == 0 {
		globalRate = DefaultGlobalRate
	}
	return &Limiter{window: window, keys: newLRU[limitKey, limitState](maxKeys), bucket: bucket{rate: float64(globalRate)}}
}

func keyOf(a *Alert) limitKey {
	if a.Device != "" {
		return limitKey{typ: a.Type, device: a.Device}
	}
	return limitKey{typ: a.Type, src: a.Src}
}

// Offer hands the limiter one alert at time now and appends what it lets
// out to out: nothing, the alert itself (Count 1), and/or the summary of the
// key's previous window.
func (l *Limiter) Offer(out []Alert, a Alert, now time.Time) []Alert {
	k := keyOf(&a)
	st := l.keys.get(k)
	if st == nil {
		var ev *lruNode[limitKey, limitState]
		st, ev = l.keys.add(k, limitState{start: now})
		if ev != nil {
			l.evicted++
			if ev.val.n > 0 {
				out = l.summary(out, &ev.val, now)
			}
		}
		return l.pass(out, st, a, now)
	}
	if now.Sub(st.start) < l.window {
		l.fold(st, a)
		return out
	}
	if st.n == 0 {
		// Quiet for a whole window: this is news again.
		st.start = now
		return l.pass(out, st, a, now)
	}
	out, ok := l.summaryReset(out, st, now)
	if ok {
		// The key is still busy: this event opens the next summary
		// rather than passing at once, so a steady stream costs one
		// alert a window.
		st.start = now
	}
	l.fold(st, a)
	return out
}

// Tick emits the summaries of every window that has ended by now and
// forgets keys that were quiet for a whole window. Call it about once a
// second; without it a summary waits for its key's next alert.
func (l *Limiter) Tick(out []Alert, now time.Time) []Alert {
	l.keys.each(func(n *lruNode[limitKey, limitState]) {
		st := &n.val
		if now.Sub(st.start) < l.window {
			return
		}
		if st.n == 0 {
			l.keys.remove(n)
			return
		}
		var ok bool
		if out, ok = l.summaryReset(out, st, now); ok {
			st.start = now
		}
	})
	return out
}

// Flush emits every pending summary now, windows ended or not and ignoring
// the global cap (it is for shutdown, when counts must not be lost), and
// forgets every key.
func (l *Limiter) Flush(out []Alert, now time.Time) []Alert {
	l.keys.each(func(n *lruNode[limitKey, limitState]) {
		if n.val.n > 0 {
			out = append(out, summaryOf(&n.val))
		}
		l.keys.remove(n)
	})
	return out
}

// Suppressed is how many times the global cap held an alert back.
func (l *Limiter) Suppressed() uint64 { return l.suppressed }

// Folded is how many alerts were counted into summaries instead of being
// emitted on their own.
func (l *Limiter) Folded() uint64 { return l.folded }

// Evicted is how many keys were dropped to stay within the key cap.
func (l *Limiter) Evicted() uint64 { return l.evicted }

// Keys is the number of keys currently tracked.
func (l *Limiter) Keys() int { return l.keys.len() }

func (l *Limiter) pass(out []Alert, st *limitState, a Alert, now time.Time) []Alert {
	if !l.bucket.allow(now) {
		l.suppressed++
		l.fold(st, a)
		return out
	}
	a.Count, a.Summary = 1, false
	return append(out, a)
}

func (l *Limiter) fold(st *limitState, a Alert) {
	st.n++
	st.last = a
	l.folded++
}

// summaryReset emits st's summary if the global cap allows and then resets
// its count; otherwise the count is kept for a later try.
func (l *Limiter) summaryReset(out []Alert, st *limitState, now time.Time) ([]Alert, bool) {
	if !l.bucket.allow(now) {
		l.suppressed++
		return out, false
	}
	out = append(out, summaryOf(st))
	st.n = 0
	st.last = Alert{}
	return out, true
}

// summary emits st's summary if the global cap allows; used on eviction,
// where there is no later try.
func (l *Limiter) summary(out []Alert, st *limitState, now time.Time) []Alert {
	if !l.bucket.allow(now) {
		l.suppressed++
		return out
	}
	return append(out, summaryOf(st))
}

func summaryOf(st *limitState) Alert {
	s := st.last
	s.Count, s.Summary = st.n, true
	return s
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
