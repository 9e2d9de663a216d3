package config

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// table is one decoded TOML table together with what is needed to say
// where its keys and values are written.
//
// Values are read from the generic tree the TOML library builds (tables as
// map[string]any, arrays as []any or []map[string]any) rather than decoded
// into structs: struct decoding stops at the first type mismatch, and the
// loader must report every problem at once.
type table struct {
	doc  *document
	path []string
	name string // how messages name the table: "[daemon]", "[[allow]]"
	m    map[string]any
	pos  *posNode // where the table and its keys are written
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
func (t table) Pos() Pos { return t.doc.at(t.pos.val) }

// field returns the node of key. A key the table holds always has one; the
// table's own node stands in otherwise, so that a position is never lost.
func (t table) field(key string) *posNode {
	if n := t.pos.fields[key]; n != nil {
		return n
	}
	return t.pos
}

func (t table) keyPos(key string) Pos   { return t.doc.at(t.field(key).key) }
func (t table) valuePos(key string) Pos { return t.doc.at(t.field(key).val) }

// elemPos returns the position of element i of the array at key.
func (t table) elemPos(key string, i int) Pos {
	n := t.field(key)
	if i < len(n.elems) {
		return t.doc.at(n.elems[i].val)
	}
	return t.doc.at(n.val)
}

// elemNode returns the node of element i of the array at key.
func (t table) elemNode(key string, i int) *posNode {
	n := t.field(key)
	if i < len(n.elems) {
		return n.elems[i]
	}
	return n
}

func (t table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

func (t table) errorf(pos Pos, format string, args ...any) { t.doc.diag.errorf(pos, format, args...) }
func (t table) warnf(pos Pos, format string, args ...any)  { t.doc.diag.warnf(pos, format, args...) }

// checkKeys reports every key of the table that is not in known. A
// misspelt key silently ignored would loosen a firewall without a word.
func (t table) checkKeys(known ...string) {
	// Nearly always every key is known: say so without sorting anything.
	unknown := false
	for k := range t.m {
		if !slices.Contains(known, k) {
			unknown = true
			break
		}
	}
	if !unknown {
		return
	}
	for _, k := range sortedKeys(t.m) {
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

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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

func (t table) wrongType(key string, want string, v any) {
	t.errorf(t.valuePos(key), "%s: expected %s, got %s", key, want, typeName(v))
}

// str returns the string at key. ok is false when the key is absent or
// holds something else (which is reported).
func (t table) str(key string) (s string, pos Pos, ok bool) {
	v, present := t.m[key]
	if !present {
		return "", Pos{}, false
	}
	s, ok = v.(string)
	if !ok {
		t.wrongType(key, "string", v)
		return "", Pos{}, false
	}
	return s, t.valuePos(key), true
}

// integer returns the integer at key, like str.
func (t table) integer(key string) (n int64, pos Pos, ok bool) {
	v, present := t.m[key]
	if !present {
		return 0, Pos{}, false
	}
	n, ok = v.(int64)
	if !ok {
		t.wrongType(key, "integer", v)
		return 0, Pos{}, false
	}
	return n, t.valuePos(key), true
}

// boolean returns the boolean at key, like str.
func (t table) boolean(key string) (b bool, ok bool) {
	v, present := t.m[key]
	if !present {
		return false, false
	}
	b, ok = v.(bool)
	if !ok {
		t.wrongType(key, "boolean", v)
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
	v, present := t.m[key]
	if !present {
		return nil, false
	}
	arr, isArray := v.([]any)
	if !isArray {
		t.wrongType(key, "array of strings", v)
		return nil, false
	}
	ok = true
	for i, e := range arr {
		s, isString := e.(string)
		if !isString {
			t.errorf(t.elemPos(key, i), "%s[%d]: expected string, got %s", key, i, typeName(e))
			ok = false
			continue
		}
		list = append(list, positioned{s: s, pos: t.elemPos(key, i)})
	}
	return list, ok
}

// table returns the table at key, written either as [parent.key] or as an
// inline table.
func (t table) table(key string) (table, bool) {
	v, present := t.m[key]
	if !present {
		return table{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.wrongType(key, "table", v)
		return table{}, false
	}
	return table{doc: t.doc, path: t.sub(key), name: key, m: m, pos: t.field(key)}, true
}

// tables returns the array of tables at key, written either as [[key]]
// sections or as an array of inline tables.
func (t table) tables(key string) []table {
	v, present := t.m[key]
	if !present {
		return nil
	}
	name := "[[" + strings.Join(t.sub(key), ".") + "]]"
	var list []table
	switch arr := v.(type) {
	case []map[string]any:
		list = make([]table, 0, len(arr))
		for i, m := range arr {
			list = append(list, table{doc: t.doc, path: append(t.sub(key), strconv.Itoa(i)), name: name, m: m, pos: t.elemNode(key, i)})
		}
	case []any:
		for i, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				t.errorf(t.elemPos(key, i), "%s[%d]: expected table, got %s", key, i, typeName(e))
				continue
			}
			list = append(list, table{doc: t.doc, path: append(t.sub(key), strconv.Itoa(i)), name: name, m: m, pos: t.elemNode(key, i)})
		}
	default:
		t.wrongType(key, "array of tables", v)
	}
	return list
}
