package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// positions records where each key and each value of one TOML document is
// written.
//
// The TOML library keeps its key positions private and indexes them by
// dotted name, so the name of the third [[allow]] and the name of the first
// share one entry. A second, small pass over the text gives every element of
// every array its own path. It runs only on text the library has already
// accepted, so it can be lenient: when it meets something it does not
// understand it stops, and lookups fall back to the nearest enclosing
// position it did record.
type positions struct {
	file string
	keys map[string]lineCol // path → position of the key (or of the header's key)
	vals map[string]lineCol // path → position of the value (or of the table header)
}

// lineCol is a position within the positions' file. The maps hold one per
// key and value of the document, so they keep 8 bytes, not a whole Pos.
type lineCol struct{ line, col int32 }

func (p *positions) at(lc lineCol) Pos {
	return Pos{File: p.file, Line: int(lc.line), Col: int(lc.col)}
}

func compact(p Pos) lineCol { return lineCol{int32(p.Line), int32(p.Col)} }

// pathKey joins path elements with a byte that cannot occur unescaped in a
// TOML key, so that "a.b" as one quoted key differs from a.b.
func pathKey(path []string) string { return strings.Join(path, "\x00") }

// value returns the position of the value at path: the first byte of a
// scalar, the opening quote of a string, the bracket of an array or inline
// table, or the opening bracket of a table header.
func (p *positions) value(path []string) Pos {
	for n := len(path); n > 0; n-- {
		if lc, ok := p.vals[pathKey(path[:n])]; ok {
			return p.at(lc)
		}
	}
	return Pos{File: p.file, Line: 1, Col: 1}
}

// key returns the position of the key that names path.
func (p *positions) key(path []string) Pos {
	if lc, ok := p.keys[pathKey(path)]; ok {
		return p.at(lc)
	}
	return p.value(path)
}

// locate scans src, a document the TOML library has accepted, and records
// the positions of its keys and values. Columns count bytes from 1, as the
// TOML library's own error positions do.
func locate(file, src string) *positions {
	s := &scanner{
		src:  src,
		line: 1,
		// About one key a line: sized up front, the maps never rehash.
		pos: &positions{file: file, keys: make(map[string]lineCol, strings.Count(src, "\n")+1),
			vals: make(map[string]lineCol, strings.Count(src, "\n")+1)},
		aot: map[string]int{},
	}
	s.run()
	return s.pos
}

// run scans the whole document, or as much of it as the scanner
// understands.
func (s *scanner) run() {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(scanAbort); !ok {
				panic(r)
			}
		}
	}()
	s.document()
}

// scanAbort stops a scan that met text it does not understand. Positions
// recorded so far stay valid.
type scanAbort struct{}

type scanner struct {
	src       string
	off       int
	line      int
	lineStart int
	pos       *positions
	aot       map[string]int // resolved array-of-tables path → elements seen
	table     []string       // resolved path of the current table
}

func (s *scanner) abort() { panic(scanAbort{}) }

func (s *scanner) here() Pos {
	return Pos{File: s.pos.file, Line: s.line, Col: s.off - s.lineStart + 1}
}

func (s *scanner) peek() byte {
	if s.off < len(s.src) {
		return s.src[s.off]
	}
	return 0
}

func (s *scanner) peekAt(n int) byte {
	if s.off+n < len(s.src) {
		return s.src[s.off+n]
	}
	return 0
}

func (s *scanner) eof() bool { return s.off >= len(s.src) }

func (s *scanner) has(prefix string) bool { return strings.HasPrefix(s.src[s.off:], prefix) }

// advance consumes one byte, keeping line and column right across the
// newlines of multi-line strings.
func (s *scanner) advance() {
	if s.eof() {
		s.abort()
	}
	if s.src[s.off] == '\n' {
		s.line++
		s.lineStart = s.off + 1
	}
	s.off++
}

func (s *scanner) expect(c byte) {
	if s.peek() != c {
		s.abort()
	}
	s.advance()
}

func (s *scanner) skipBlanks() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.off++
	}
}

// skipTrivia skips blanks, newlines and comments.
func (s *scanner) skipTrivia() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance()
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

func (s *scanner) set(path []string, key, val Pos) {
	k := pathKey(path)
	if _, ok := s.pos.keys[k]; !ok {
		s.pos.keys[k] = compact(key)
	}
	if _, ok := s.pos.vals[k]; !ok {
		s.pos.vals[k] = compact(val)
	}
}

func (s *scanner) document() {
	for {
		s.skipTrivia()
		if s.eof() {
			return
		}
		start := s.off
		switch {
		case s.has("[["):
			s.header(true)
		case s.peek() == '[':
			s.header(false)
		default:
			s.keyValue(s.table)
		}
		if s.off == start {
			s.abort()
		}
	}
}

// header reads [a.b] or [[a.b]] and makes it the current table. A name
// that runs through an array of tables means its latest element, as in
// TOML itself.
func (s *scanner) header(array bool) {
	open := s.here()
	s.advance()
	if array {
		s.advance()
	}
	names, at := s.key()
	s.skipBlanks()
	s.expect(']')
	if array {
		s.expect(']')
	}
	var path []string
	for i, name := range names {
		path = append(path, name)
		last := i == len(names)-1
		if last && array {
			k := pathKey(path)
			n := s.aot[k]
			s.aot[k] = n + 1
			s.set(path, at[i], open)
			path = append(path, strconv.Itoa(n))
			s.set(path, at[i], open)
			break
		}
		if last {
			s.set(path, at[i], open)
			break
		}
		s.set(path, at[i], at[i])
		if n, ok := s.aot[pathKey(path)]; ok {
			path = append(path, strconv.Itoa(n-1))
		}
	}
	s.table = path
}

// keyValue reads key = value inside the table at base.
func (s *scanner) keyValue(base []string) {
	names, at := s.key()
	s.skipBlanks()
	s.expect('=')
	s.skipBlanks()
	path := append([]string(nil), base...)
	for i, name := range names {
		path = append(path, name)
		if i < len(names)-1 {
			s.set(path, at[i], at[i])
		}
	}
	s.pos.keys[pathKey(path)] = compact(at[len(at)-1])
	s.value(path)
}

// key reads a possibly dotted key and returns its parts and where each
// part starts.
func (s *scanner) key() ([]string, []Pos) {
	var (
		names []string
		at    []Pos
	)
	for {
		s.skipBlanks()
		at = append(at, s.here())
		switch s.peek() {
		case '"':
			names = append(names, s.basicString())
		case '\'':
			names = append(names, s.literalString())
		default:
			start := s.off
			for isBareKeyByte(s.peek()) {
				s.off++
			}
			if s.off == start {
				s.abort()
			}
			names = append(names, s.src[start:s.off])
		}
		s.skipBlanks()
		if s.peek() != '.' {
			return names, at
		}
		s.off++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// value records the position of the value at path and of everything
// inside it, and moves past it.
func (s *scanner) value(path []string) {
	s.pos.vals[pathKey(path)] = compact(s.here())
	switch {
	case s.has(`"""`):
		s.multiLineString(`"""`, true)
	case s.peek() == '"':
		s.basicString()
	case s.has(`'''`):
		s.multiLineString(`'''`, false)
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.advance()
		for i := 0; ; i++ {
			s.skipTrivia()
			if s.peek() == ']' {
				s.advance()
				return
			}
			s.value(append(path[:len(path):len(path)], strconv.Itoa(i)))
			s.skipTrivia()
			if s.peek() == ',' {
				s.advance()
			}
		}
	case s.peek() == '{':
		s.advance()
		for {
			s.skipTrivia()
			if s.peek() == '}' {
				s.advance()
				return
			}
			s.keyValue(path)
			s.skipTrivia()
			if s.peek() == ',' {
				s.advance()
			}
		}
	default:
		s.scalar()
	}
}

// scalar skips a number, boolean or date-time. A date and a time may be
// separated by one space ("1979-05-27 07:32:00"), so a space after a date
// does not end the value.
func (s *scanner) scalar() {
	start := s.off
	for {
		for !s.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(s.peek())) {
			s.off++
		}
		if s.peek() == ' ' && isDate(s.src[start:s.off]) && isDigit(s.peekAt(1)) {
			s.off++
			continue
		}
		break
	}
	if s.off == start {
		s.abort()
	}
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

// basicString reads a "double-quoted" string and returns its value, which
// matters when it is a key.
func (s *scanner) basicString() string {
	s.expect('"')
	var b strings.Builder
	for {
		c := s.peek()
		switch {
		case c == '"':
			s.advance()
			return b.String()
		case c == '\\':
			s.advance()
			b.WriteString(s.escape())
		case c == '\n' || s.eof():
			s.abort()
		default:
			b.WriteByte(c)
			s.advance()
		}
	}
}

// escape decodes the escape sequence after a backslash.
func (s *scanner) escape() string {
	c := s.peek()
	s.advance()
	switch c {
	case 'b':
		return "\b"
	case 't':
		return "\t"
	case 'n':
		return "\n"
	case 'f':
		return "\f"
	case 'r':
		return "\r"
	case 'e':
		return "\x1b"
	case '"', '\\':
		return string(c)
	case 'x':
		return s.hexRune(2)
	case 'u':
		return s.hexRune(4)
	case 'U':
		return s.hexRune(8)
	}
	s.abort()
	return ""
}

// hexRune decodes the n hex digits of a \x, \u or \U escape.
func (s *scanner) hexRune(n int) string {
	if s.off+n > len(s.src) {
		s.abort()
	}
	r, err := strconv.ParseUint(s.src[s.off:s.off+n], 16, 32)
	if err != nil {
		s.abort()
	}
	s.off += n
	return string(utf8.AppendRune(nil, rune(r)))
}

func (s *scanner) literalString() string {
	s.expect('\'')
	start := s.off
	for s.peek() != '\'' {
		if s.peek() == '\n' || s.eof() {
			s.abort()
		}
		s.off++
	}
	v := s.src[start:s.off]
	s.off++
	return v
}

// multiLineString skips a multi-line string. Up to two quotes may sit just
// before the closing delimiter and belong to the content.
func (s *scanner) multiLineString(delim string, escapes bool) {
	s.off += len(delim)
	for {
		switch {
		case s.has(delim):
			s.off += len(delim)
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.off++
			}
			return
		case escapes && s.peek() == '\\':
			s.advance()
			s.advance()
		default:
			s.advance()
		}
	}
}
