package config

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// trickyTOML uses the corners of TOML syntax the reader must get right:
// multi-line strings holding brackets, quoted and escaped keys, dotted
// keys, a date-time with a space, arrays across lines with comments, and
// arrays of tables with sub-tables.
const trickyTOML = `# comment with = and [brackets]
title = """
multi-line "quoted"
 [not.a.table]
"""
'quoted key' = 'x'
"esc\u0041ped" = 1979-05-27 07:32:00Z
dotted . key = { inner = [1, # comment
   2,
   "three"], "q.k" = true }

[[a]]
x = 1
[[a]]
  x = 2
  [[a.b]]
  y = '''it's
'''
  [a.c]
  z = 3
[[a]]
x = 3
`

// nodeAt follows path (keys, and indexes into arrays) from n. found is
// false when path leads nowhere; n is then the last node on the way.
func nodeAt(n *node, path ...string) (_ *node, found bool) {
	for _, p := range path {
		if next, ok := n.fields[p]; ok {
			n = next
			continue
		}
		i, err := strconv.Atoi(p)
		if err != nil || i >= len(n.elems) {
			return n, false
		}
		n = n.elems[i]
	}
	return n, true
}

func TestReadTOMLPositions(t *testing.T) {
	root, rerr := readTOML(trickyTOML)
	if rerr != nil {
		t.Fatalf("readTOML: %d:%d: %s", rerr.at.line, rerr.at.col, rerr.msg)
	}
	value := func(path ...string) lineCol { n, _ := nodeAt(root, path...); return n.val }
	key := func(path ...string) lineCol {
		if n, ok := nodeAt(root, path...); ok {
			return n.key
		}
		return value(path...)
	}
	tests := []struct {
		name string
		got  lineCol
		want lineCol
	}{
		{"key after a multi-line string", key("quoted key"), lineCol{6, 1}},
		{"literal string value", value("quoted key"), lineCol{6, 16}},
		{"escaped quoted key", key("escAped"), lineCol{7, 1}},
		{"date-time value", value("escAped"), lineCol{7, 18}},
		{"dotted key part", key("dotted", "key"), lineCol{8, 10}},
		{"first dotted key part", key("dotted"), lineCol{8, 1}},
		{"inline table", value("dotted", "key"), lineCol{8, 16}},
		{"array element after a comment", value("dotted", "key", "inner", "1"), lineCol{9, 4}},
		{"array element on the next line", value("dotted", "key", "inner", "2"), lineCol{10, 4}},
		{"quoted key with a dot in an inline table", key("dotted", "key", "q.k"), lineCol{10, 14}},
		{"array of tables", value("a"), lineCol{12, 1}},
		{"first array table", value("a", "0"), lineCol{12, 1}},
		{"key of the second array table", key("a", "1", "x"), lineCol{15, 3}},
		{"nested array table", value("a", "1", "b", "0"), lineCol{16, 3}},
		{"key after a multi-line literal", key("a", "1", "c", "z"), lineCol{20, 3}},
		{"sub-table of an array element", value("a", "1", "c"), lineCol{19, 3}},
		{"third array table", value("a", "2", "x"), lineCol{22, 5}},
		{"unknown path falls back to its parent", value("a", "2", "nope"), lineCol{21, 1}},
		{"unknown root falls back to the start", value("nope"), lineCol{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestStricterThanTheLibrary is the attack: the TOML library lets a
// second array replace the first, so a rule that reads as tcp/22 only in
// the part of the file a reviewer sees would allow anything. The reader
// rejects every such redefinition, and nesting deep enough to exhaust a
// stack, and the loader reports it where it is.
func TestStricterThanTheLibrary(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // FILE:LINE:COL of the error
	}{
		{"services written twice", `[[zone]]
name = "iot"
networks = ["10.0.0.0/8"]
[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]
[[allow]]
name = "cameras-ssh"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/22"]
services = ["any"]
`, "policy.toml:12:1"},
		{"dotted keys into a table with a header", "[a.b]\nx = 1\n[a]\nb.y = 2\n", "policy.toml:4:1"},
		{"header after dotted keys", "a.b = 1\n[a]\n", "policy.toml:2:2"},
		{"header into an inline table", "a = { b = 1 }\n[a.c]\n", "policy.toml:2:2"},
		{"dotted key into an inline table", "a = { b = 1 }\na.c = 2\n", "policy.toml:2:1"},
		{"table defined after dotted keys through it", "[t]\nu.v = 1\n[t.u]\n", "policy.toml:3:4"},
		{"arrays nested too deeply", "a = " + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + "\n", "policy.toml:1:" + strconv.Itoa(5+maxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var root map[string]any
			if _, err := toml.Decode(tt.src, &root); err != nil {
				t.Fatalf("the TOML library rejects this too (%v): not a case where the reader is stricter", err)
			}
			_, _, err := Parse("policy.toml", []byte(tt.src))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want+": syntax error: ") {
				t.Errorf("Parse error = %v, want one at %s", err, tt.want)
			}
		})
	}
}

// tomlCorners are small documents, good and bad, at the corners of TOML
// where a reader may part from the TOML library: runs of quotes closing a
// multi-line string, escapes, numbers and dates, separators, headers.
var tomlCorners = []string{
	`a = """""""""`, `a = """"""`, `a = """""""`, `a = """"""""`, `a = ''''''`, `a = '''''''`, `a = ''''''''`, `a = '''''''''`,
	`a = """\""""""`, `a = """\"""""`, `a = """ \ """`, "a = \"\"\"x \\  \n  y\"\"\"", "a = \"\"\"x \\\r\n y\"\"\"",
	`a = "\u0000"`, `a = "\uD800"`, `a = "\U00110000"`, `a = "\x41"`, `a = "\e"`, `a = "\u00g1"`, `a = "\u+0ff"`,
	`a = 2020-01-01 1`, `a = 2020-01-01 10:00:00`, `a = 2020-01-01T10:00`, `a = 10:00`, `a = 1979-05-27 07:32:00 # c`,
	`a = 1e5`, `a = 01`, `a = +01`, `a = 1__0`, `a = _1`, `a = 0x`, `a = 9223372036854775808`, `a = -9223372036854775808`, `a = +inf`, `a = nan`,
	`a = tru`, `a = truex`, `a = [1,]`, `a = [,]`, `a = [1 2]`, "a = [\n1,\n#c\n2\n,]", `a = {}`, `a = {,}`, `a = {a=1,}`, `a = { a = 1 , b = 2 }`,
	"a=1\n\n\n  b  =  2  ", "[a]b=1", "[a] b=1", "[[a]]b=1", "[ a]\n[a ]", "[a.b]\n[a.b.c]\n[a]\n", "[[a.b]]\n[a]\n[[a.b]]", "[a]\n[[a.b]]\n[a.b]",
	"a.b = 1\na.c = 2\n", "a.b = 1\n[c]\n[a.d]\n", "x.y = 1\n[x.y.z]", "[a]\n[a.b]\nc=1\n[a.b.d]\n[a]", "a = [{}]\n[[a]]", "a = []\n[a.b]",
	"\"a\".b = 1", "'a'.\"b\" = 1", "a.\"\".b = 1", "a . b . c = 1", "1.2 = 3", "a-b_c = 1", "é = 1", "a = 1\r", "a = 1\r\nb = 2\r\n", "#x\r\n", "a=1#c",
	"a = \"x\"#c", "a = 'x'''", "a = \"\"\"\n\"\"\"", "a = '''\n'''", "a = '''\r\n'''", "a=\"\t\"", "a = 1979-05-27T07:32:00.123Z",
	"[x]\n[x.\"\"]\n", "[[\"a\"]]\n[[a]]", "a = [ [ ] , [ 1 ] ]", "a = { b = { c = { d = 1 } } }\n", "a={b.c=1,b.d=2}", "a={b.c=1,b={}}",
	"\ufeffa = 1", "a = \"\\\n\"", "a = \"\"\"\\\n\n\n   b\"\"\"", "a = \"\"\"\\t\"\"\"", "a = 1 2", "a = true false", "a =", "= 1", "a", "[a", "[[a]", "[[a] ]",
}

// TestReadTOMLMatchesLibrary checks the reader against the TOML library on
// text the policy files never hold but TOML allows, and on its corners.
func TestReadTOMLMatchesLibrary(t *testing.T) {
	for _, src := range slices.Concat(tomlCorners, fuzzSeeds, []string{
		trickyTOML,
		"a = 0x1F\nb = 0o17\nc = 0b11\nd = 1_000\ne = -0\nf = +7\ng = 3.5e2\nh = inf\ni = -nan\n",
		"d1 = 1979-05-27\nd2 = 07:32:00\nd3 = 1979-05-27T07:32:00\nd4 = 1979-05-27T00:32:00.999999-07:00\n",
		"s1 = \"tab\\t \\\"q\\\" \\u00e9 \\U0001F600 \\\\\"\ns2 = 'C:\\path'\n",
		"s3 = \"\"\"\\\n   folded \\\n   line\"\"\"\ns4 = '''\r\nraw\r\n'''\ns5 = \"\"\"two \"\"quotes\"\"\"\"\"\n",
		"a = [[1, 2], [\"x\"], [], [{b = 1}, {c.d = 2}]]\n[[t]]\n[t.u]\n[[t.u.v]]\nw = []\n[[t]]\n",
		"\"\" = 1\n'' . x = 2\n[b]\n[c.d.e]\n[c]\n[c.d]\n",
		"[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n",
		"a = 1 # comment\r\nb = { }\n  [ x . y ]  # c\n [[ z ]]\n",
	}) {
		checkReaderAgrees(t, []byte(src))
	}
}

// checkReaderAgrees fails t unless the reader and the TOML library agree
// on data: the same tree when the reader accepts it, a rejection by the
// library too unless the reader is stricter on purpose, and a position for
// every value.
func checkReaderAgrees(t *testing.T, data []byte) {
	t.Helper()
	src := stripBOM(string(data))
	root, rerr := readTOML(src)
	var want map[string]any
	_, err := toml.Decode(string(data), &want)
	switch {
	case rerr == nil && err != nil:
		t.Fatalf("reader accepts what the TOML library rejects (%v):\n%q", err, src)
	case rerr != nil && err == nil && !rerr.stricter:
		t.Fatalf("reader rejects what the TOML library accepts (%d:%d: %s):\n%q", rerr.at.line, rerr.at.col, rerr.msg, src)
	case rerr != nil:
		return
	}
	got := root.value()
	if !equalTrees(got, want) {
		t.Fatalf("trees differ for %q:\nreader %#v\nlibrary %#v", src, got, want)
	}
	checkPositioned(t, src, root)
}

// equalTrees is reflect.DeepEqual with NaN equal to NaN.
func equalTrees(a, b any) bool {
	switch a := a.(type) {
	case float64:
		bf, ok := b.(float64)
		return ok && (a == bf && math.Signbit(a) == math.Signbit(bf) || math.IsNaN(a) && math.IsNaN(bf))
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			if w, ok := bm[k]; !ok || !equalTrees(v, w) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !equalTrees(a[i], bs[i]) {
				return false
			}
		}
		return true
	case []map[string]any:
		bs, ok := b.([]map[string]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !equalTrees(a[i], bs[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// checkPositioned fails t unless every node of the tree has a position
// inside src, so that no error falls back to an approximate one.
func checkPositioned(t *testing.T, src string, root *node) {
	t.Helper()
	lines := int32(strings.Count(src, "\n") + 1)
	var walk func(n *node, path string, keyed bool)
	walk = func(n *node, path string, keyed bool) {
		if n.val.line < 1 || n.val.line > lines || n.val.col < 1 || keyed && (n.key.line < 1 || n.key.col < 1) {
			t.Fatalf("no position for %s in %q", path, src)
		}
		for k, f := range n.fields {
			walk(f, path+"."+k, true)
		}
		for i, e := range n.elems {
			// An element of [[an array of tables]] has its header's key.
			walk(e, path+"["+strconv.Itoa(i)+"]", n.kind == nodeTableArray)
		}
	}
	walk(root, "", false)
}
