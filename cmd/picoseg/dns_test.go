package main

import (
	"strings"
	"testing"
)

// TestCheckSaysWhatDNSNamesCost: check says that dns: destinations queue
// DNS and for how long an answer opens its addresses; a policy without
// them says nothing of it.
func TestCheckSaysWhatDNSNamesCost(t *testing.T) {
	base := `
[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[device]]
name = "plug"
ip = ["10.77.0.5"]

[[allow]]
name = "cloud"
from = "device:plug"
services = ["tcp/443"]
`
	for _, tc := range []struct {
		to   string
		want bool
	}{
		{`to = "dns:*.tplinkcloud.com"`, true},
		{`to = "net:52.0.0.0/8"`, false},
	} {
		code, out, errs := runCmd(t, "check", "-c", writePolicy(t, "[dns]\ngrace = \"30s\"\n"+base+tc.to+"\n"))
		if code != 0 {
			t.Fatalf("check: exit %d: %s", code, errs)
		}
		got := strings.Contains(out, "dns: destinations: every DNS query and answer of the devices is judged in userspace; an answer's addresses open new flows for its TTL + 30s")
		if got != tc.want {
			t.Errorf("%s: check says %v of dns: destinations, want %v:\n%s", tc.to, got, tc.want, out)
		}
	}
}
