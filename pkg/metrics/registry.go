package metrics

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Type is a metric family's type.
type Type uint8

const (
	// Counter is a value that only goes up (until the process restarts).
	Counter Type = iota + 1
	// Gauge is a value that goes up and down.
	Gauge
	// HistogramType is a distribution in fixed buckets; see Histogram.
	HistogramType
)

// String returns the type's name in the exposition format.
func (t Type) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case HistogramType:
		return "histogram"
	}
	return "untyped"
}

// Label is one label pair of a series.
type Label struct {
	Name, Value string
}

// L is shorthand for Label{name, value}.
func L(name, value string) Label { return Label{name, value} }

// Registry is a set of metric families. It is safe for concurrent use;
// registering while a scrape runs is allowed.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// family is one metric name with its series.
type family struct {
	name, help string
	typ        Type
	series     []series
	// collect lists series at scrape time (Family); nil for static ones.
	collect func(add func(value float64, labels ...Label))
}

// series is one static series: exactly one of the value sources is set.
type series struct {
	labels []Label
	key    string // canonical label set, to refuse duplicates
	u64    func() uint64
	f64    func() float64
	hist   *Histogram
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]*family{}}
}

// CounterFunc registers a counter series whose value fn returns at scrape
// time. fn must be safe to call from any goroutine (an atomic's Load).
func (r *Registry) CounterFunc(name, help string, fn func() uint64, labels ...Label) {
	r.add(name, help, Counter, series{labels: labels, u64: fn})
}

// GaugeFunc registers a gauge series whose value fn returns at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() float64, labels ...Label) {
	r.add(name, help, Gauge, series{labels: labels, f64: fn})
}

// Histogram registers a histogram series with the given bucket upper
// bounds (strictly increasing and finite; the +Inf bucket is implicit) and
// returns it for Observe.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...Label) *Histogram {
	for _, l := range labels {
		if l.Name == "le" {
			panic(fmt.Sprintf("metrics: histogram %s: the label le is reserved", name))
		}
	}
	h := newHistogram(name, buckets)
	r.add(name, help, HistogramType, series{labels: labels, hist: h})
	return h
}

// Family registers a counter or gauge family whose series fn lists at
// scrape time, calling add once per series. It suits label sets that
// change while the daemon runs, such as one series per device. fn must not
// add one label set twice, and must use the same label names throughout.
func (r *Registry) Family(name, help string, typ Type, fn func(add func(value float64, labels ...Label))) {
	if fn == nil {
		panic(fmt.Sprintf("metrics: family %s: no function", name))
	}
	if typ != Counter && typ != Gauge {
		panic(fmt.Sprintf("metrics: family %s: only counters and gauges can be listed at scrape time", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkName(name, typ)
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.families[name] = &family{name: name, help: help, typ: typ, collect: fn}
}

func (r *Registry) add(name, help string, typ Type, s series) {
	if s.u64 == nil && s.f64 == nil && s.hist == nil {
		panic(fmt.Sprintf("metrics: %s: no value function", name))
	}
	s.labels = slices.Clone(s.labels)
	s.key = labelKey(name, s.labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[name]
	if f == nil {
		r.checkName(name, typ)
		f = &family{name: name, help: help, typ: typ}
		r.families[name] = f
	}
	switch {
	case f.typ != typ:
		panic(fmt.Sprintf("metrics: %s registered as %s and as %s", name, f.typ, typ))
	case f.collect != nil:
		panic(fmt.Sprintf("metrics: %s is listed at scrape time; it takes no static series", name))
	case f.help != help:
		panic(fmt.Sprintf("metrics: %s registered with two help texts", name))
	}
	for _, other := range f.series {
		if other.key == s.key {
			panic(fmt.Sprintf("metrics: %s%s registered twice", name, appendLabels(nil, s.labels, nil)))
		}
	}
	f.series = append(f.series, s)
}

// checkName refuses a malformed name and names that would collide with a
// histogram's _bucket, _sum and _count series. It must be called with mu
// held.
func (r *Registry) checkName(name string, typ Type) {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if typ == HistogramType {
			if _, ok := r.families[name+suffix]; ok {
				panic(fmt.Sprintf("metrics: histogram %s collides with %s%s", name, name, suffix))
			}
		}
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := r.families[base]; ok && f.typ == HistogramType {
				panic(fmt.Sprintf("metrics: %s collides with histogram %s", name, base))
			}
		}
	}
}

// labelKey checks a label set and returns a canonical form of it.
func labelKey(metric string, labels []Label) string {
	names := make([]string, 0, len(labels))
	for _, l := range labels {
		if !validLabelName(l.Name) {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", metric, l.Name))
		}
		names = append(names, l.Name)
	}
	sorted := slices.Clone(labels)
	slices.SortFunc(sorted, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for i, l := range sorted {
		if i > 0 && sorted[i-1].Name == l.Name {
			panic(fmt.Sprintf("metrics: %s: label %s given twice", metric, l.Name))
		}
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and is
// not one of the names reserved for Prometheus itself (leading "__").
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
