package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const gatewayZones = `[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]
`

func TestParseGateway(t *testing.T) {
	src := `[gateway]
addresses = ["10.88.0.1", "fd00:88::1", "10.88.0.1"]
dhcp = true
dns = false
ping = ["zone:lan", "net:10.88.0.0/28"]
` + gatewayZones + `
[[segment]]
from = "lan"
to = "gateway"
action = "allow"
`
	cfg, warns, err := Parse("policy.toml", []byte(src))
	if err != nil || len(warns) != 0 {
		t.Fatalf("Parse: %v %v", err, warns)
	}
	g := cfg.Gateway
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("10.88.0.1"), netip.MustParseAddr("fd00:88::1")}, g.Addrs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if g.Defaults[GatewayDHCP].Off || !g.Defaults[GatewayDNS].Off || g.Defaults[GatewayND].Off || len(g.Defaults[GatewayND].From) != 0 {
		t.Errorf("defaults %+v", g.Defaults)
	}
	if from := g.Defaults[GatewayPing].From; len(from) != 2 || from[0].String() != "zone:lan" || from[1].String() != "net:10.88.0.0/28" {
		t.Errorf("ping from %v", from)
	}
	if s := cfg.Segments[0]; s.To != GatewayZoneName || s.Action != SegmentAllow {
		t.Errorf("segment %+v", s)
	}
}

func TestParseGatewayErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown key, bad address, bad value, empty list, bad and unknown sources",
			src: `[gateway]
addresses = ["10.88.0.300"]
ntp = true
dns = "yes"
ping = []
dhcp = ["gateway", "zone:nowhere"]
` + gatewayZones,
			want: []string{
				`policy.toml:2:14: bad IP address "10.88.0.300"`,
				`policy.toml:3:1: unknown key "ntp" in [gateway]`,
				`policy.toml:4:7: dns: expected true, false or an array of sources such as ["zone:lan"], got string`,
				`policy.toml:5:8: ping: an empty list allows nobody; write ping = false to turn the default off`,
				`policy.toml:6:9: dhcp: "gateway" cannot be a source; it is only valid in to`,
				`policy.toml:6:20: unknown zone "nowhere"`,
			},
		},
		{
			name: "a zone named gateway",
			src:  gatewayZones + "\n[[zone]]\nname = \"gateway\"\n",
			want: []string{`policy.toml:6:8: zone name "gateway" is reserved: segments use it for the gateway itself`},
		},
		{
			name: "the gateway as a segment source",
			src:  gatewayZones + "\n[[segment]]\nfrom = \"gateway\"\nto = \"lan\"\naction = \"allow\"\n",
			want: []string{`policy.toml:6:8: "gateway" cannot be a segment's from: picoseg judges what reaches the gateway, not what it sends`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errorLines(t, tt.src)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
