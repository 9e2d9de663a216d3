package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppRuleDecodes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *AppRule
	}{
		{"no app", `from = "any"
to = "any"
`, nil},
		{"tls with names", `from = "any"
to = "any"
services = ["tcp/443"]
app = "tls"
[allow.tls]
server_names = ["*.TPLinkCloud.com", "hue.example."]
ech = "allow"
`, &AppRule{Proto: "tls", Unidentified: "deny",
			TLS: &TLSRule{ServerNames: []string{"*.tplinkcloud.com", "hue.example"}, NoSNI: "deny", ECH: "allow"}}},
		{"tls without table", `from = "any"
to = "any"
app = "tls"
unidentified = "allow"
`, &AppRule{Proto: "tls", Unidentified: "allow"}},
		{"http inline", `from = "any"
to = "any"
app = "http"
http = { hosts = ["example.com"], methods = ["GET", "HEAD"] }
`, &AppRule{Proto: "http", Unidentified: "deny",
			HTTP: &HTTPRule{Hosts: []string{"example.com"}, Methods: []string{"GET", "HEAD"}}}},
		{"modbus", `from = "any"
to = "any"
app = "modbus"
[allow.modbus]
writes = [5, 6]
units = [1, 247]
`, &AppRule{Proto: "modbus", Unidentified: "deny",
			Modbus: &ModbusRule{ReadOnly: true, Writes: []uint8{5, 6}, Units: []uint8{1, 247}}}},
	}
	ignorePos := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("policy.toml", []byte(allowPolicy(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cfg.Allows[0].App, ignorePos); diff != "" {
				t.Errorf("App (-want +got):\n%s", diff)
			}
			if tc.want != nil && !cfg.Allows[0].HasPico() {
				t.Errorf("a rule with app has no pico constraint")
			}
		})
	}
}

func TestAppRuleErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"unknown app", "from = \"any\"\nto = \"any\"\napp = \"ssh\"\n", `unknown app "ssh"`},
		{"table without app", "from = \"any\"\nto = \"any\"\n[allow.tls]\nserver_names = [\"a.b\"]\n", `[allow.tls] without app = "tls"`},
		{"table of another app", "from = \"any\"\nto = \"any\"\napp = \"http\"\n[allow.tls]\nserver_names = [\"a.b\"]\n", `[allow.tls] in a rule with app = "http"`},
		{"unknown tls key", "from = \"any\"\nto = \"any\"\napp = \"tls\"\n[allow.tls]\nserver_name = [\"a.b\"]\n", `unknown key "server_name" in [allow.tls]`},
		{"bad wildcard", "from = \"any\"\nto = \"any\"\napp = \"tls\"\n[allow.tls]\nserver_names = [\"a.*.b\"]\n", `wildcards match whole leading labels only`},
		{"star alone", "from = \"any\"\nto = \"any\"\napp = \"tls\"\n[allow.tls]\nserver_names = [\"*\"]\n", `matches every name`},
		{"bad no_sni", "from = \"any\"\nto = \"any\"\napp = \"tls\"\n[allow.tls]\nno_sni = \"maybe\"\n", `no_sni = "maybe"`},
		{"bad unidentified", "from = \"any\"\nto = \"any\"\napp = \"tls\"\nunidentified = \"pass\"\n", `unidentified = "pass"`},
		{"unidentified alone", "from = \"any\"\nto = \"any\"\nunidentified = \"allow\"\n", `unidentified without app`},
		{"bad method", "from = \"any\"\nto = \"any\"\napp = \"http\"\n[allow.http]\nmethods = [\"get\"]\n", `"get" is not an HTTP method`},
		{"bad function", "from = \"any\"\nto = \"any\"\napp = \"modbus\"\n[allow.modbus]\nwrites = [0, 200]\n", `writes[0]: want an integer from 1 to 127`},
		{"read_only false with writes", "from = \"any\"\nto = \"any\"\napp = \"modbus\"\n[allow.modbus]\nread_only = false\nwrites = [5]\n", `writes would narrow nothing`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := errorLines(t, allowPolicy(tc.body))
			if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", lines, tc.want)
			}
		})
	}
}
