package config

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// basicString reads a "double-quoted" string.
func (r *reader) basicString() (string, bool) {
	at := r.here()
	r.off++
	start := r.off
	i := strings.IndexAny(r.rest(), "\"\\\r\n")
	if i >= 0 && r.src[r.off+i] == '"' {
		r.off += i + 1
		return r.src[start : r.off-1], true // no escapes: the text is the value
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(r.rest(), "\"\\\r\n")
		if i < 0 || r.src[r.off+i] == '\r' || r.src[r.off+i] == '\n' {
			return "", r.fail(at, "strings cannot contain newlines")
		}
		b.WriteString(r.src[r.off : r.off+i])
		r.off += i
		if r.src[r.off] == '"' {
			r.off++
			return b.String(), true
		}
		if !r.escape(&b) {
			return "", false
		}
	}
}

// escape decodes the escape sequence at r.off (a backslash) into b.
func (r *reader) escape(b *strings.Builder) bool {
	at := r.here()
	r.off++
	c := r.peek()
	r.off++
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case '"', '\\':
		b.WriteByte(c)
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if r.off+n > len(r.src) {
			return r.fail(at, "bad unicode escape")
		}
		v, err := strconv.ParseUint(r.src[r.off:r.off+n], 16, 32)
		if err != nil || strings.ContainsAny(r.src[r.off:r.off+n], "+-_") || !utf8.ValidRune(rune(v)) {
			return r.fail(at, "bad unicode escape")
		}
		r.off += n
		b.WriteRune(rune(v))
	default:
		return r.fail(at, "bad escape sequence")
	}
	return true
}

// literalString reads a 'single-quoted' string, which has no escapes.
func (r *reader) literalString() (string, bool) {
	at := r.here()
	r.off++
	i := strings.IndexAny(r.rest(), "'\r\n")
	if i < 0 || r.src[r.off+i] != '\'' {
		return "", r.fail(at, "strings cannot contain newlines")
	}
	s := r.src[r.off : r.off+i]
	r.off += i + 1
	return s, true
}

// multiLineString reads a string between """ or ”' (delim). A newline
// right after the opening delimiter is not part of the value; up to two
// quotes just before the closing one are.
func (r *reader) multiLineString(delim string) (string, bool) {
	at := r.here()
	q := delim[0]
	start := r.off + 3
	end := start
	for {
		i := strings.IndexByte(r.src[end:], q)
		if q == '"' {
			i = strings.IndexAny(r.src[end:], `"\`)
		}
		if i < 0 {
			return "", r.fail(at, "unterminated multi-line string")
		}
		end += i
		if r.src[end] == '\\' {
			end += 2 // the escaped character cannot close the string
			if end > len(r.src) {
				return "", r.fail(at, "unterminated multi-line string")
			}
			continue
		}
		run := 0
		for end+run < len(r.src) && r.src[end+run] == q {
			run++
		}
		if run < 3 {
			end += run
			continue
		}
		if run > 5 {
			// TOML allows two quotes before the closing three. The TOML
			// library lets six or more through after an escaped backslash.
			return "", r.failStricter(at, "too many quotes at the end of a multi-line string")
		}
		body := r.src[start : end+run-3]
		r.advanceTo(end + run)
		if strings.HasPrefix(body, "\r\n") {
			body = body[2:]
		} else {
			body = strings.TrimPrefix(body, "\n")
		}
		if q == '\'' {
			return body, true
		}
		return r.multiLineEscapes(body, at)
	}
}

// multiLineEscapes decodes the escapes of a """ string's body, where a
// backslash at the end of a line also removes the newline and the
// whitespace after it.
func (r *reader) multiLineEscapes(body string, at lineCol) (string, bool) {
	if !strings.Contains(body, `\`) {
		return body, true
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(body, '\\')
		if i < 0 {
			b.WriteString(body)
			return b.String(), true
		}
		b.WriteString(body[:i])
		j := i + 1
		for j < len(body) && (body[j] == ' ' || body[j] == '\t') {
			j++
		}
		if j < len(body) && (body[j] == '\n' || body[j] == '\r') {
			body = strings.TrimLeft(body[j:], " \t\r\n")
			continue
		}
		// An ordinary escape: decode it with the single-line rules.
		sub := &reader{src: body[i:]}
		if !sub.escape(&b) {
			return "", r.fail(at, sub.err.msg)
		}
		body = body[i+sub.off:]
	}
}

// scalar reads a number, boolean or date-time. Booleans and plain decimal
// integers, the only scalars a policy has, are read here; the rarer forms
// (floats, hexadecimal, octal and binary integers, dates and times) are
// handed to the TOML library, one value at a time, so that they mean
// exactly what the library makes of them.
func (r *reader) scalar() (any, bool) {
	at := r.here()
	start := r.off
	for {
		for r.off < len(r.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(r.src[r.off])) {
			r.off++
		}
		// A date and a time may be separated by one space.
		if r.peek() == ' ' && isDate(r.src[start:r.off]) && r.off+1 < len(r.src) && isDigit(r.src[r.off+1]) {
			r.off++
			continue
		}
		break
	}
	tok := r.src[start:r.off]
	switch tok {
	case "":
		return nil, r.fail(at, "expected a value")
	case "true":
		return true, true
	case "false":
		return false, true
	}
	if isPlainInteger(tok) {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return nil, r.fail(at, "integer out of range")
		}
		return n, true
	}
	var one map[string]any
	if _, err := toml.Decode("v = "+tok, &one); err != nil {
		return nil, r.fail(at, "bad value "+strconv.Quote(tok))
	}
	switch v := one["v"].(type) {
	case int64, float64, time.Time:
		return v, true
	}
	return nil, r.fail(at, "bad value "+strconv.Quote(tok))
}

// isPlainInteger reports whether tok is a decimal integer without
// underscores or leading zeros.
func isPlainInteger(tok string) bool {
	digits := strings.TrimLeft(tok, "+-")
	if len(tok)-len(digits) > 1 || digits == "" || len(digits) > 1 && digits[0] == '0' {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDate(v string) bool {
	if len(v) != len("2006-01-02") || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i, c := range []byte(v) {
		if i != 4 && i != 7 && !isDigit(c) {
			return false
		}
	}
	return true
}
