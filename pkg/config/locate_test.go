package config

import (
	"testing"
)

// trickyTOML uses the corners of TOML syntax the position scanner must
// step over: multi-line strings holding brackets, quoted and escaped keys,
// dotted keys, a date-time with a space, arrays across lines with comments,
// and arrays of tables with sub-tables.
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

func TestLocateFindsKeysAndValues(t *testing.T) {
	p := locate("f.toml", trickyTOML)
	tests := []struct {
		name string
		got  Pos
		want Pos
	}{
		{"key after a multi-line string", p.key([]string{"quoted key"}), Pos{"f.toml", 6, 1}},
		{"literal string value", p.value([]string{"quoted key"}), Pos{"f.toml", 6, 16}},
		{"escaped quoted key", p.key([]string{"escAped"}), Pos{"f.toml", 7, 1}},
		{"date-time value", p.value([]string{"escAped"}), Pos{"f.toml", 7, 18}},
		{"dotted key part", p.key([]string{"dotted", "key"}), Pos{"f.toml", 8, 10}},
		{"inline table", p.value([]string{"dotted", "key"}), Pos{"f.toml", 8, 16}},
		{"array element after a comment", p.value([]string{"dotted", "key", "inner", "1"}), Pos{"f.toml", 9, 4}},
		{"array element on the next line", p.value([]string{"dotted", "key", "inner", "2"}), Pos{"f.toml", 10, 4}},
		{"quoted key with a dot in an inline table", p.key([]string{"dotted", "key", "q.k"}), Pos{"f.toml", 10, 14}},
		{"first array table", p.value([]string{"a", "0"}), Pos{"f.toml", 12, 1}},
		{"key of the second array table", p.key([]string{"a", "1", "x"}), Pos{"f.toml", 15, 3}},
		{"nested array table", p.value([]string{"a", "1", "b", "0"}), Pos{"f.toml", 16, 3}},
		{"key after a multi-line literal", p.key([]string{"a", "1", "c", "z"}), Pos{"f.toml", 20, 3}},
		{"sub-table of an array element", p.value([]string{"a", "1", "c"}), Pos{"f.toml", 19, 3}},
		{"third array table", p.value([]string{"a", "2", "x"}), Pos{"f.toml", 22, 5}},
		{"unknown path falls back to its parent", p.value([]string{"a", "2", "nope"}), Pos{"f.toml", 21, 1}},
		{"unknown root falls back to the start", p.value([]string{"nope"}), Pos{"f.toml", 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestLocateStopsQuietlyOnTextItDoesNotKnow(t *testing.T) {
	p := locate("f.toml", "a = 1\n?? = 2\nb = 3\n")
	if got, want := p.value([]string{"a"}), (Pos{"f.toml", 1, 5}); got != want {
		t.Errorf("position before the stop = %v, want %v", got, want)
	}
	if got, want := p.value([]string{"b"}), (Pos{"f.toml", 1, 1}); got != want {
		t.Errorf("position after the stop = %v, want the fallback %v", got, want)
	}
}
