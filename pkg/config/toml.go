package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// readTOML reads one TOML document in a single pass into a tree of nodes:
// each value (tables and arrays too) with where it and its key are
// written. Its values are those the TOML library decodes; node.value gives
// them in the library's own shapes.
//
// Reading the positions while the values are read is what makes a large
// policy load fast: the TOML library keeps its key positions private, and
// indexes them by dotted name, so they cannot tell one [[allow]] from the
// next. The reader is strict TOML 1.0, and stricter than the library on
// purpose where the library is lax: a key or table is defined once (and
// nesting is bounded, see maxDepth). The library lets
// a second array value replace the first ("services" written twice keeps
// the last), lets dotted keys and headers add to tables already closed,
// and a firewall policy must not be loosened by a line further down that
// nobody reads.
//
// On text it does not accept, the reader returns a *readError and the
// caller asks the TOML library for its own, well-known wording of the
// problem; only where the library accepts the text is the reader's own
// message shown.
func readTOML(src string) (*node, *readError) {
	if err := checkText(src); err != nil {
		return nil, err
	}
	r := &reader{src: src, line: 1}
	root := r.newNode(nodeImplicit, lineCol{1, 1})
	root.key = lineCol{1, 1}
	if !r.document(root) {
		return nil, r.err
	}
	return root, nil
}

// node is one value of a document, where it and its key are written, and
// how it came to be, which decides whether a later line may redefine it or
// add to it. A table holds its keys' nodes in fields, an array (of tables
// or of values) its elements' nodes in elems.
type node struct {
	key, val lineCol
	kind     nodeKind
	str      string // a string's value
	scalar   any    // any other scalar's value: int64, float64, bool or time.Time
	fields   map[string]*node
	elems    []*node
}

// nodeKind says how a value came to be, which decides whether a later line
// may add to it or define it.
type nodeKind uint8

const (
	nodeString     nodeKind = iota // a string
	nodeScalar                     // a number, boolean or date-time
	nodeArray                      // an array written inline: closed
	nodeImplicit                   // a table named only on the way to another ([a] in [a.b]): may be defined once
	nodeHeader                     // a table defined by its [header]
	nodeDotted                     // a table made by dotted keys (a.b = 1): dotted keys may add to it
	nodeInline                     // an inline table: closed
	nodeTableArray                 // an array of tables, made by [[headers]]: [[headers]] may add to it
)

// lineCol is a position within one file. Columns count bytes from 1, as
// the TOML library's own error positions do.
type lineCol struct{ line, col int32 }

// readError is why the reader did not accept a document.
type readError struct {
	at  lineCol
	msg string
	// stricter marks the errors where the reader refuses on purpose what
	// the TOML library accepts: a key or table defined twice, or added to
	// once closed, and nesting deeper than maxDepth.
	stricter bool
}

// maxDepth bounds how deeply arrays and inline tables nest, so that a
// hostile file cannot make the reader recurse without end.
const maxDepth = 256

type reader struct {
	src       string
	off       int
	line      int
	lineStart int
	depth     int
	parts     []keyPart // the key being read; reused
	slab      []node    // nodes are handed out from here, a few allocations for a whole file
	err       *readError
}

// keyPart is one part of a possibly dotted key.
type keyPart struct {
	name string
	at   lineCol
}

func (r *reader) newNode(kind nodeKind, val lineCol) *node {
	if len(r.slab) == 0 {
		r.slab = make([]node, 256)
	}
	n := &r.slab[0]
	r.slab = r.slab[1:]
	n.kind, n.val = kind, val
	return n
}

func (r *reader) here() lineCol {
	return lineCol{int32(r.line), int32(r.off - r.lineStart + 1)}
}

// fail records the first problem and returns false, so that every step can
// end with `return r.fail(...)`.
func (r *reader) fail(at lineCol, msg string) bool {
	if r.err == nil {
		r.err = &readError{at: at, msg: msg}
	}
	return false
}

func (r *reader) failStricter(at lineCol, msg string) bool {
	r.fail(at, msg)
	r.err.stricter = true
	return false
}

// headerTable returns the table that a header's name going through n
// means, and false when n is not a table that headers may name. A name
// that runs through an array of tables means its latest element.
func headerTable(n *node) (*node, bool) {
	switch n.kind {
	case nodeImplicit, nodeHeader, nodeDotted:
		return n, true
	case nodeTableArray:
		if len(n.elems) > 0 {
			return n.elems[len(n.elems)-1], true
		}
	}
	return nil, false
}

func (r *reader) peek() byte {
	if r.off < len(r.src) {
		return r.src[r.off]
	}
	return 0
}

func (r *reader) rest() string { return r.src[r.off:] }

// newline consumes "\n" or "\r\n" if one is next.
func (r *reader) newline() bool {
	switch {
	case r.peek() == '\n':
		r.off++
	case strings.HasPrefix(r.rest(), "\r\n"):
		r.off += 2
	default:
		return false
	}
	r.line++
	r.lineStart = r.off
	return true
}

// advanceTo moves to off, counting the newlines on the way.
func (r *reader) advanceTo(off int) {
	span := r.src[r.off:off]
	if n := strings.Count(span, "\n"); n > 0 {
		r.line += n
		r.lineStart = r.off + strings.LastIndexByte(span, '\n') + 1
	}
	r.off = off
}

func (r *reader) skipBlanks() {
	for r.off < len(r.src) && (r.src[r.off] == ' ' || r.src[r.off] == '\t') {
		r.off++
	}
}

func (r *reader) skipComment() {
	if r.peek() != '#' {
		return
	}
	if i := strings.IndexByte(r.rest(), '\n'); i >= 0 {
		r.off += i
		if r.off > 0 && r.src[r.off-1] == '\r' {
			r.off--
		}
		return
	}
	r.off = len(r.src)
}

// skipTrivia skips blanks, comments and newlines.
func (r *reader) skipTrivia() {
	for {
		r.skipBlanks()
		r.skipComment()
		if !r.newline() {
			return
		}
	}
}

// endOfLine reads what may follow a key/value pair or a header: blanks, a
// comment, then a newline or the end of the file.
func (r *reader) endOfLine() bool {
	r.skipBlanks()
	r.skipComment()
	if r.off == len(r.src) || r.newline() {
		return true
	}
	return r.fail(r.here(), "expected a newline after a key/value pair or a table header")
}

// checkText rejects what the TOML library rejects wherever it occurs: text
// that is not UTF-8, and control characters other than tab, newline and the
// carriage return of a "\r\n".
func checkText(src string) *readError {
	bad := -1
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c >= 0x20 && c != 0x7f || c == '\t' || c == '\n' || c == '\r' && i+1 < len(src) && src[i+1] == '\n' {
			continue
		}
		bad = i
		break
	}
	if bad < 0 && !utf8.ValidString(src) {
		for i, c := range src {
			if c == utf8.RuneError {
				bad = i
				break
			}
		}
	}
	if bad < 0 {
		return nil
	}
	line := strings.Count(src[:bad], "\n") + 1
	col := bad - (strings.LastIndexByte(src[:bad], '\n') + 1) + 1
	return &readError{at: lineCol{int32(line), int32(col)}, msg: "control character or invalid UTF-8"}
}

// document reads the whole text: key/value pairs, [tables] and [[arrays of
// tables]].
func (r *reader) document(root *node) bool {
	cur := root
	for {
		r.skipTrivia()
		if r.off == len(r.src) {
			return true
		}
		ok := false
		switch {
		case strings.HasPrefix(r.rest(), "[["):
			cur, ok = r.header(root, nodeTableArray)
		case r.peek() == '[':
			cur, ok = r.header(root, nodeHeader)
		default:
			ok = r.keyValue(cur)
		}
		if !ok || !r.endOfLine() {
			return false
		}
	}
}

// key reads a possibly dotted key into r.parts.
func (r *reader) key() bool {
	r.parts = r.parts[:0]
	for {
		r.skipBlanks()
		at := r.here()
		var name string
		switch {
		case strings.HasPrefix(r.rest(), `"""`), strings.HasPrefix(r.rest(), `'''`):
			return r.fail(at, "a key cannot be a multi-line string")
		case r.peek() == '"':
			s, ok := r.basicString()
			if !ok {
				return false
			}
			name = s
		case r.peek() == '\'':
			s, ok := r.literalString()
			if !ok {
				return false
			}
			name = s
		default:
			start := r.off
			for r.off < len(r.src) && isBareKeyByte(r.src[r.off]) {
				r.off++
			}
			if r.off == start {
				return r.fail(at, "expected a key")
			}
			name = r.src[start:r.off]
		}
		r.parts = append(r.parts, keyPart{name: name, at: at})
		r.skipBlanks()
		if r.peek() != '.' {
			return true
		}
		r.off++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// header reads [a.b] or [[a.b]] (kind nodeHeader or nodeTableArray) and
// returns the table that the following key/value pairs fill. A name that
// runs through an array of tables means its latest element.
func (r *reader) header(root *node, kind nodeKind) (*node, bool) {
	open := r.here()
	r.off++
	if kind == nodeTableArray {
		r.off++
	}
	if !r.key() {
		return nil, false
	}
	r.skipBlanks()
	closing := "]"
	if kind == nodeTableArray {
		closing = "]]"
	}
	if !strings.HasPrefix(r.rest(), closing) {
		return nil, r.fail(r.here(), "expected "+closing+" to end the table header")
	}
	r.off += len(closing)
	cur := root
	for _, p := range r.parts[:len(r.parts)-1] {
		next, ok := r.descendHeader(cur, p)
		if !ok {
			return nil, false
		}
		cur = next
	}
	last := r.parts[len(r.parts)-1]
	if kind == nodeTableArray {
		return r.appendTable(cur, last, open)
	}
	return r.defineTable(cur, last, open)
}

// descendHeader goes from cur to its sub-table p on the way to a header's
// table, making an implicit table where there is none yet.
func (r *reader) descendHeader(cur *node, p keyPart) (*node, bool) {
	n, present := cur.fields[p.name]
	if !present {
		return r.addTable(cur, p, p.at, nodeImplicit), true
	}
	if next, ok := headerTable(n); ok {
		return next, true
	}
	return nil, r.failStricter(p.at, strconv.Quote(p.name)+" is already defined as a value, not a table")
}

// defineTable defines the table p of cur for a [header].
func (r *reader) defineTable(cur *node, p keyPart, open lineCol) (*node, bool) {
	n, present := cur.fields[p.name]
	if !present {
		return r.addTable(cur, p, open, nodeHeader), true
	}
	if n.kind != nodeImplicit {
		return nil, r.failStricter(p.at, "table "+strconv.Quote(p.name)+" is already defined")
	}
	n.kind = nodeHeader
	return n, true
}

// appendTable adds a table to the array of tables p of cur for a
// [[header]].
func (r *reader) appendTable(cur *node, p keyPart, open lineCol) (*node, bool) {
	n, present := cur.fields[p.name]
	if !present {
		n = r.addTable(cur, p, open, nodeTableArray)
	} else if n.kind != nodeTableArray {
		return nil, r.failStricter(p.at, strconv.Quote(p.name)+" is already defined and is not an array of tables")
	}
	elem := r.newNode(nodeHeader, open)
	elem.key = p.at
	n.elems = append(n.elems, elem)
	return elem, true
}

// addTable makes a new empty table (or array of tables) p in cur.
func (r *reader) addTable(cur *node, p keyPart, val lineCol, kind nodeKind) *node {
	n := r.newNode(kind, val)
	n.key = p.at
	setField(cur, p.name, n)
	return n
}

func setField(parent *node, name string, n *node) {
	if parent.fields == nil {
		parent.fields = make(map[string]*node, 8)
	}
	parent.fields[name] = n
}

// keyValue reads key = value into cur. The parts of a dotted key before
// the last make (or go through) tables that dotted keys made.
func (r *reader) keyValue(cur *node) bool {
	if !r.key() {
		return false
	}
	r.skipBlanks()
	if r.peek() != '=' {
		return r.fail(r.here(), "expected = after a key")
	}
	r.off++
	r.skipBlanks()
	for _, p := range r.parts[:len(r.parts)-1] {
		n, present := cur.fields[p.name]
		switch {
		case !present:
			cur = r.addTable(cur, p, p.at, nodeDotted)
		case n.kind == nodeDotted:
			cur = n
		default:
			return r.failStricter(p.at, strconv.Quote(p.name)+" is already defined; dotted keys cannot add to it")
		}
	}
	last := r.parts[len(r.parts)-1] // r.parts is reused by the value
	if _, present := cur.fields[last.name]; present {
		return r.failStricter(last.at, "key "+strconv.Quote(last.name)+" is already defined")
	}
	n, ok := r.value()
	if !ok {
		return false
	}
	n.key = last.at
	setField(cur, last.name, n)
	return true
}

// value reads one value into a new node.
func (r *reader) value() (*node, bool) {
	at := r.here()
	rest := r.rest()
	switch {
	case strings.HasPrefix(rest, `"""`), strings.HasPrefix(rest, "'''"):
		n := r.newNode(nodeString, at)
		s, ok := r.multiLineString(rest[:3])
		n.str = s
		return n, ok
	case r.peek() == '"':
		n := r.newNode(nodeString, at)
		s, ok := r.basicString()
		n.str = s
		return n, ok
	case r.peek() == '\'':
		n := r.newNode(nodeString, at)
		s, ok := r.literalString()
		n.str = s
		return n, ok
	case r.peek() == '[', r.peek() == '{':
		if r.depth++; r.depth > maxDepth {
			return nil, r.failStricter(at, "arrays and inline tables nest too deeply")
		}
		defer func() { r.depth-- }()
		if r.peek() == '[' {
			return r.array(r.newNode(nodeArray, at))
		}
		return r.inlineTable(r.newNode(nodeInline, at))
	}
	n := r.newNode(nodeScalar, at)
	v, ok := r.scalar()
	n.scalar = v
	return n, ok
}

// array reads [v, ...] into n; it may run over lines and hold comments.
func (r *reader) array(n *node) (*node, bool) {
	r.off++
	for {
		r.skipTrivia()
		if r.peek() == ']' {
			r.off++
			return n, true
		}
		e, ok := r.value()
		if !ok {
			return nil, false
		}
		if n.elems == nil {
			n.elems = make([]*node, 0, 2) // most arrays in a policy hold one or two
		}
		n.elems = append(n.elems, e)
		r.skipTrivia()
		switch r.peek() {
		case ',':
			r.off++
		case ']':
			r.off++
			return n, true
		default:
			return nil, r.fail(r.here(), "expected , or ] in an array")
		}
	}
}

// inlineTable reads { k = v, ... } on one line into n.
func (r *reader) inlineTable(n *node) (*node, bool) {
	r.off++
	n.fields = map[string]*node{}
	r.skipBlanks()
	if r.peek() == '}' {
		r.off++
		return n, true
	}
	for {
		if !r.keyValue(n) {
			return nil, false
		}
		r.skipBlanks()
		switch r.peek() {
		case ',':
			r.off++
			r.skipBlanks()
			if r.peek() == '}' {
				return nil, r.fail(r.here(), "trailing comma in an inline table")
			}
		case '}':
			r.off++
			return n, true
		default:
			return nil, r.fail(r.here(), "expected , or } in an inline table")
		}
	}
}

// value returns the node's value in the shapes the TOML library decodes
// to: tables as map[string]any, arrays of tables as []map[string]any,
// other arrays as []any.
func (n *node) value() any {
	switch n.kind {
	case nodeString:
		return n.str
	case nodeScalar:
		return n.scalar
	case nodeArray:
		arr := make([]any, len(n.elems))
		for i, e := range n.elems {
			arr[i] = e.value()
		}
		return arr
	case nodeTableArray:
		arr := make([]map[string]any, len(n.elems))
		for i, e := range n.elems {
			arr[i] = e.value().(map[string]any)
		}
		return arr
	}
	m := make(map[string]any, len(n.fields))
	for k, f := range n.fields {
		m[k] = f.value()
	}
	return m
}

// isTable reports whether n is a table, however it was written.
func (n *node) isTable() bool {
	switch n.kind {
	case nodeImplicit, nodeHeader, nodeDotted, nodeInline:
		return true
	}
	return false
}
