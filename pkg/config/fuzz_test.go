package config

import (
	"errors"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
)

// fuzzSeeds are policies, good and broken, that reach every part of the
// loader.
var fuzzSeeds = []string{
	"",
	`include = ["rules.d/*.toml"]
[daemon]
mode = "monitor"
timezone = "UTC"
mark_mask = 0xff00
queues = 64
queue_base = 65471
new_flow_rate = "1/1m30s"
[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24", "fd00:77::1/64"]
[[zone]]
name = "lan"
[[segment]]
from = "iot"
to = "iot"
action = "micro"
[[segment]]
from = "*"
to = "lan"
action = "deny"
[[group]]
name = "cameras"
`,
	`zone = [{ name = "a", networks = ["10.0.0.0/8"] }]
group = [{ name = "g" }]
device = [{ name = "d", ip = ["10.0.0.1", "::ffff:10.0.0.2"], groups = ["g"] }]
allow = [{ name = "r", from = "zone:a", to = "gateway", services = ["any"], days = ["sat-sun"] },
         { name = "s", from = "net:10.0.0.1/8", to = "group:g", hours = ["23:00-01:00"], packet_size = "20-20" }]
`,
	`[[allow]]
name = "x"
from = "device:ghost"
to = "gateway"
services = ["tcp/1-65535", "udp/0", "proto/255", "icmp/1"]
hours = ["24:00-24:00", "00:00-24:00"]
max_device_bytes.amount = "1.25GB"
max_device_bytes.per = "1h"
min_device_bytes = { amount = "9TiB", per = "1h" }
max_new_flows = "9999999999/s"
`,
	"[daemon]\nqueues = [1,\n",
	"[[device]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\n[[device]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\n",
	"[[zone]]\n\"name\" = \"q\"\n[zone.sub]\nx = 1\n",
	"a.b.c = 1\n[x.'y'.\"z\"]\nw = \"\"\"\n\"\"\"\n",
	"include = 5\ndaemon = []\nzone = 1\n",
	trickyTOML,
}

func FuzzParse(f *testing.F) {
	for _, s := range slices.Concat(fuzzSeeds, tomlCorners) {
		f.Add([]byte(s))
	}
	for _, name := range []string{"home.toml", "rules.d/10-devices.toml", "rules.d/20-allow.toml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Includes come from memory, so that no input reaches files on disk.
	tree := fstest.MapFS{}
	for _, name := range []string{"rules.d/10-devices.toml", "rules.d/20-allow.toml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		tree[name] = &fstest.MapFile{Data: data}
	}
	load := files{readFile: tree.ReadFile, glob: tree.Glob}

	f.Fuzz(func(t *testing.T, data []byte) {
		checkReaderAgrees(t, data)
		cfg, _, err := load.parse("policy.toml", data)
		if err != nil {
			checkErrorList(t, err)
			if cfg != nil {
				t.Fatalf("Config returned along with errors")
			}
			return
		}
		checkConsistent(t, cfg)
	})
}

func checkErrorList(t *testing.T, err error) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
	}
	for i, e := range list {
		if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.File == "" {
			t.Errorf("error without a position: %v", e)
		}
		if i > 0 && comparePos(list[i-1].Pos, e.Pos) > 0 {
			t.Errorf("errors out of order: %v before %v", list[i-1], e)
		}
	}
}

// checkConsistent fails t unless every name cfg refers to is defined once
// and every value is within its documented bounds.
func checkConsistent(t *testing.T, cfg *Config) {
	t.Helper()
	d := cfg.Daemon
	if d.Timezone == nil || d.Queues < 1 || d.Queues > 64 || int(d.QueueBase)+d.Queues-1 > 65535 ||
		bits.OnesCount32(d.MarkMask) < 3 || d.NewFlowRate.Count <= 0 || d.NewFlowRate.Per <= 0 ||
		d.FlowTableSize < 1024 || d.FlowTableSize > 4_000_000 || d.Socket == "" {
		t.Errorf("daemon settings out of bounds: %+v", d)
	}
	checkPos := func(what string, p Pos) {
		if p.Line < 1 || p.Col < 1 || !slices.Contains(cfg.Files, p.File) {
			t.Errorf("%s has position %v outside the loaded files %v", what, p, cfg.Files)
		}
	}
	defined := func(kind string, names []string) map[string]bool {
		set := map[string]bool{}
		for _, n := range names {
			if !validName(n) || set[n] {
				t.Errorf("%s name %q is invalid or defined twice", kind, n)
			}
			set[n] = true
		}
		return set
	}
	zones := defined("zone", names(cfg.Zones, func(z Zone) string { return z.Name }))
	groups := defined("group", names(cfg.Groups, func(g Group) string { return g.Name }))
	devices := defined("device", names(cfg.Devices, func(d Device) string { return d.Name }))
	defined("allow", names(cfg.Allows, func(a Allow) string { return a.Name }))

	for _, z := range cfg.Zones {
		checkPos("zone", z.Pos)
		for _, n := range z.Networks {
			if n != n.Masked() {
				t.Errorf("zone %s network %v is not masked", z.Name, n)
			}
		}
	}
	for _, s := range cfg.Segments {
		checkPos("segment", s.Pos)
		if !(s.From == "*" || zones[s.From]) || !(s.To == "*" || zones[s.To]) || s.Action > SegmentMicro {
			t.Errorf("segment %+v refers to an undefined zone or action", s)
		}
	}
	macs, ips := map[[6]byte]bool{}, map[netip.Addr]bool{}
	for _, dev := range cfg.Devices {
		checkPos("device", dev.Pos)
		if !dev.HasMAC && len(dev.IPs) == 0 {
			t.Errorf("device %s has neither MAC nor IP", dev.Name)
		}
		if dev.HasMAC {
			if macs[dev.MAC] {
				t.Errorf("MAC %x claimed twice", dev.MAC)
			}
			macs[dev.MAC] = true
		}
		for _, ip := range dev.IPs {
			if ips[ip] {
				t.Errorf("IP %v claimed twice", ip)
			}
			ips[ip] = true
		}
		for _, g := range dev.Groups {
			if !groups[g] {
				t.Errorf("device %s is in undefined group %q", dev.Name, g)
			}
		}
	}
	resolves := func(e Endpoint) bool {
		switch e.Kind {
		case EndpointDevice:
			return devices[e.Name]
		case EndpointGroup:
			return groups[e.Name]
		case EndpointZone:
			return zones[e.Name]
		case EndpointNet:
			return e.Prefix.IsValid() && e.Prefix == e.Prefix.Masked()
		}
		return e.Kind <= EndpointGateway
	}
	for _, a := range cfg.Allows {
		checkPos("allow rule", a.Pos)
		checkPos("from", a.From.Pos)
		checkPos("to", a.To.Pos)
		if a.From.Kind == EndpointGateway || !resolves(a.From) || !resolves(a.To) {
			t.Errorf("allow rule %s has endpoints %v -> %v that do not resolve", a.Name, a.From, a.To)
		}
		for _, s := range a.Services {
			if hasPorts(s.Proto) && s.PortLo > s.PortHi || !hasPorts(s.Proto) && (s.PortLo != 0 || s.PortHi != 0) {
				t.Errorf("allow rule %s has service %+v with a bad port range", a.Name, s)
			}
		}
		for _, h := range a.Hours {
			if h.Start == h.End || h.Start < 0 || h.Start >= 1440 || h.End < 0 || h.End > 1440 {
				t.Errorf("allow rule %s has time window %+v", a.Name, h)
			}
		}
		if p := a.PacketSize; p != nil && (p.Min < 20 || p.Min > p.Max || p.Max > 65535) {
			t.Errorf("allow rule %s has packet size %+v", a.Name, *p)
		}
		for _, b := range []*Budget{a.MaxDeviceBytes, a.MinDeviceBytes} {
			if b != nil && (b.Bytes <= 0 || b.Per <= 0) {
				t.Errorf("allow rule %s has budget %+v", a.Name, *b)
			}
		}
		if a.MaxFlowBytes < 0 || a.MaxNewFlows.Count < 0 || a.MaxNewFlows.Count > 0 && a.MaxNewFlows.Per <= 0 {
			t.Errorf("allow rule %s has bounds %d bytes, %+v", a.Name, a.MaxFlowBytes, a.MaxNewFlows)
		}
	}
}

func TestFuzzSeedsAreConsistent(t *testing.T) {
	for _, s := range fuzzSeeds {
		cfg, _, err := files{readFile: os.ReadFile, glob: func(string) ([]string, error) { return nil, nil }}.parse("p.toml", []byte(s))
		if err == nil {
			checkConsistent(t, cfg)
		} else {
			checkErrorList(t, err)
		}
	}
}
