package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const fanOutBase = `
[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[allow]]
name = "r"
from = "zone:iot"
to = "any"
`

func TestFanOutKeys(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		want       FanOut
	}{
		{"peers with the default window", "max_peers = 20\n", FanOut{MaxPeers: 20, Window: time.Minute}},
		{"ports and a window", "max_ports = 5\nfanout_window = \"10s\"\n", FanOut{MaxPorts: 5, Window: 10 * time.Second}},
		{"both", "max_peers = 64\nmax_ports = 64\n", FanOut{MaxPeers: 64, MaxPorts: 64, Window: time.Minute}},
		{"none", "", FanOut{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("policy.toml", []byte(fanOutBase+tc.keys))
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Allows[0]
			if diff := cmp.Diff(tc.want, a.FanOut); diff != "" {
				t.Errorf("FanOut (-want +got):\n%s", diff)
			}
			if a.HasPico() != tc.want.Set() {
				t.Errorf("HasPico = %v with fan-out %+v", a.HasPico(), a.FanOut)
			}
		})
	}
}

func TestFanOutErrors(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		want       []string
	}{
		{"zero peers", "max_peers = 0\n", []string{`policy.toml:11:13: max_peers = 0: want 1 to 1024`}},
		{"too many ports", "max_ports = 5000\n", []string{`policy.toml:11:13: max_ports = 5000: want 1 to 1024`}},
		{"peers as a string", "max_peers = \"10\"\n", []string{`policy.toml:11:13: max_peers: expected integer, got string`}},
		{"product too large", "max_peers = 100\nmax_ports = 100\n",
			[]string{`policy.toml:12:13: max_peers 100 × max_ports 100 is more than 4096 peer and port pairs a device can be followed by; lower one of them`}},
		{"bad window", "max_peers = 3\nfanout_window = \"soon\"\n",
			[]string{`policy.toml:12:17: malformed duration "soon": want a Go duration such as 90s, 1h or 24h`}},
		{"window alone", "fanout_window = \"1m\"\n", []string{`policy.toml:11:17: fanout_window without max_peers or max_ports bounds nothing`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, errorLines(t, fanOutBase+tc.keys)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
