package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMQTTRuleDecodes(t *testing.T) {
	const head = "from = \"any\"\nto = \"any\"\nservices = [\"tcp/1883\"]\napp = \"mqtt\"\n"
	tests := []struct {
		name string
		body string
		want *MQTTRule
	}{
		{"client ids only", head + "[allow.mqtt]\nclient_ids = [\"cam-*\", \"nvr\"]\n",
			&MQTTRule{ClientIDs: []string{"cam-*", "nvr"}}},
		{"topics", head + "[allow.mqtt]\npublish = [\"cam/+/status\", \"cam/#\"]\nsubscribe = [\"cmd/cam/#\"]\n",
			&MQTTRule{Publish: []string{"cam/+/status", "cam/#"}, Subscribe: []string{"cmd/cam/#"}}},
		// An empty list is kept apart from an absent key: it restricts
		// topics to none of that kind.
		{"subscribe nothing", head + "mqtt = { publish = [\"a\"], subscribe = [] }\n",
			&MQTTRule{Publish: []string{"a"}, Subscribe: []string{}}},
		{"no table", head, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("policy.toml", []byte(allowPolicy(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			app := cfg.Allows[0].App
			if app == nil || app.Proto != "mqtt" {
				t.Fatalf("App = %+v", app)
			}
			ignorePos := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())
			if diff := cmp.Diff(tc.want, app.MQTT, ignorePos); diff != "" {
				t.Errorf("MQTT (-want +got):\n%s", diff)
			}
			if tc.want != nil && (tc.want.Subscribe == nil) != (app.MQTT.Subscribe == nil) {
				t.Errorf("subscribe nil %v, want %v", app.MQTT.Subscribe == nil, tc.want.Subscribe == nil)
			}
		})
	}
}

// TestMQTTRuleErrors checks each error names the file, line and column of
// the offending value.
func TestMQTTRuleErrors(t *testing.T) {
	const head = "from = \"any\"\nto = \"any\"\napp = \"mqtt\"\n[allow.mqtt]\n"
	tests := []struct{ name, line, bad, want string }{
		{"bad publish filter", `publish = ["ok", "cam/#/x"]`, `"cam/#/x"`, `publish: "cam/#/x" is not an MQTT topic filter`},
		{"bad subscribe filter", `subscribe = ["a+"]`, `"a+"`, `subscribe: "a+" is not an MQTT topic filter`},
		{"empty filter", `subscribe = [""]`, `""`, `subscribe: "" is not an MQTT topic filter`},
		{"empty client id", `client_ids = ["x", ""]`, `""`, `client_ids: "" is not a client id pattern`},
		{"empty client ids", `client_ids = []`, `[]`, `client_ids is empty`},
		{"unknown key", `topics = ["a"]`, `topics`, `unknown key "topics" in [allow.mqtt]`},
		{"wrong type", `publish = "a/b"`, `"a/b"`, `publish: expected array of strings, got string`},
		{"filter not string", `publish = [1]`, `1`, `publish[0]: expected string, got integer`},
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

// TestEncryptedPortWarnings: an MQTT rule on 8883 or a CoAP rule on 5684
// names a plain protocol on its encrypted port: warned, at the app key.
func TestEncryptedPortWarnings(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"from = \"any\"\nto = \"any\"\nservices = [\"tcp/8883\"]\napp = \"mqtt\"\n", `app = "mqtt" on port 8883 is MQTT over TLS`},
		{"from = \"any\"\nto = \"any\"\nservices = [\"udp/5683-5684\"]\napp = \"coap\"\n", `app = "coap" on port 5684 is CoAP over DTLS`},
		{"from = \"any\"\nto = \"any\"\nservices = [\"tcp/1883\"]\napp = \"mqtt\"\n", ""},
		{"from = \"any\"\nto = \"any\"\nservices = [\"tcp/8883\"]\napp = \"tls\"\n", ""},
	} {
		src := allowPolicy(tc.body)
		lines := warningLines(t, src)
		found := ""
		for _, l := range lines {
			if strings.Contains(l, "encrypted") || strings.Contains(l, " over ") {
				found = l
			}
		}
		appLine := strings.Count(src[:strings.Index(src, "app = ")], "\n") + 1
		switch {
		case tc.want == "" && found != "":
			t.Errorf("%q: warned %q", tc.body, found)
		case tc.want != "" && (!strings.Contains(found, tc.want) || !strings.HasPrefix(found, fmt.Sprintf("policy.toml:%d:7: ", appLine))):
			t.Errorf("%q: warnings %q, want one at line %d with %q", tc.body, lines, appLine, tc.want)
		}
	}
}
