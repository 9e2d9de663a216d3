package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDNSRuleDecodes(t *testing.T) {
	cfg, _, err := Parse("policy.toml", []byte(allowPolicy(`from = "any"
to = "gateway"
services = ["udp/53"]
app = "dns"
[allow.dns]
names = ["*.TPLinkCloud.com", "time-b.nist.gov."]
max_name = 100
max_entropy = 4.2
rate = "20/min"
`)))
	if err != nil {
		t.Fatal(err)
	}
	want := &DNSRule{Names: []string{"*.tplinkcloud.com", "time-b.nist.gov"}, MaxName: 100, MaxEntropy: 4.2, Rate: Rate{Count: 20, Per: time.Minute}}
	ignorePos := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())
	if diff := cmp.Diff(want, cfg.Allows[0].App.DNS, ignorePos); diff != "" {
		t.Errorf("DNS (-want +got):\n%s", diff)
	}
}

func TestDNSRuleErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"long max_name", "max_name = 300\n", "max_name = 300: want 1 to 253"},
		{"zero entropy", "max_entropy = 0\n", "max_entropy = 0: want more than 0"},
		{"entropy over 8", "max_entropy = 9.5\n", "max_entropy = 9.5"},
		{"entropy as text", "max_entropy = \"4\"\n", "max_entropy"},
		{"bad rate", "rate = \"fast\"\n", `malformed rate "fast"`},
		{"bad name", "names = [\"a.*.b\"]\n", "wildcards match whole leading labels only"},
		{"unknown key", "max_names = 3\n", `unknown key "max_names" in [allow.dns]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := errorLines(t, allowPolicy("from = \"any\"\nto = \"gateway\"\napp = \"dns\"\n[allow.dns]\n"+tc.body))
			if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", lines, tc.want)
			}
		})
	}
}
