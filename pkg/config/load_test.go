package config

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cmpConfig compares configs field by field. Locations are compared by
// name, since two loads of one zone give two distinct values.
var cmpConfig = cmp.Options{
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func mustLoadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	return loc
}

func TestLoadHomePolicy(t *testing.T) {
	main := filepath.Join("testdata", "home.toml")
	devices := filepath.Join("testdata", "rules.d", "10-devices.toml")
	allows := filepath.Join("testdata", "rules.d", "20-allow.toml")
	at := func(file string, line int) Pos { return Pos{File: file, Line: line, Col: 1} }

	cfg, warns, err := Load(main)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The NVR is known by its addresses alone, which is worth a warning.
	if len(warns) != 1 || warns[0].Pos != at(devices, 7) || !strings.Contains(warns[0].Msg, `"nvr" has no mac`) {
		t.Errorf("warnings %v, want one about the nvr's missing mac", warns)
	}
	want := &Config{
		Files: []string{main, devices, allows},
		Daemon: Daemon{
			Mode:          ModeMonitor,
			Timezone:      mustLoadLocation(t, "Europe/Brussels"),
			TimezoneName:  "Europe/Brussels",
			MarkMask:      0x00ff0000,
			OnDaemonDown:  "closed",
			OnQueueFull:   "drop",
			Queues:        4,
			QueueBase:     300,
			NewFlowRate:   Rate{Count: 100, Per: 10 * time.Second},
			QueueMaxLen:   4096,
			FlowTableSize: 131072,
			Socket:        "/tmp/picoseg.sock",
			Pos:           at(main, 4),
		},
		Alert:     Alert{Window: time.Minute, ScanWindow: 10 * time.Second, ScanThreshold: 20},
		Inventory: Inventory{State: "/var/lib/picoseg/devices.json"},
		Zones: []Zone{
			{
				Name:         "iot",
				Interfaces:   []string{"br-iot"},
				Networks:     []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24"), netip.MustParsePrefix("fd00:77::/64")},
				BridgeFilter: true,
				Pos:          at(main, 16),
			},
			{
				Name:       "lan",
				Interfaces: []string{"br-lan"},
				Networks:   []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
				Pos:        at(main, 22),
			},
			{Name: "wan", Interfaces: []string{"eth0"}, Pos: at(main, 27)},
		},
		Segments: []Segment{
			{From: "iot", To: "wan", Action: SegmentMicro, Pos: at(main, 31)},
			{From: "iot", To: "iot", Action: SegmentMicro, Pos: at(main, 36)},
			{From: "lan", To: "*", Action: SegmentAllow, Pos: at(main, 41)},
			{From: "iot", To: "lan", Action: SegmentDeny, Pos: at(main, 46)},
		},
		Groups: []Group{
			{Name: "cameras", Pos: at(main, 51)},
			{Name: "plugs", Pos: at(main, 54)},
		},
		Devices: []Device{
			{
				Name:   "front-cam",
				HasMAC: true,
				MAC:    [6]byte{2, 0, 0, 0, 0, 0x11},
				IPs:    []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd00:77::11")},
				Groups: []string{"cameras"},
				Pos:    at(devices, 1),
			},
			{
				Name: "nvr",
				IPs:  []netip.Addr{netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("fd00:77::2")},
				Pos:  at(devices, 7),
			},
			{
				Name:   "plug-1",
				HasMAC: true,
				MAC:    [6]byte{2, 0, 0, 0, 0, 0x21},
				Groups: []string{"plugs"},
				Pos:    at(devices, 11),
			},
		},
		Allows: []Allow{
			{
				Name:           "cams-to-nvr",
				From:           Endpoint{Kind: EndpointGroup, Name: "cameras", Pos: Pos{allows, 3, 8}},
				To:             Endpoint{Kind: EndpointDevice, Name: "nvr", Pos: Pos{allows, 4, 6}},
				Services:       []Service{{Proto: protoTCP, PortLo: 554, PortHi: 554}, {Proto: protoUDP, PortLo: 5000, PortHi: 5010}},
				PacketSize:     &SizeRange{Min: 60, Max: 1500},
				MaxFlowBytes:   500_000_000,
				MaxDeviceBytes: &Budget{Bytes: 2_000_000_000, Per: 24 * time.Hour},
				MinDeviceBytes: &Budget{Bytes: 1000, Per: time.Hour},
				MaxNewFlows:    Rate{Count: 10, Per: time.Second},
				Pos:            at(allows, 1),
			},
			{
				Name:     "plugs-cloud",
				From:     Endpoint{Kind: EndpointGroup, Name: "plugs", Pos: Pos{allows, 14, 8}},
				To:       Endpoint{Kind: EndpointNet, Prefix: netip.MustParsePrefix("203.0.113.0/24"), Pos: Pos{allows, 15, 6}},
				Services: []Service{{Proto: protoTCP, PortLo: 443, PortHi: 443}, {Proto: protoICMP}},
				Hours:    []TimeRange{{Start: 6 * 60, End: 23 * 60}, {Start: 22 * 60, End: 2 * 60}},
				Days: 1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday |
					1<<time.Friday | 1<<time.Sunday,
				Pos: at(allows, 12),
			},
			{
				Name: "nvr-dns",
				From: Endpoint{Kind: EndpointDevice, Name: "nvr", Pos: Pos{allows, 22, 8}},
				To:   Endpoint{Kind: EndpointGateway, Pos: Pos{allows, 23, 6}},
				Services: []Service{
					{Proto: protoUDP, PortLo: 53, PortHi: 53}, {Proto: protoTCP, PortLo: 53, PortHi: 53},
					{Proto: protoICMPv6}, {Proto: 47},
				},
				MaxFlowBytes: 1 << 20,
				Pos:          at(allows, 20),
			},
			{
				Name: "lan-admin",
				From: Endpoint{Kind: EndpointZone, Name: "lan", Pos: Pos{allows, 29, 8}},
				To:   Endpoint{Kind: EndpointZone, Name: "iot", Pos: Pos{allows, 30, 6}},
				Pos:  at(allows, 27),
			},
		},
	}
	if diff := cmp.Diff(want, cfg, cmpConfig); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", main, diff)
	}
}

func TestParseEmptyPolicyHasDefaults(t *testing.T) {
	cfg, warns, err := Parse("empty.toml", nil)
	if err != nil || len(warns) != 0 {
		t.Fatalf("Parse: warnings %v, error %v", warns, err)
	}
	want := &Config{
		Files: []string{"empty.toml"},
		Daemon: Daemon{
			Mode:          ModeEnforce,
			Timezone:      time.Local,
			TimezoneName:  "Local",
			MarkMask:      0x000000f8,
			OnDaemonDown:  "open",
			OnQueueFull:   "open",
			Queues:        2,
			QueueBase:     4200,
			NewFlowRate:   Rate{Count: 200, Per: time.Second},
			QueueMaxLen:   4096,
			FlowTableSize: 65536,
			Socket:        "/run/picoseg/picoseg.sock",
			Pos:           Pos{File: "empty.toml"},
		},
		Alert:     Alert{Window: time.Minute, ScanWindow: 10 * time.Second, ScanThreshold: 20},
		Inventory: Inventory{State: "/var/lib/picoseg/devices.json"},
	}
	if diff := cmp.Diff(want, cfg, cmpConfig); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

// allowPolicy wraps the body of one allow rule in a policy where every
// name it may refer to exists.
func allowPolicy(body string) string {
	return `
[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[group]]
name = "cameras"

[[device]]
name = "nvr"
ip = ["10.77.0.2"]
mac = "02:00:00:00:00:02"
[[allow]]
name = "rule"
` + body
}

func TestParseAllowValues(t *testing.T) {
	const fromTo = "from = \"any\"\nto = \"any\"\n"
	tests := []struct {
		name string
		body string
		want Allow
	}{
		{
			name: "services in every spelling",
			body: fromTo + `services = ["any", "tcp", "udp", "tcp/22", "udp/5000-5010", "icmp", "icmpv6", "proto/47", "proto/6", "tcp/0-65535"]`,
			want: Allow{Services: []Service{
				{}, {Proto: protoTCP, PortHi: 65535}, {Proto: protoUDP, PortHi: 65535},
				{Proto: protoTCP, PortLo: 22, PortHi: 22}, {Proto: protoUDP, PortLo: 5000, PortHi: 5010},
				{Proto: protoICMP}, {Proto: protoICMPv6}, {Proto: 47}, {Proto: protoTCP, PortHi: 65535},
				{Proto: protoTCP, PortHi: 65535},
			}},
		},
		{
			name: "time windows, wrapping and ending at midnight",
			body: fromTo + `hours = ["00:00-24:00", "22:30-06:15", "12:00-00:00", "23:59-24:00"]`,
			want: Allow{Hours: []TimeRange{{0, 1440}, {1350, 375}, {720, 0}, {1439, 1440}}},
		},
		{
			name: "days with a range wrapping the weekend",
			body: fromTo + `days = ["fri-mon", "wed"]`,
			want: Allow{Days: 1<<time.Friday | 1<<time.Saturday | 1<<time.Sunday | 1<<time.Monday | 1<<time.Wednesday},
		},
		{
			name: "a single-day range",
			body: fromTo + `days = ["tue-tue"]`,
			want: Allow{Days: 1 << time.Tuesday},
		},
		{
			name: "sizes with 1000 and 1024 based units",
			body: fromTo + `max_flow_bytes = "1.5KiB"
max_device_bytes = { amount = "2TB", per = "168h" }
min_device_bytes = { amount = 4096, per = "30m" }`,
			want: Allow{
				MaxFlowBytes:   1536,
				MaxDeviceBytes: &Budget{Bytes: 2e12, Per: 168 * time.Hour},
				MinDeviceBytes: &Budget{Bytes: 4096, Per: 30 * time.Minute},
			},
		},
		{
			name: "bare byte count as a string",
			body: fromTo + `max_flow_bytes = "1234"`,
			want: Allow{MaxFlowBytes: 1234},
		},
		{
			name: "budget as a sub-table",
			body: fromTo + `[allow.max_device_bytes]
amount = "1GiB"
per = "1h"`,
			want: Allow{MaxDeviceBytes: &Budget{Bytes: 1 << 30, Per: time.Hour}},
		},
		{
			name: "rate per minute",
			body: fromTo + `max_new_flows = "600/m"`,
			want: Allow{MaxNewFlows: Rate{Count: 600, Per: time.Minute}},
		},
		{
			name: "rate per hour",
			body: fromTo + `max_new_flows = "5/h"`,
			want: Allow{MaxNewFlows: Rate{Count: 5, Per: time.Hour}},
		},
		{
			name: "rate per odd duration",
			body: fromTo + `max_new_flows = "100/1m30s"`,
			want: Allow{MaxNewFlows: Rate{Count: 100, Per: 90 * time.Second}},
		},
		{
			name: "packet size at its bounds",
			body: fromTo + `packet_size = "20-65535"`,
			want: Allow{PacketSize: &SizeRange{Min: 20, Max: 65535}},
		},
		{
			name: "endpoints of every kind",
			body: `from = "net:fd00:77::/64"
to = "zone:iot"`,
			want: Allow{
				From: Endpoint{Kind: EndpointNet, Prefix: netip.MustParsePrefix("fd00:77::/64")},
				To:   Endpoint{Kind: EndpointZone, Name: "iot"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warns, err := Parse("policy.toml", []byte(allowPolicy(tt.body)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(warns) != 0 {
				t.Errorf("unexpected warnings: %v", warns)
			}
			got := cfg.Allows[0]
			tt.want.Name = "rule"
			if tt.want.From.Kind == EndpointAny && tt.want.To.Kind == EndpointAny {
				tt.want.From, tt.want.To = Endpoint{}, Endpoint{}
			}
			if diff := cmp.Diff(tt.want, got, cmpConfig,
				cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())); diff != "" {
				t.Errorf("allow rule mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInlineTables(t *testing.T) {
	src := `zone = [
  { name = "iot", networks = ["10.77.0.0/24"] },
  { name = "wan", interfaces = ["eth0"] },
]
segment = [{ from = "iot", to = "wan", action = "allow" }]
`
	cfg, _, err := Parse("inline.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Pos{{"inline.toml", 2, 3}, {"inline.toml", 3, 3}}
	got := []Pos{cfg.Zones[0].Pos, cfg.Zones[1].Pos}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zone positions (-want +got):\n%s", diff)
	}
	if got, want := cfg.Segments[0].Pos, (Pos{"inline.toml", 5, 12}); got != want {
		t.Errorf("segment position = %v, want %v", got, want)
	}
}

// TestRuleExamplesLoad loads every example policy shipped in rules/, so that
// an example cannot drift from the language it documents.
func TestRuleExamplesLoad(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "rules", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skip("no example policies in rules/")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, warns, err := Load(path)
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			for _, w := range warns {
				t.Logf("%v", w)
			}
		})
	}
}
