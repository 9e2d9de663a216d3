// Package stats turns repeated measurements into the figures the benchmark
// reports: a median with its spread (min, max) beside a goal, and writes them
// as a markdown table and as JSON (bench.json).
//
// A figure that misses its goal is reported, never failed: the benchmark
// measures, it does not assert.
package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Direction says which side of the goal is good.
type Direction string

// The two directions a goal can point.
const (
	AtLeast Direction = "at_least" // the figure should be ≥ Goal
	AtMost  Direction = "at_most"  // the figure should be ≤ Goal
	Info    Direction = "info"     // no goal: reported for context
)

// Figure is one reported number: the median of its samples and their
// spread, with the goal it is held against.
type Figure struct {
	Key    string  `json:"-"`
	Title  string  `json:"title"`
	Unit   string  `json:"unit,omitempty"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// P25 and P75 bound the middle half of the samples (the interquartile
	// range): with a few wild samples on a shared machine, min and max say
	// little, the middle half says how far one run can be trusted.
	P25     float64   `json:"p25"`
	P75     float64   `json:"p75"`
	Goal    *float64  `json:"goal"`
	Dir     Direction `json:"direction"`
	Samples []float64 `json:"samples"`
	// Met is nil when the figure has no goal or no samples.
	Met  *bool  `json:"met"`
	Note string `json:"note,omitempty"`
}

// Summarize returns the median, minimum and maximum of samples; NaN for
// all three when there are none. Samples that are NaN are ignored.
func Summarize(samples []float64) (median, min, max float64) {
	s := make([]float64, 0, len(samples))
	for _, v := range samples {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

// Percentile returns the p-th percentile (0..100) of samples by the
// nearest-rank method, or NaN when there are none.
func Percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// Quartiles returns the 25th and 75th percentiles of samples, interpolated
// between the nearest ranks (the median of an even count is interpolated
// the same way); NaN for both when there are none. NaN samples are ignored.
func Quartiles(samples []float64) (p25, p75 float64) {
	s := make([]float64, 0, len(samples))
	for _, v := range samples {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN(), math.NaN()
	}
	sort.Float64s(s)
	at := func(q float64) float64 {
		pos := q * float64(len(s)-1)
		i := int(pos)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (pos-float64(i))*(s[i+1]-s[i])
	}
	return at(0.25), at(0.75)
}

// New returns the figure for samples held against goal in direction dir.
func New(key, title, unit string, dir Direction, goal float64, samples []float64) Figure {
	f := Figure{Key: key, Title: title, Unit: unit, Dir: dir, Samples: append([]float64{}, samples...)}
	f.Median, f.Min, f.Max = Summarize(samples)
	f.P25, f.P75 = Quartiles(samples)
	if dir != Info {
		g := goal
		f.Goal = &g
		if !math.IsNaN(f.Median) {
			met := f.Median >= goal
			if dir == AtMost {
				met = f.Median <= goal
			}
			f.Met = &met
		}
	}
	return f
}

// Report is the ordered list of figures of one benchmark run, with the
// conditions it ran under.
type Report struct {
	// Context describes the run: machine load, kernel, policy sizes.
	Context map[string]string
	Figures []Figure
	// Extra holds tables that are not figures, such as micro-benchmarks.
	Extra []Section
}

// Section is a titled block of markdown appended after the figures.
type Section struct {
	Title string
	Body  string
}

// Add appends f, replacing a figure with the same key.
func (r *Report) Add(f Figure) {
	for i := range r.Figures {
		if r.Figures[i].Key == f.Key {
			r.Figures[i] = f
			return
		}
	}
	r.Figures = append(r.Figures, f)
}

// Get returns the figure with key, if any.
func (r *Report) Get(key string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return Figure{}, false
}

// jsonFloat writes NaN and infinities as null, which JSON lacks.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

type jsonFigure struct {
	Title   string      `json:"title"`
	Unit    string      `json:"unit,omitempty"`
	Median  jsonFloat   `json:"median"`
	Min     jsonFloat   `json:"min"`
	Max     jsonFloat   `json:"max"`
	P25     jsonFloat   `json:"p25"`
	P75     jsonFloat   `json:"p75"`
	Goal    *jsonFloat  `json:"goal"`
	Dir     Direction   `json:"direction"`
	Met     *bool       `json:"met"`
	Samples []jsonFloat `json:"samples"`
	Note    string      `json:"note,omitempty"`
}

// MarshalJSON writes the report as one object: "context", and one key per
// figure holding median, min, max, goal (null when none) and the samples.
func (r *Report) MarshalJSON() ([]byte, error) {
	// Keys are written in the report's order, so bench.json diffs well.
	var b strings.Builder
	b.WriteString("{")
	ctx, err := json.Marshal(r.Context)
	if err != nil {
		return nil, err
	}
	b.WriteString(`"context":`)
	b.Write(ctx)
	for _, f := range r.Figures {
		jf := jsonFigure{Title: f.Title, Unit: f.Unit, Median: jsonFloat(f.Median), Min: jsonFloat(f.Min),
			Max: jsonFloat(f.Max), P25: jsonFloat(f.P25), P75: jsonFloat(f.P75), Dir: f.Dir, Met: f.Met, Note: f.Note, Samples: []jsonFloat{}}
		if f.Goal != nil {
			g := jsonFloat(*f.Goal)
			jf.Goal = &g
		}
		for _, s := range f.Samples {
			jf.Samples = append(jf.Samples, jsonFloat(s))
		}
		k, _ := json.Marshal(f.Key)
		v, err := json.Marshal(jf)
		if err != nil {
			return nil, err
		}
		b.WriteString(",")
		b.Write(k)
		b.WriteString(":")
		b.Write(v)
	}
	b.WriteString("}")
	return []byte(b.String()), nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	raw, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// WriteMarkdown writes the figures as a markdown table, then the context and
// the extra sections.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| figure | median | middle half (p25–p75) | min | max | n | goal | met |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|:---:|\n")
	for _, f := range r.Figures {
		goal, met := "—", "—"
		if f.Goal != nil {
			op := "≥"
			if f.Dir == AtMost {
				op = "≤"
			}
			goal = op + " " + format(*f.Goal)
		}
		if f.Met != nil {
			met = "yes"
			if !*f.Met {
				met = "**no**"
			}
		}
		title := f.Title
		if f.Unit != "" {
			title += " (" + f.Unit + ")"
		}
		iqr := "n/a"
		if !math.IsNaN(f.P25) {
			iqr = format(f.P25) + "–" + format(f.P75)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s | %s |\n", title, format(f.Median), iqr, format(f.Min), format(f.Max), len(f.Samples), goal, met)
	}
	var notes []string
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", f.Title, f.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(r.Context) > 0 {
		keys := make([]string, 0, len(r.Context))
		for k := range r.Context {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("\nConditions:\n\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s: %s\n", k, r.Context[k])
		}
	}
	for _, s := range r.Extra {
		fmt.Fprintf(&b, "\n### %s\n\n%s\n", s.Title, strings.TrimRight(s.Body, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// format prints a figure with about four significant digits.
func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
