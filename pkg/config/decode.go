package config

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// table is one table of a policy file together with what is needed to say
// where its keys and values are written.
//
// Values are read from the file's tree of nodes rather than decoded into
// structs: struct decoding stops at the first type mismatch, and the
// loader must report every problem at once.
type table struct {
	doc  *document
	path []string
	name string // how messages name the table: "[daemon]", "[[allow]]"
	n    *node
}

// document is one decoded policy file.
type document struct {
	file string
	diag *diagnostics
}

func (d *document) at(lc lineCol) Pos { return Pos{File: d.file, Line: int(lc.line), Col: int(lc.col)} }

func (t table) sub(key string) []string { return append(t.path[:len(t.path):len(t.path)], key) }

// Pos returns the position of the table itself: its header, or the brace
// of an inline table.
func (t table) Pos() Pos { return t.doc.at(t.n.val) }

// field returns the node of key. A key the table holds always has one; the
// table's own node stands in otherwise, so that a position is never lost.
func (t table) field(key string) *node {
	if n := t.n.fields[key]; n != nil {
		return n
	}
	return t.n
}

func (t table) keyPos(key string) Pos   { return t.doc.at(t.field(key).key) }
func (t table) valuePos(key string) Pos { return t.doc.at(t.field(key).val) }

func (t table) has(key string) bool {
	_, ok := t.n.fields[key]
	return ok
}

// value returns the value at key as the TOML library decodes it (nil when
// absent), for the few keys that take more than one type.
func (t table) value(key string) any {
	if n, ok := t.n.fields[key]; ok {
		return n.value()
	}
	return nil
}

func (t table) errorf(pos Pos, format string, args ...any) { t.doc.diag.errorf(pos, format, args...) }
func (t table) warnf(pos Pos, format string, args ...any)  { t.doc.diag.warnf(pos, format, args...) }

// checkKeys reports every key of the table that is not in known. A
// misspelt key silently ignored would loosen a firewall without a word.
func (t table) checkKeys(known ...string) {
	// Nearly always every key is known: say so without sorting anything.
	unknown := false
	for k := range t.n.fields {
		if !slices.Contains(known, k) {
			unknown = true
			break
		}
	}
	if !unknown {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(t.n.fields)) {
		if slices.Contains(known, k) {
			continue
		}
		if t.name == "" {
			t.errorf(t.keyPos(k), "unknown key %q", k)
		} else {
			t.errorf(t.keyPos(k), "unknown key %q in %s", k, t.name)
		}
	}
}

// typeName names a decoded TOML value's type the way the TOML spec does.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case map[string]any:
		return "table"
	case []any, []map[string]any:
		return "array"
	}
	return "value"
}

// typeName names the node's type the way the TOML spec does.
func (n *node) typeName() string {
	switch n.kind {
	case nodeString:
		return "string"
	case nodeScalar:
		return typeName(n.scalar)
	case nodeArray, nodeTableArray:
		return "array"
	}
	return "table"
}

func (t table) wrongType(key string, want string, n *node) {
	t.errorf(t.valuePos(key), "%s: expected %s, got %s", key, want, n.typeName())
}

// str returns the string at key. ok is false when the key is absent or
// holds something else (which is reported).
func (t table) str(key string) (s string, pos Pos, ok bool) {
	n, present := t.n.fields[key]
	if !present {
		return "", Pos{}, false
	}
	if n.kind != nodeString {
		t.wrongType(key, "string", n)
		return "", Pos{}, false
	}
	return n.str, t.doc.at(n.val), true
}

// integer returns the integer at key, like str.
func (t table) integer(key string) (i int64, pos Pos, ok bool) {
	n, present := t.n.fields[key]
	if !present {
		return 0, Pos{}, false
	}
	i, ok = n.scalar.(int64)
	if !ok {
		t.wrongType(key, "integer", n)
		return 0, Pos{}, false
	}
	return i, t.doc.at(n.val), true
}

// boolean returns the boolean at key, like str.
func (t table) boolean(key string) (b bool, ok bool) {
	n, present := t.n.fields[key]
	if !present {
		return false, false
	}
	b, ok = n.scalar.(bool)
	if !ok {
		t.wrongType(key, "boolean", n)
	}
	return b, ok
}

// positioned is one string of an array, with where it is written.
type positioned struct {
	s   string
	pos Pos
}

// strings returns the array of strings at key. Elements of another type
// are reported and left out.
func (t table) strings(key string) (list []positioned, ok bool) {
	n, present := t.n.fields[key]
	if !present {
		return nil, false
	}
	if n.kind != nodeArray {
		t.wrongType(key, "array of strings", n)
		return nil, false
	}
	ok = true
	list = make([]positioned, 0, len(n.elems))
	for i, e := range n.elems {
		if e.kind != nodeString {
			t.errorf(t.doc.at(e.val), "%s[%d]: expected string, got %s", key, i, e.typeName())
			ok = false
			continue
		}
		list = append(list, positioned{s: e.str, pos: t.doc.at(e.val)})
	}
	return list, ok
}

// table returns the table at key, written either as [parent.key] or as an
// inline table.
func (t table) table(key string) (table, bool) {
	n, present := t.n.fields[key]
	if !present {
		return table{}, false
	}
	if !n.isTable() {
		t.wrongType(key, "table", n)
		return table{}, false
	}
	return table{doc: t.doc, path: t.sub(key), name: key, n: n}, true
}

// tables returns the array of tables at key, written either as [[key]]
// sections or as an array of inline tables.
func (t table) tables(key string) []table {
	n, present := t.n.fields[key]
	if !present {
		return nil
	}
	if n.kind != nodeTableArray && n.kind != nodeArray {
		t.wrongType(key, "array of tables", n)
		return nil
	}
	name := "[[" + strings.Join(t.sub(key), ".") + "]]"
	list := make([]table, 0, len(n.elems))
	for i, e := range n.elems {
		if !e.isTable() {
			t.errorf(t.doc.at(e.val), "%s[%d]: expected table, got %s", key, i, e.typeName())
			continue
		}
		list = append(list, table{doc: t.doc, path: append(t.sub(key), strconv.Itoa(i)), name: name, n: e})
	}
	return list
}
