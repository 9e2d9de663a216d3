package mud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxFileSize bounds a MUD file. Published MUD files are a few kilobytes;
// the largest MUDgee writes for a chatty device are tens of kilobytes.
const MaxFileSize = 1 << 20

// maxDepth bounds how deeply a file nests: a MUD file is about eight
// levels deep, and a hostile one must not exhaust the stack.
const maxDepth = 32

// Error is a problem with the MUD file itself: where, and what.
type Error struct {
	// Path is where in the file, as keys and list indexes joined by "/";
	// "" for the file as a whole.
	Path string
	Msg  string
	// Err is the cause a caller may test for (ErrTooLarge), or nil.
	Err error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Error formats the error as "mud: PATH: MSG".
func (e *Error) Error() string {
	if e.Path == "" {
		return "mud: " + e.Msg
	}
	return "mud: " + e.Path + ": " + e.Msg
}

// ErrTooLarge is returned (wrapped in an *Error) for a file over MaxFileSize.
var ErrTooLarge = errors.New("file larger than the limit")

func errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// node is one JSON value with the path it was found at.
type node struct {
	path string
	v    any // map[string]*node, []*node, string, json.Number, bool, nil
	keys []string
}

// decodeTree reads one JSON document. Unlike json.Unmarshal it refuses a
// key written twice in one object (the standard decoder keeps the last, so
// a second "protocol" further down would silently change what an entry
// matches, while a reviewer reads the first) and bounds the nesting.
func decodeTree(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := decodeValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf("", "not valid JSON: data after the top-level value")
	}
	return root, nil
}

func decodeValue(dec *json.Decoder, path string, depth int) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(dec, err)
	}
	n := &node{path: path}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		n.v = tok
		return n, nil
	}
	if depth >= maxDepth {
		return nil, errorf(path, "nested more than %d deep", maxDepth)
	}
	switch d {
	case '{':
		m := map[string]*node{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, syntaxError(dec, err)
			}
			k := kt.(string) // the decoder only returns strings as keys
			if _, dup := m[k]; dup {
				return nil, errorf(join(path, k), "key written twice")
			}
			child, err := decodeValue(dec, join(path, k), depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = child
			n.keys = append(n.keys, k)
		}
		n.v = m
	case '[':
		var list []*node
		for i := 0; dec.More(); i++ {
			child, err := decodeValue(dec, path+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, child)
		}
		if list == nil {
			list = []*node{}
		}
		n.v = list
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return nil, syntaxError(dec, err)
	}
	return n, nil
}

func syntaxError(dec *json.Decoder, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return errorf("", "not valid JSON at byte %d: %v", dec.InputOffset(), err)
}

// join adds key to path. A key is the file's to choose: it is clipped
// and stripped of control characters before it can reach a terminal.
func join(path, key string) string {
	if path == "" {
		return clip(key)
	}
	return path + "/" + clip(key)
}

// typeName names a JSON value's type for error messages.
func typeName(v any) string {
	switch v.(type) {
	case map[string]*node:
		return "an object"
	case []*node:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	}
	return "null"
}

func (n *node) wrongType(want string) error {
	return errorf(n.path, "want %s, got %s", want, typeName(n.v))
}

// object returns n as an object.
func (n *node) object() (map[string]*node, error) {
	m, ok := n.v.(map[string]*node)
	if !ok {
		return nil, n.wrongType("an object")
	}
	return m, nil
}

// list returns n as a list.
func (n *node) list() ([]*node, error) {
	l, ok := n.v.([]*node)
	if !ok {
		return nil, n.wrongType("a list")
	}
	return l, nil
}

// str returns n as a string.
func (n *node) str() (string, error) {
	s, ok := n.v.(string)
	if !ok {
		return "", n.wrongType("a string")
	}
	return s, nil
}

// integer returns n as a whole number in [lo, hi].
func (n *node) integer(lo, hi int64) (int64, error) {
	num, ok := n.v.(json.Number)
	if !ok {
		return 0, n.wrongType("a number")
	}
	i, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || i < lo || i > hi {
		return 0, errorf(n.path, "want a whole number from %d to %d, got %s", lo, hi, num)
	}
	return i, nil
}

// empty reports whether n is the YANG "empty" leaf as JSON writes it,
// [null], which MUD uses for same-manufacturer, local-networks and
// my-controller.
func (n *node) empty() error {
	if l, ok := n.v.([]*node); ok && len(l) == 1 && l[0].v == nil {
		return nil
	}
	return errorf(n.path, "want [null], got %s", typeName(n.v))
}

// field returns the member key of an object node, or nil.
func field(m map[string]*node, key string) *node {
	if m == nil {
		return nil
	}
	return m[key]
}

// firstField returns the first of keys present in m, with its key.
func firstField(m map[string]*node, keys ...string) (*node, string) {
	for _, k := range keys {
		if n := m[k]; n != nil {
			return n, k
		}
	}
	return nil, ""
}
