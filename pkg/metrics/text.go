package metrics

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ContentType is the Content-Type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteTo writes every family in the text exposition format, sorted by
// name, and returns the number of bytes written. Callbacks run without the
// registry's lock held.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.appendText(nil))
	return int64(n), err
}

// appendText renders the page.
func (r *Registry) appendText(b []byte) []byte {
	r.mu.Lock()
	fams := make([]family, 0, len(r.families))
	for _, f := range r.families {
		c := *f
		c.series = slices.Clone(f.series)
		fams = append(fams, c)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })

	var cum []uint64
	for i := range fams {
		f := &fams[i]
		b = appendHeader(b, f)
		if f.collect != nil {
			f.collect(func(v float64, labels ...Label) {
				for _, l := range labels {
					// Label names are constants in the caller's code;
					// a bad one would break the whole page, so only
					// its series is left out.
					if !validLabelName(l.Name) {
						return
					}
				}
				b = appendSample(b, f.name, "", labels, nil, v)
			})
			continue
		}
		for _, s := range f.series {
			switch {
			case s.u64 != nil:
				b = appendSampleUint(b, f.name, s.labels, s.u64())
			case s.f64 != nil:
				b = appendSample(b, f.name, "", s.labels, nil, s.f64())
			case s.hist != nil:
				h := s.hist
				if cap(cum) < len(h.counts) {
					cum = make([]uint64, len(h.counts))
				}
				cum = cum[:len(h.counts)]
				sum := h.snapshot(cum)
				for j, c := range cum {
					le := math.Inf(1)
					if j < len(h.upper) {
						le = h.upper[j]
					}
					b = appendSample(b, f.name, "_bucket", s.labels, &Label{"le", formatFloat(le)}, float64(c))
				}
				b = appendSample(b, f.name, "_sum", s.labels, nil, sum)
				b = appendSampleUint(b, f.name+"_count", s.labels, cum[len(cum)-1])
			}
		}
	}
	return b
}

func appendHeader(b []byte, f *family) []byte {
	if f.help != "" {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.typ.String()...)
	return append(b, '\n')
}

func appendSample(b []byte, name, suffix string, labels []Label, extra *Label, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	b = appendLabels(b, labels, extra)
	b = append(b, ' ')
	b = append(b, formatFloat(v)...)
	return append(b, '\n')
}

// appendSampleUint writes an integer value exactly: counters fed from
// uint64 atomics lose nothing below 2⁶⁴.
func appendSampleUint(b []byte, name string, labels []Label, v uint64) []byte {
	b = append(b, name...)
	b = appendLabels(b, labels, nil)
	b = append(b, ' ')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

func appendLabels(b []byte, labels []Label, extra *Label) []byte {
	if len(labels) == 0 && extra == nil {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, l)
	}
	if extra != nil {
		if len(labels) > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, *extra)
	}
	return append(b, '}')
}

func appendLabel(b []byte, l Label) []byte {
	b = append(b, l.Name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, l.Value, true)
	return append(b, '"')
}

// appendEscaped escapes s for a label value (quote true: backslash, double
// quote and newline) or a HELP text (backslash and newline). Invalid UTF-8
// becomes U+FFFD: the format is UTF-8, and a value that is not would make
// the whole page unparsable.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// formatFloat formats v as the exposition format wants: shortest exact
// representation, "+Inf", "-Inf", "NaN".
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
