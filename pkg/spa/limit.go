package spa

import (
	"net/netip"
	"sync"
	"time"
)

// Limiter bounds the failed attempts that are decoded: each source may fail
// Burst times at once and then once per Interval, and all sources together
// GlobalBurst times and then once per GlobalInterval. A source over its
// bound (or any source while the global one is spent) has its SPA packets
// dropped before the HMAC is computed, so a flood of junk costs a map
// lookup per packet. Valid packets spend nothing; but a source that floods
// is not decoded at all until its bound allows again, which is the price
// of keeping the CPU cost of junk bounded.
//
// Each bound is a virtual schedule (the generic cell rate algorithm): one
// integer per source, the time its failures are paid up to.
type Limiter struct {
	mu      sync.Mutex
	sources map[netip.Addr]int64
	global  int64
	opts    LimiterOptions
}

// LimiterOptions sets a Limiter's bounds.
type LimiterOptions struct {
	Interval, GlobalInterval time.Duration
	Burst, GlobalBurst       int
	// Sources bounds how many sources are remembered; beyond it those
	// paid up go first, and if none is, all (the global bound still
	// holds).
	Sources int
}

// DefaultLimiterOptions: a source may fail 5 times at once, then once
// every 10 s; all sources together 200 times at once, then 100 per second.
var DefaultLimiterOptions = LimiterOptions{Interval: 10 * time.Second, Burst: 5,
	GlobalInterval: 10 * time.Millisecond, GlobalBurst: 200, Sources: 4096}

// NewLimiter returns a limiter with opts.
func NewLimiter(opts LimiterOptions) *Limiter {
	if opts.Sources <= 0 {
		opts.Sources = DefaultLimiterOptions.Sources
	}
	return &Limiter{sources: map[netip.Addr]int64{}, opts: opts}
}

// over reports whether a schedule paid up to tat is over its bound at now.
func over(tat, now int64, interval time.Duration, burst int) bool {
	return tat-now > int64(interval)*int64(burst-1)
}

// spend charges one failure to a schedule paid up to tat.
func spend(tat, now int64, interval time.Duration) int64 {
	return max(tat, now) + int64(interval)
}

// Blocked reports whether src's packets are not to be decoded at now.
func (l *Limiter) Blocked(src netip.Addr, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := &l.opts
	return over(l.global, now, o.GlobalInterval, o.GlobalBurst) || over(l.sources[src], now, o.Interval, o.Burst)
}

// Fail charges one failure to src and to all sources.
func (l *Limiter) Fail(src netip.Addr, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := &l.opts
	l.global = spend(l.global, now, o.GlobalInterval)
	tat, ok := l.sources[src]
	if !ok && len(l.sources) >= o.Sources {
		for a, t := range l.sources {
			if t <= now {
				delete(l.sources, a)
			}
		}
		if len(l.sources) >= o.Sources {
			clear(l.sources)
		}
	}
	l.sources[src] = spend(tat, now, o.Interval)
}
