package spa

import (
	"net/netip"
	"sync"
)

// Limiter bounds the failed attempts that are decoded: each source has a
// bucket of Burst failures refilled at Rate per second, and all sources
// together one of GlobalBurst refilled at GlobalRate. A source whose
// bucket is empty (or any source while the global one is) has its SPA
// packets dropped before the HMAC is computed, so a flood of junk costs a
// map lookup per packet. Valid packets never spend a token; but a source
// that is flooding is not decoded at all until its bucket refills, which
// is the price of keeping the CPU cost of junk bounded.
type Limiter struct {
	mu      sync.Mutex
	sources map[netip.Addr]*bucket
	global  bucket
	opts    LimiterOptions
}

// LimiterOptions sets a Limiter's rates (per second) and bursts.
type LimiterOptions struct {
	Rate, Burst             float64
	GlobalRate, GlobalBurst float64
	// Sources bounds how many sources have a bucket; beyond it the
	// oldest empty buckets go first, and a table of full buckets is
	// cleared (the global bucket still holds).
	Sources int
}

// DefaultLimiterOptions: a source may fail 5 times at once, then once
// every 10 s; all sources together 200 times at once, then 100 per second.
var DefaultLimiterOptions = LimiterOptions{Rate: 0.1, Burst: 5, GlobalRate: 100, GlobalBurst: 200, Sources: 4096}

type bucket struct {
	tokens float64
	last   int64
}

func (b *bucket) refill(now int64, rate, burst float64) {
	if b.last == 0 {
		b.tokens, b.last = burst, now
		return
	}
	if now > b.last {
		b.tokens = min(burst, b.tokens+float64(now-b.last)/1e9*rate)
		b.last = now
	}
}

// NewLimiter returns a limiter with opts.
func NewLimiter(opts LimiterOptions) *Limiter {
	if opts.Sources <= 0 {
		opts.Sources = DefaultLimiterOptions.Sources
	}
	return &Limiter{sources: map[netip.Addr]*bucket{}, opts: opts}
}

// Blocked reports whether src's packets are not to be decoded at now.
func (l *Limiter) Blocked(src netip.Addr, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.refill(now, l.opts.GlobalRate, l.opts.GlobalBurst)
	if l.global.tokens < 1 {
		return true
	}
	b := l.sources[src]
	if b == nil {
		return false
	}
	b.refill(now, l.opts.Rate, l.opts.Burst)
	return b.tokens < 1
}

// Fail spends one token of src's bucket and of the global one.
func (l *Limiter) Fail(src netip.Addr, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.refill(now, l.opts.GlobalRate, l.opts.GlobalBurst)
	l.global.tokens--
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= l.opts.Sources {
			l.evict(now)
		}
		b = &bucket{}
		l.sources[src] = b
	}
	b.refill(now, l.opts.Rate, l.opts.Burst)
	b.tokens--
}

// evict drops the buckets that have refilled: they hold nothing a fresh
// one would not. If none has, all go: the global bucket still bounds the
// cost of the sources forgotten.
func (l *Limiter) evict(now int64) {
	for a, b := range l.sources {
		b.refill(now, l.opts.Rate, l.opts.Burst)
		if b.tokens >= l.opts.Burst {
			delete(l.sources, a)
		}
	}
	if len(l.sources) >= l.opts.Sources {
		clear(l.sources)
	}
}
