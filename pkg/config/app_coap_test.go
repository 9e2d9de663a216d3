package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCoAPRuleDecodes(t *testing.T) {
	const head = "from = \"any\"\nto = \"any\"\nservices = [\"udp/5683\"]\napp = \"coap\"\n"
	tests := []struct {
		name string
		body string
		want *CoAPRule
	}{
		{"get only", head + "[allow.coap]\nmethods = [\"GET\"]\npaths = [\"/sensors/*\", \"/\"]\n",
			&CoAPRule{Methods: []string{"GET"}, Paths: []string{"/sensors/*", "/"}}},
		{"inline", head + "coap = { methods = [\"GET\", \"FETCH\", \"iPATCH\"] }\n",
			&CoAPRule{Methods: []string{"GET", "FETCH", "iPATCH"}}},
		{"no table", head, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("policy.toml", []byte(allowPolicy(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			app := cfg.Allows[0].App
			if app == nil || app.Proto != "coap" {
				t.Fatalf("App = %+v", app)
			}
			ignorePos := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())
			if diff := cmp.Diff(tc.want, app.CoAP, ignorePos); diff != "" {
				t.Errorf("CoAP (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCoAPRuleErrors(t *testing.T) {
	const head = "from = \"any\"\nto = \"any\"\napp = \"coap\"\n[allow.coap]\n"
	tests := []struct{ name, line, bad, want string }{
		{"lower-case method", `methods = ["GET", "get"]`, `"get"`, `methods: "get" is not a CoAP method`},
		{"http method", `methods = ["OPTIONS"]`, `"OPTIONS"`, `methods: "OPTIONS" is not a CoAP method`},
		{"empty methods", `methods = []`, `[]`, `methods is empty`},
		{"relative path", `paths = ["sensors/*"]`, `"sensors/*"`, `paths: "sensors/*" does not start with "/"`},
		{"inner **", `paths = ["/a/**/b"]`, `"/a/**/b"`, `paths: "/a/**/b" has "**" other than as its whole last segment`},
		{"dot segment", `paths = ["/a/.."]`, `"/a/.."`, `paths: "/a/.." has a dot segment`},
		{"unknown key", `path = ["/a"]`, `path`, `unknown key "path" in [allow.coap]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := allowPolicy(head + tc.line + "\n")
			lineNo := strings.Count(src[:strings.Index(src, tc.line)], "\n") + 1
			col := strings.Index(tc.line, tc.bad) + 1
			want := fmt.Sprintf("policy.toml:%d:%d: %s", lineNo, col, tc.want)
			lines := errorLines(t, src)
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, want)
			}
			if !found {
				t.Errorf("errors %q, want one starting %q", lines, want)
			}
		})
	}
}
