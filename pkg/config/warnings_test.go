package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// warningLines parses src, which must load, and returns its warnings.
func warningLines(t *testing.T, src string) []string {
	t.Helper()
	cfg, warns, err := Parse("policy.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg == nil {
		t.Fatalf("Parse returned no Config and no error")
	}
	var lines []string
	for _, w := range warns {
		lines = append(lines, w.String())
	}
	return lines
}

func TestParseWarnings(t *testing.T) {
	const iot = `[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]
`
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a clean policy has no warnings",
			src:  iot + "[[zone]]\nname = \"wan\"\n[[segment]]\nfrom = \"iot\"\nto = \"wan\"\naction = \"micro\"\n",
		},
		{
			name: "networks with host bits set are masked",
			src:  "[[zone]]\nname = \"lan\"\nnetworks = [\"10.77.0.1/24\"]\n" + allowPolicy("from = \"net:192.168.1.7/16\"\nto = \"any\"\n")[1:],
			want: []string{
				`policy.toml:3:13: warning: network "10.77.0.1/24" has host bits set; using 10.77.0.0/24`,
				`policy.toml:17:8: warning: network "192.168.1.7/16" has host bits set; using 192.168.0.0/16`,
			},
		},
		{
			name: "a device with a MAC lists no IPv6 address in a zone with an IPv6 network",
			src:  "[[zone]]\nname = \"iot\"\nnetworks = [\"10.77.0.0/24\", \"fd00:77::/64\"]\n[[device]]\nname = \"cam\"\nmac = \"02:00:00:00:00:11\"\nip = [\"10.77.0.5\"]\n[[device]]\nname = \"hub\"\nmac = \"02:00:00:00:00:12\"\nip = [\"10.77.0.6\", \"fd00:77::6\"]\n",
			want: []string{
				`policy.toml:4:1: warning: device "cam" lists no IPv6 address, but its zone "iot" has the IPv6 network fd00:77::/64: its IPv6 traffic from any address but a link-local one is dropped as spoofing; list its IPv6 addresses`,
			},
		},
		{
			name: "device IP in no zone",
			src:  iot + "[[device]]\nname = \"cam\"\nip = [\"10.77.0.5\", \"10.99.0.5\"]\n",
			want: []string{
				`policy.toml:5:1: warning: device "cam" has no mac: it can only be identified by its address, which any host in its zone can claim`,
				`policy.toml:7:20: warning: IP 10.99.0.5 of device "cam" is in no zone's networks`,
			},
		},
		{
			name: "duplicate rules, services in another order",
			src: allowPolicy(`from = "group:cameras"
to = "device:nvr"
services = ["tcp/554", "udp/5000-5010"]

[[allow]]
name = "again"
from = "group:cameras"
to = "device:nvr"
services = ["udp/5000-5005", "tcp/554", "udp/5006-5010"]
hours = ["08:00-09:00"]
`),
			want: []string{`policy.toml:19:1: warning: allow rules "rule" and "again" are duplicates: same from, to and services ("rule" is at policy.toml:13:1)`},
		},
		{
			name: "a rule shadowed by an earlier unconstrained one",
			src: allowPolicy(`from = "group:cameras"
to = "device:nvr"
services = ["tcp"]

[[allow]]
name = "rtsp"
from = "group:cameras"
to = "device:nvr"
services = ["tcp/554"]
max_new_flows = "1/s"
`),
			want: []string{`policy.toml:19:1: warning: allow rule "rtsp" is shadowed by "rule" at policy.toml:13:1, which allows all of its services without constraints: "rtsp" never decides`},
		},
		{
			name: "no services means any and shadows everything",
			src: allowPolicy(`from = "any"
to = "gateway"

[[allow]]
name = "dns"
from = "any"
to = "gateway"
services = ["udp/53", "proto/47"]
`),
			want: []string{`policy.toml:18:1: warning: allow rule "dns" is shadowed by "rule" at policy.toml:13:1, which allows all of its services without constraints: "dns" never decides`},
		},
		{
			name: "an earlier rule with pico constraints does not shadow",
			src: allowPolicy(`from = "any"
to = "gateway"
hours = ["08:00-18:00"]

[[allow]]
name = "dns"
from = "any"
to = "gateway"
services = ["udp/53"]
`),
		},
		{
			name: "a later rule that is wider is not shadowed",
			src: allowPolicy(`from = "any"
to = "gateway"
services = ["udp/53"]

[[allow]]
name = "dns"
from = "any"
to = "gateway"
services = ["udp/53", "tcp/53"]
`),
		},
		{
			name: "rules with different endpoints never overlap",
			src: allowPolicy(`from = "group:cameras"
to = "gateway"

[[allow]]
name = "other"
from = "device:nvr"
to = "gateway"
`),
		},
		{
			name: "micro inside an unfiltered bridge",
			src:  iot + "[[segment]]\nfrom = \"iot\"\nto = \"iot\"\naction = \"micro\"\n",
			want: []string{`policy.toml:1:1: warning: same-bridge traffic in zone iot is not seen by the firewall without bridge_filter = true; micro rules between its devices cannot be enforced`},
		},
		{
			name: "micro inside an unfiltered bridge through a wildcard",
			src:  iot + "[[segment]]\nfrom = \"*\"\nto = \"*\"\naction = \"micro\"\n",
			want: []string{`policy.toml:1:1: warning: same-bridge traffic in zone iot is not seen by the firewall without bridge_filter = true; micro rules between its devices cannot be enforced`},
		},
		{
			name: "an exact segment overrides the wildcard",
			src:  iot + "[[segment]]\nfrom = \"*\"\nto = \"*\"\naction = \"micro\"\n[[segment]]\nfrom = \"iot\"\nto = \"iot\"\naction = \"deny\"\n",
		},
		{
			name: "bridge_filter lets picoseg see the bridge",
			src:  iot + "bridge_filter = true\n[[segment]]\nfrom = \"iot\"\nto = \"iot\"\naction = \"micro\"\n",
		},
		{
			name: "interfaces that are not bridges",
			src:  "[[zone]]\nname = \"iot\"\ninterfaces = [\"wlan0\"]\n[[segment]]\nfrom = \"iot\"\nto = \"iot\"\naction = \"micro\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, warningLines(t, tt.src)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWarningsComeBackWithErrors(t *testing.T) {
	_, warns, err := Parse("p.toml", []byte("[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.1/8\"]\n[daemon]\nqueues = 0\n"))
	if err == nil {
		t.Fatal("Parse accepted queues = 0")
	}
	if len(warns) != 1 {
		t.Errorf("warnings = %v, want the host-bits warning", warns)
	}
}
