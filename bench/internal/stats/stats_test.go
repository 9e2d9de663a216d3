package stats

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name             string
		in               []float64
		median, min, max float64
	}{
		{"odd", []float64{3, 1, 2}, 2, 1, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4},
		{"one", []float64{7}, 7, 7, 7},
		{"NaN ignored", []float64{math.NaN(), 5, 1}, 3, 1, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			med, lo, hi := Summarize(tt.in)
			if med != tt.median || lo != tt.min || hi != tt.max {
				t.Errorf("Summarize(%v) = %v, %v, %v; want %v, %v, %v", tt.in, med, lo, hi, tt.median, tt.min, tt.max)
			}
		})
	}
	if med, _, _ := Summarize(nil); !math.IsNaN(med) {
		t.Errorf("Summarize(nil) median = %v, want NaN", med)
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(100 - i) // 100..1, unsorted on purpose
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("Percentile(p%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestQuartiles(t *testing.T) {
	tests := []struct {
		in       []float64
		p25, p75 float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 2, 4},
		{[]float64{4, 3, 2, 1}, 1.75, 3.25},
		{[]float64{7}, 7, 7},
		{[]float64{math.NaN(), 10, 0}, 2.5, 7.5},
	}
	for _, tt := range tests {
		if p25, p75 := Quartiles(tt.in); p25 != tt.p25 || p75 != tt.p75 {
			t.Errorf("Quartiles(%v) = %v, %v; want %v, %v", tt.in, p25, p75, tt.p25, tt.p75)
		}
	}
	if p25, _ := Quartiles(nil); !math.IsNaN(p25) {
		t.Errorf("Quartiles(nil) = %v, want NaN", p25)
	}
}

func TestGoals(t *testing.T) {
	if f := New("r", "ratio", "", AtLeast, 0.97, []float64{0.99, 0.98, 1.0}); f.Met == nil || !*f.Met {
		t.Errorf("0.99 ≥ 0.97 not met: %+v", f)
	}
	if f := New("ms", "reload", "ms", AtMost, 200, []float64{250, 300, 180}); f.Met == nil || *f.Met {
		t.Errorf("median 250 ≤ 200 met: %+v", f)
	}
	if f := New("i", "info", "", Info, 0, []float64{1}); f.Met != nil || f.Goal != nil {
		t.Errorf("info figure has a goal: %+v", f)
	}
	if f := New("e", "empty", "", AtLeast, 1, nil); f.Met != nil {
		t.Errorf("figure without samples judged: %+v", f)
	}
}

// TestJSONShape checks what consumers of bench.json rely on: one object per
// key with median, min, max and goal, in the report's order, NaN as null.
func TestJSONShape(t *testing.T) {
	r := &Report{Context: map[string]string{"load": "0.4"}}
	r.Add(New("throughput_ratio", "throughput", "", AtLeast, 0.97, []float64{0.98, 0.99, 1.01}))
	r.Add(New("reload_ms", "reload", "ms", AtMost, 200, nil))
	r.Add(New("throughput_ratio", "throughput", "", AtLeast, 0.97, []float64{0.5})) // replaces
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	tr := got["throughput_ratio"]
	for _, k := range []string{"median", "min", "max", "goal"} {
		if _, ok := tr[k]; !ok {
			t.Errorf("throughput_ratio lacks %q: %v", k, tr)
		}
	}
	if tr["median"] != 0.5 || tr["goal"] != 0.97 || tr["met"] != false {
		t.Errorf("throughput_ratio = %v", tr)
	}
	if rl := got["reload_ms"]; rl["median"] != nil || rl["goal"] != 200.0 {
		t.Errorf("reload_ms without samples = %v, want median null, goal 200", rl)
	}
	if got["context"]["load"] != "0.4" {
		t.Errorf("context = %v", got["context"])
	}
	if i, j := strings.Index(buf.String(), "throughput_ratio"), strings.Index(buf.String(), "reload_ms"); i > j {
		t.Errorf("keys out of report order:\n%s", buf.String())
	}
}

func TestMarkdown(t *testing.T) {
	r := &Report{}
	r.Add(New("reload_ms", "Reload", "ms", AtMost, 200, []float64{120, 80, 100}))
	r.Add(New("bytes_per_flow", "Flow table", "B/flow", AtMost, 256, []float64{300}))
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	want := "| Reload (ms) | 100 | 90–110 | 80 | 120 | 3 | ≤ 200 | yes |"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, buf.String())
	}
	if !strings.Contains(buf.String(), "| ≤ 256 | **no** |") {
		t.Errorf("missed goal not flagged:\n%s", buf.String())
	}
}
