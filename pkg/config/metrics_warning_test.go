package config

import (
	"strings"
	"testing"
)

// check warns about a metrics endpoint other networks can reach.
func TestMetricsListenWarning(t *testing.T) {
	for _, tc := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:9107", false},
		{"[::1]:9107", false},
		{"127.0.0.53:9107", false},
		{"0.0.0.0:9107", true},
		{"[::]:9107", true},
		{"10.88.0.1:9107", true},
		{"[::ffff:127.0.0.1]:9107", false}, // IPv4 loopback, mapped
	} {
		t.Run(tc.listen, func(t *testing.T) {
			src := "[metrics]\nlisten = \"" + tc.listen + "\"\n"
			lines := warningLines(t, src)
			got := len(lines) == 1 && strings.HasPrefix(lines[0], "policy.toml:2:10: warning: listen \""+tc.listen+"\" is not a loopback address")
			if got != tc.warn || len(lines) > 1 {
				t.Fatalf("warnings %q; want a loopback warning: %v", lines, tc.warn)
			}
		})
	}
}
