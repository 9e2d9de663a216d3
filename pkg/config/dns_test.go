package config

import (
	"strings"
	"testing"
	"time"
)

const dnsBase = `
[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[zone]]
name = "wan"
interfaces = ["eth0"]
networks = ["0.0.0.0/0"]

[[group]]
name = "plugs"

[[device]]
name = "plug"
ip = ["10.77.0.5"]
groups = ["plugs"]
`

func TestDNSEndpoint(t *testing.T) {
	for _, tc := range []struct {
		to, want, err string
	}{
		{"dns:Devs.TPLinkCloud.com.", "dns:devs.tplinkcloud.com", ""},
		{"dns:*.tplinkcloud.com", "dns:*.tplinkcloud.com", ""},
		{"dns:*.a.b.c.d.e.f", "dns:*.a.b.c.d.e.f", ""},
		{"dns:*.a.b.c.d.e.f.g", "", "at most 6 labels"},
		{"dns:a..b", "", "label \"\""},
		{"dns:a.*.b", "", "only letters"},
		{"dns:ex ample.com", "", "only letters"},
		{"dns:" + strings.Repeat("a", 64) + ".com", "", "1 to 63"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			cfg, _, err := Parse("p.toml", []byte(dnsBase+`
[[allow]]
name = "cloud"
from = "device:plug"
to = "`+tc.to+`"
services = ["tcp/443"]
`))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Allows[0].To; got.Kind != EndpointDNS || got.String() != tc.want {
				t.Errorf("to = %v (%d), want %s", got, got.Kind, tc.want)
			}
		})
	}
}

func TestDNSEndpointNotASource(t *testing.T) {
	_, _, err := Parse("p.toml", []byte(dnsBase+`
[[allow]]
name = "x"
from = "dns:example.com"
to = "any"
`))
	if err == nil || !strings.Contains(err.Error(), "cannot be a source") {
		t.Errorf("error %v", err)
	}
}

func TestDNSGrace(t *testing.T) {
	for _, tc := range []struct {
		text string
		want time.Duration
		err  string
	}{
		{"", 0, ""},
		{"[dns]\ngrace = \"10s\"\n", 10 * time.Second, ""},
		{"[dns]\ngrace = \"0s\"\n", 0, "more than zero"},
		{"[dns]\ngrace = \"2h\"\n", 0, "more than"},
		{"[dns]\ngrase = \"2s\"\n", 0, "grase"},
	} {
		cfg, _, err := Parse("p.toml", []byte(tc.text+dnsBase))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.text, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DNS.Grace != tc.want {
			t.Errorf("%q: grace %v, want %v", tc.text, cfg.DNS.Grace, tc.want)
		}
	}
}

func TestDNSWarnsAboutUnseenResolvers(t *testing.T) {
	rule := `
[[allow]]
name = "cloud"
from = "device:plug"
to = "dns:*.tplinkcloud.com"
services = ["tcp/443"]
`
	for _, tc := range []struct {
		name, extra string
		warn        bool
	}{
		{"DoT to the internet", `
[[allow]]
name = "dot"
from = "group:plugs"
to = "zone:wan"
services = ["tcp/853"]
`, true},
		{"any service to the internet", `
[[allow]]
name = "all"
from = "any"
to = "zone:wan"
`, true},
		{"plain DNS to another resolver", `
[[allow]]
name = "google"
from = "device:plug"
to = "net:8.8.8.8/32"
services = ["udp/53"]
`, true},
		{"DNS to the gateway only (control)", `
[[allow]]
name = "gw"
from = "device:plug"
to = "gateway"
services = ["udp/53", "tcp/53"]
`, false},
		{"another device's DoT (control)", `
[[device]]
name = "tv"
ip = ["10.77.0.9"]

[[allow]]
name = "dot"
from = "device:tv"
to = "zone:wan"
services = ["tcp/853"]
`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, warns, err := Parse("p.toml", []byte(dnsBase+rule+tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, w := range warns {
				if strings.Contains(w.Msg, "resolver other than the gateway") {
					got = true
				}
			}
			if got != tc.warn {
				t.Errorf("warned %v, want %v: %v", got, tc.warn, warns)
			}
		})
	}
}

func TestDNSWarnsAboutShadowedChecks(t *testing.T) {
	rule := `
[[allow]]
name = "plug-dns"
from = "device:plug"
to = "gateway"
services = ["udp/53"]
app = "dns"
[allow.dns]
max_name = 60
`
	for _, tc := range []struct {
		name, gateway string
		warn          bool
	}{
		{"the default on", "", true},
		{"the default off (control)", "[gateway]\ndns = false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, warns, err := Parse("p.toml", []byte(tc.gateway+dnsBase+rule))
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, w := range warns {
				got = got || strings.Contains(w.Msg, "default DNS service accepts them first")
			}
			if got != tc.warn {
				t.Errorf("warned %v, want %v: %v", got, tc.warn, warns)
			}
		})
	}
}
