package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAlertInventoryMetrics(t *testing.T) {
	src := `
[alert]
window = "2m"
scan_threshold = 50

[[alert.sink]]
type = "syslog"

[[alert.sink]]
type = "syslog"
address = "tls://siem.example.net:6514"
ca = "/etc/picoseg/siem-ca.pem"

[[alert.sink]]
type = "jsonl"
path = "/var/log/picoseg/alerts.jsonl"
max_size = "5MB"
keep = 3

[inventory]
leases = "/tmp/dhcp.leases"
unknown_group = "quarantine"
state = "/var/lib/picoseg/devices.json"

[metrics]
listen = "127.0.0.1:9107"

[[group]]
name = "quarantine"
`
	cfg, warns, err := Parse("policy.toml", []byte(src))
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: %v %v", err, warns)
	}
	if cfg.Alert.Window != 2*time.Minute || cfg.Alert.ScanWindow != 10*time.Second || cfg.Alert.ScanThreshold != 50 {
		t.Errorf("alert %+v", cfg.Alert)
	}
	type sink struct {
		Type, Address, CA, Path string
		MaxSize                 int64
		Keep                    int
	}
	var got []sink
	for _, s := range cfg.Alert.Sinks {
		got = append(got, sink{s.Type, s.Address, s.CA, s.Path, s.MaxSize, s.Keep})
	}
	want := []sink{
		{Type: "syslog"},
		{Type: "syslog", Address: "tls://siem.example.net:6514", CA: "/etc/picoseg/siem-ca.pem"},
		{Type: "jsonl", Path: "/var/log/picoseg/alerts.jsonl", MaxSize: 5_000_000, Keep: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sinks (-want +got):\n%s", diff)
	}
	if p := cfg.Alert.Sinks[1].FieldPos["address"]; p.Line != 11 || p.Col != 11 {
		t.Errorf("address written at %v, want policy.toml:11:11", p)
	}
	if cfg.Inventory != (Inventory{Leases: "/tmp/dhcp.leases", UnknownGroup: "quarantine", State: "/var/lib/picoseg/devices.json", Pos: cfg.Inventory.Pos}) {
		t.Errorf("inventory %+v", cfg.Inventory)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9107" {
		t.Errorf("metrics %+v", cfg.Metrics)
	}
}

func TestAlertInventoryMetricsErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown sink key", "[[alert.sink]]\ntype = \"syslog\"\nadress = \"udp://x:514\"\n",
			[]string{`policy.toml:3:1: unknown key "adress" in [[alert.sink]]`}},
		{"sink without a type", "[[alert.sink]]\npath = \"/tmp/a\"\n",
			[]string{`policy.toml:1:1: [[alert.sink]] needs a type: "syslog" or "jsonl"`}},
		{"bad window", "[alert]\nwindow = \"soon\"\n",
			[]string{`policy.toml:2:10: window must be a positive duration such as "60s", not "soon"`}},
		{"bad listen address", "[metrics]\nlisten = \"localhost\"\n",
			[]string{`policy.toml:2:10: listen must be an address and port such as "127.0.0.1:9107", not "localhost"`}},
		{"unknown quarantine group", "[inventory]\nunknown_group = \"quarantine\"\n",
			[]string{`policy.toml:2:17: unknown_group "quarantine" is not a [[group]]`}},
		{"bad max_size", "[[alert.sink]]\ntype = \"jsonl\"\npath = \"/tmp/a\"\nmax_size = \"lots\"\n",
			[]string{`policy.toml:4:12: max_size: malformed size "lots": ` + errSizeSyntax}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorLines(t, tt.src)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("(-want +got)\n-%s\n+%s", strings.Join(tt.want, "\n-"), strings.Join(got, "\n+"))
			}
		})
	}
}
