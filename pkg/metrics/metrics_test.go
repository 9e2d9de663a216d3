package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads a page with Prometheus's own text parser.
func parse(t *testing.T, page []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the page: %v\n%s", err, page)
	}
	return fams
}

func page(t *testing.T, r *Registry) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	return buf.Bytes()
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestGolden(t *testing.T) {
	r := NewRegistry()
	var packets atomic.Uint64
	packets.Store(1234)
	r.CounterFunc("picoseg_packets_total", "Packets judged.", packets.Load)
	r.CounterFunc("picoseg_verdicts_total", "Final verdicts by layer and verdict.", func() uint64 { return 7 }, L("layer", "micro"), L("verdict", "drop"))
	r.CounterFunc("picoseg_verdicts_total", "Final verdicts by layer and verdict.", func() uint64 { return 1 << 63 }, L("layer", "pico"), L("verdict", "accept"))
	r.GaugeFunc("picoseg_devices", "Devices in the inventory.\nKnown and unknown, with a back\\slash.", func() float64 { return 3 })
	r.GaugeFunc("picoseg_up_ratio", "", func() float64 { return 0.25 })
	h := r.Histogram("picoseg_verdict_seconds", "Verdict latency.", []float64{0.001, 0.01, 0.1})
	for _, v := range []float64{0.0005, 0.001, 0.002, 0.05, 3} {
		h.Observe(v)
	}
	want := `# HELP picoseg_devices Devices in the inventory.\nKnown and unknown, with a back\\slash.
# TYPE picoseg_devices gauge
picoseg_devices 3
# HELP picoseg_packets_total Packets judged.
# TYPE picoseg_packets_total counter
picoseg_packets_total 1234
# TYPE picoseg_up_ratio gauge
picoseg_up_ratio 0.25
# HELP picoseg_verdict_seconds Verdict latency.
# TYPE picoseg_verdict_seconds histogram
picoseg_verdict_seconds_bucket{le="0.001"} 2
picoseg_verdict_seconds_bucket{le="0.01"} 3
picoseg_verdict_seconds_bucket{le="0.1"} 4
picoseg_verdict_seconds_bucket{le="+Inf"} 5
picoseg_verdict_seconds_sum 3.0535
picoseg_verdict_seconds_count 5
# HELP picoseg_verdicts_total Final verdicts by layer and verdict.
# TYPE picoseg_verdicts_total counter
picoseg_verdicts_total{layer="micro",verdict="drop"} 7
picoseg_verdicts_total{layer="pico",verdict="accept"} 9223372036854775808
`
	got := page(t, r)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Fatalf("page (-want +got):\n%s", diff)
	}
	fams := parse(t, got)
	if v := fams["picoseg_packets_total"].GetMetric()[0].GetCounter().GetValue(); v != 1234 {
		t.Errorf("packets = %v", v)
	}
	// Values are read at scrape time.
	packets.Add(6)
	if v := parse(t, page(t, r))["picoseg_packets_total"].GetMetric()[0].GetCounter().GetValue(); v != 1240 {
		t.Errorf("packets after Add = %v, want 1240", v)
	}
	if help := fams["picoseg_devices"].GetHelp(); help != "Devices in the inventory.\nKnown and unknown, with a back\\slash." {
		t.Errorf("help round trip = %q", help)
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	values := []string{
		`plain`,
		`back\slash`,
		`double "quoted"`,
		"new\nline",
		`all \" three` + "\n",
		`} forged{x="1"} 9`,
		"ünïcödé 🔥",
		"invalid \xff utf-8",
		"",
	}
	r := NewRegistry()
	for i, v := range values {
		r.GaugeFunc("picoseg_device_bytes", "Bytes by device.", func() float64 { return float64(i) }, L("device", v), L("i", string(rune('a'+i))))
	}
	fams := parse(t, page(t, r))
	ms := fams["picoseg_device_bytes"].GetMetric()
	if len(ms) != len(values) {
		t.Fatalf("%d series, want %d", len(ms), len(values))
	}
	for _, m := range ms {
		l := labelsOf(m)
		i := int(l["i"][0] - 'a')
		want := strings.ToValidUTF8(values[i], "\uFFFD")
		if l["device"] != want || m.GetGauge().GetValue() != float64(i) {
			t.Errorf("series %d: device=%q value %v; want %q, %d", i, l["device"], m.GetGauge().GetValue(), want, i)
		}
	}
}

func TestFamily(t *testing.T) {
	r := NewRegistry()
	var mu sync.Mutex
	devices := map[string]float64{"kitchen-plug": 10}
	r.Family("picoseg_device_up_bytes_total", "Bytes sent by device.", Counter, func(add func(float64, ...Label)) {
		mu.Lock()
		defer mu.Unlock()
		for name, v := range devices {
			add(v, L("device", name))
		}
		add(1, L("bad-name", "x")) // left out, not the whole page
	})
	fams := parse(t, page(t, r))
	if ms := fams["picoseg_device_up_bytes_total"].GetMetric(); len(ms) != 1 || labelsOf(ms[0])["device"] != "kitchen-plug" || ms[0].GetCounter().GetValue() != 10 {
		t.Fatalf("family = %v", ms)
	}
	mu.Lock()
	devices["front-cam"] = 5
	mu.Unlock()
	if ms := parse(t, page(t, r))["picoseg_device_up_bytes_total"].GetMetric(); len(ms) != 2 {
		t.Fatalf("after a device appeared: %v", ms)
	}

	// An empty family still parses.
	empty := NewRegistry()
	empty.Family("picoseg_nothing", "Nothing.", Gauge, func(func(float64, ...Label)) {})
	parse(t, page(t, empty))
}

func TestHistogram(t *testing.T) {
	r := NewRegistry()
	buckets := LatencyBuckets()
	a := r.Histogram("picoseg_verdict_seconds", "Verdict latency.", buckets, L("queue", "0"))
	b := r.Histogram("picoseg_verdict_seconds", "Verdict latency.", buckets, L("queue", "1"))
	a.ObserveDuration(3 * time.Microsecond)
	a.ObserveDuration(3 * time.Microsecond)
	a.ObserveDuration(time.Millisecond)
	a.ObserveDuration(2 * time.Second)
	a.Observe(math.NaN())
	b.Observe(-1)

	fams := parse(t, page(t, r))
	f := fams["picoseg_verdict_seconds"]
	if f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 2 {
		t.Fatalf("family = %v", f)
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		bs := h.GetBucket()
		if len(bs) != len(buckets)+1 || !math.IsInf(bs[len(bs)-1].GetUpperBound(), 1) {
			t.Fatalf("buckets %v; want %d and +Inf", bs, len(buckets))
		}
		var prev uint64
		for i, bk := range bs[:len(buckets)] {
			if bk.GetUpperBound() != buckets[i] || bk.GetCumulativeCount() < prev {
				t.Fatalf("bucket %d = %v; bounds must match and counts be cumulative", i, bk)
			}
			prev = bk.GetCumulativeCount()
		}
		switch labelsOf(m)["queue"] {
		case "0":
			// 3 µs twice in le=4e-6, 1 ms in le=1.024e-3, 2 s only in +Inf.
			if bs[0].GetCumulativeCount() != 0 || bs[1].GetCumulativeCount() != 2 || bs[5].GetCumulativeCount() != 3 ||
				bs[len(bs)-2].GetCumulativeCount() != 3 || bs[len(bs)-1].GetCumulativeCount() != 4 || h.GetSampleCount() != 4 {
				t.Errorf("queue 0 histogram = %v", h)
			}
			if s := h.GetSampleSum(); math.Abs(s-(2.001006)) > 1e-12 {
				t.Errorf("sum = %v, want 2.001006", s)
			}
		case "1":
			if bs[0].GetCumulativeCount() != 1 || h.GetSampleCount() != 1 || h.GetSampleSum() != -1 {
				t.Errorf("queue 1 histogram = %v", h)
			}
		}
	}
	if !strings.Contains(string(page(t, r)), `picoseg_verdict_seconds_bucket{queue="0",le="+Inf"} 4`) {
		t.Errorf("no +Inf bucket line:\n%s", page(t, r))
	}
}

func TestHistogramNoAllocs(t *testing.T) {
	h := NewRegistry().Histogram("x_seconds", "x", LatencyBuckets())
	if n := testing.AllocsPerRun(10000, func() {
		h.Observe(5e-6)
		h.ObserveDuration(40 * time.Microsecond)
	}); n != 0 {
		t.Fatalf("Observe allocates %v times, want 0", n)
	}
}

// TestHistogramConcurrent checks that no observation is lost and that a
// scrape during observations stays consistent (_count equals +Inf).
func TestHistogramConcurrent(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("x_seconds", "x", []float64{1, 2})
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.Observe(float64((w + i) % 3))
			}
		}()
	}
	for range 20 {
		parse(t, page(t, r))
	}
	wg.Wait()
	m := parse(t, page(t, r))["x_seconds"].GetMetric()[0].GetHistogram()
	if m.GetSampleCount() != workers*each {
		t.Fatalf("count = %d, want %d", m.GetSampleCount(), workers*each)
	}
	// Every value is 0, 1 or 2, evenly: the sum is exact in float64.
	var want float64
	for w := range workers {
		for i := range each {
			want += float64((w + i) % 3)
		}
	}
	if m.GetSampleSum() != want {
		t.Fatalf("sum = %v, want %v", m.GetSampleSum(), want)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().Histogram("x_seconds", "x", LatencyBuckets())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(20e-6)
		}
	})
}

func TestRegistrationPanics(t *testing.T) {
	one := func() float64 { return 1 }
	count := func() uint64 { return 1 }
	for _, tc := range []struct {
		name string
		fn   func(r *Registry)
	}{
		{"bad metric name", func(r *Registry) { r.GaugeFunc("1st", "", one) }},
		{"bad metric name chars", func(r *Registry) { r.GaugeFunc("a-b", "", one) }},
		{"bad label name", func(r *Registry) { r.GaugeFunc("a", "", one, L("a b", "")) }},
		{"reserved label name", func(r *Registry) { r.GaugeFunc("a", "", one, L("__name__", "")) }},
		{"label twice", func(r *Registry) { r.GaugeFunc("a", "", one, L("x", "1"), L("x", "2")) }},
		{"series twice", func(r *Registry) {
			r.GaugeFunc("a", "", one, L("x", "1"), L("y", "2"))
			r.GaugeFunc("a", "", one, L("y", "2"), L("x", "1"))
		}},
		{"two types", func(r *Registry) {
			r.GaugeFunc("a", "", one)
			r.CounterFunc("a", "", count, L("x", "1"))
		}},
		{"two helps", func(r *Registry) {
			r.GaugeFunc("a", "one", one)
			r.GaugeFunc("a", "two", one, L("x", "1"))
		}},
		{"le on a histogram", func(r *Registry) { r.Histogram("h", "", []float64{1}, L("le", "1")) }},
		{"no buckets", func(r *Registry) { r.Histogram("h", "", nil) }},
		{"unsorted buckets", func(r *Registry) { r.Histogram("h", "", []float64{2, 1}) }},
		{"infinite bucket", func(r *Registry) { r.Histogram("h", "", []float64{1, math.Inf(1)}) }},
		{"histogram suffix", func(r *Registry) {
			r.Histogram("h", "", []float64{1})
			r.GaugeFunc("h_count", "", one)
		}},
		{"histogram over suffix", func(r *Registry) {
			r.GaugeFunc("h_sum", "", one)
			r.Histogram("h", "", []float64{1})
		}},
		{"family twice", func(r *Registry) {
			r.GaugeFunc("a", "", one)
			r.Family("a", "", Gauge, func(func(float64, ...Label)) {})
		}},
		{"histogram family", func(r *Registry) { r.Family("a", "", HistogramType, func(func(float64, ...Label)) {}) }},
		{"nil gauge", func(r *Registry) { r.GaugeFunc("a", "", nil) }},
		{"nil counter", func(r *Registry) { r.CounterFunc("a", "", nil) }},
		{"nil family", func(r *Registry) { r.Family("a", "", Gauge, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil {
					t.Fatal("no panic")
				}
				t.Log(v)
			}()
			tc.fn(NewRegistry())
		})
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.CounterFunc("picoseg_packets_total", "Packets.", func() uint64 { return 42 })
	base := serveTest(t, r)

	resp, err := http.Get(base + Path + "?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("GET: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	parse(t, body)
	// The page's format is what Prometheus negotiates from the header.
	if f := expfmt.ResponseFormat(resp.Header); f.FormatType() != expfmt.TypeTextPlain {
		t.Errorf("Prometheus reads the Content-Type as %v", f)
	}

	resp, err = http.Head(base + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %s, length %d, want %d", resp.Status, resp.ContentLength, len(body))
	}
	resp, err = http.Post(base+Path, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
}

// serveTest serves r on a loopback port until the test ends and returns
// its base URL.
func serveTest(t *testing.T, r *Registry) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, r) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestServeHostile: malformed, oversized and stalled requests get an
// answer or a closed connection, never the page, and do not stop the
// server from answering the next scrape.
func TestServeHostile(t *testing.T) {
	r := NewRegistry()
	r.GaugeFunc("picoseg_up", "1 while running.", func() float64 { return 1 })
	base := serveTest(t, r)
	addr := strings.TrimPrefix(base, "http://")
	// A request too big to read whole may be answered by a reset instead
	// (the server closes with unread bytes): want "" takes either.
	for _, tc := range []struct{ name, req, want string }{
		{"no version", "GET /metrics\r\n\r\n", "HTTP/1.1 400 "},
		{"not http", "GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 "},
		{"empty line", "\r\n\r\n", "HTTP/1.1 400 "},
		{"bad length", "GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 "},
		{"huge header", "GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", maxRequest) + "\r\n\r\n", ""},
		{"other path", "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "},
		{"method", "DELETE /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 405 "},
		{"page", "GET /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(c)
			if tc.want == "" && len(got) == 0 {
				return
			}
			if tc.want == "" {
				tc.want = "HTTP/1.1 400 "
			}
			if !strings.HasPrefix(string(got), tc.want) {
				t.Fatalf("answer %.60q, want %q", got, tc.want)
			}
			if page := strings.Contains(string(got), "picoseg_up"); page != (tc.want == "HTTP/1.1 200 ") {
				t.Errorf("page sent: %v", page)
			}
		})
	}

	// Clients that connect and say nothing hold at most maxConns slots;
	// the others are closed at once, and once the stalled ones are gone
	// a scrape is answered again.
	var stalled []net.Conn
	for range maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// The server accepts in order: the next connection is over the limit.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection beyond the limit: read %d, %v; want closed", n, err)
	}
	c.Close()
	for _, c := range stalled {
		c.Close()
	}
	var resp *http.Response
	for range 100 {
		if resp, err = http.Get(base + Path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape after the stalled clients left: %v, %v", resp, err)
	}
	resp.Body.Close()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestServe(t *testing.T) {
	r := NewRegistry()
	r.GaugeFunc("picoseg_up", "1 while running.", func() float64 { return 1 })

	ctx, cancel := context.WithCancel(context.Background())
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, r) }()
	url := "http://" + ln.Addr().String() + Path
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if fams := parse(t, body); fams["picoseg_up"].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("page = %s", body)
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/other"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /other = %v, %v; want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeListener after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop with its context")
	}
	if _, err := http.Get(url); err == nil {
		t.Error("server still answers after its context ended")
	}

	// Serve itself, on an address it must listen on.
	addr := ln.Addr().String() // free again
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- Serve(ctx, addr, r) }()
	var ok bool
	for range 100 {
		if resp, err := http.Get("http://" + addr + Path); err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == 200
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || !ok {
		t.Fatalf("Serve on %s: answered %v, returned %v", addr, ok, err)
	}

	// An address it cannot listen on.
	busy := listen(t)
	defer busy.Close()
	if err := Serve(context.Background(), busy.Addr().String(), r); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Fatalf("Serve on a busy port = %v", err)
	}
	if err := Serve(context.Background(), "not an address", r); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
	var opErr *net.OpError
	if err := Serve(context.Background(), busy.Addr().String(), r); !errors.As(err, &opErr) {
		t.Errorf("error does not unwrap to *net.OpError: %v", err)
	}
}

// FuzzEscaping: whatever a device calls itself, the page parses and the
// label value comes back (made valid UTF-8), in one series.
func FuzzEscaping(f *testing.F) {
	for _, s := range []string{`a\b`, `"`, "\n", `} x{y="1"} 2`, "\xff", "\\n", ""} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, value, help string) {
		r := NewRegistry()
		r.GaugeFunc("picoseg_device_up", help, func() float64 { return 1 }, L("hostname", value))
		fams := parse(t, page(t, r))
		ms := fams["picoseg_device_up"].GetMetric()
		if len(fams) != 1 || len(ms) != 1 {
			t.Fatalf("%d families, %d series", len(fams), len(ms))
		}
		if got, want := labelsOf(ms[0])["hostname"], strings.ToValidUTF8(value, "\uFFFD"); got != want {
			t.Fatalf("label value %q came back as %q", want, got)
		}
	})
}
