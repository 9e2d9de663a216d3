package metrics

import (
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"
)

// Histogram counts observations in fixed buckets. Observe is safe for
// concurrent use, takes no lock and allocates nothing; it is meant for the
// packet path.
type Histogram struct {
	upper  []float64       // bucket upper bounds, increasing
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(name string, buckets []float64) *Histogram {
	if len(buckets) == 0 {
		panic(fmt.Sprintf("metrics: histogram %s has no buckets", name))
	}
	for i, b := range buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			panic(fmt.Sprintf("metrics: histogram %s: bucket %v is not finite (+Inf is implicit)", name, b))
		}
		if i > 0 && b <= buckets[i-1] {
			panic(fmt.Sprintf("metrics: histogram %s: buckets must increase, %v follows %v", name, b, buckets[i-1]))
		}
	}
	return &Histogram{
		upper:  append([]float64(nil), buckets...),
		counts: make([]atomic.Uint64, len(buckets)+1),
	}
}

// Observe counts v in the first bucket whose upper bound is at least v,
// and adds it to the sum. NaN is ignored: it belongs in no bucket.
func (h *Histogram) Observe(v float64) {
	if v != v {
		return
	}
	h.counts[sort.SearchFloat64s(h.upper, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration observes d in seconds, the unit Prometheus uses for time.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// snapshot reads the cumulative bucket counts into cum (len(upper)+1) and
// returns the sum. The count is cum's last element, so _count always
// equals the +Inf bucket even while observations continue.
func (h *Histogram) snapshot(cum []uint64) float64 {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		cum[i] = total
	}
	return math.Float64frombits(h.sum.Load())
}

// ExponentialBuckets returns n bucket bounds: start, start*factor,
// start*factor², ... It panics unless start > 0, factor > 1 and n >= 1.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	if start <= 0 || factor <= 1 || n < 1 {
		panic(fmt.Sprintf("metrics: ExponentialBuckets(%v, %v, %d)", start, factor, n))
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// LatencyBuckets returns buckets for the verdict latency of one packet, in
// seconds: from 1 µs to about 0.26 s, each bound four times the last.
func LatencyBuckets() []float64 { return ExponentialBuckets(1e-6, 4, 10) }
