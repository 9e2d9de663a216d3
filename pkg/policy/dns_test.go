package policy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/dnsnames"
)

const dnsTestPolicy = `
[dns]
grace = "30s"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "*"
to = "*"
action = "micro"

[[device]]
name = "plug"
ip = ["10.77.0.5", "fd00::5"]

[[device]]
name = "hue"
ip = ["10.77.0.6"]

[[allow]]
name = "plug-cloud"
from = "device:plug"
to = "dns:*.tplinkcloud.com"
services = ["tcp/443", "tcp/50443"]

[[allow]]
name = "hue-portal"
from = "device:hue"
to = "dns:bridge.meethue.com"
services = ["tcp/80"]
`

func TestMatchDNS(t *testing.T) {
	p := compileTest(t, dnsTestPolicy)
	if !p.UsesDNS() || p.DNSGrace() != 30*time.Second {
		t.Fatalf("UsesDNS %v grace %v", p.UsesDNS(), p.DNSGrace())
	}
	plug4, plug6 := netip.MustParseAddr("10.77.0.5"), netip.MustParseAddr("fd00::5")
	hue := netip.MustParseAddr("10.77.0.6")
	cloud, cloud6 := netip.MustParseAddr("52.49.65.150"), netip.MustParseAddr("2a05::1")
	portal := netip.MustParseAddr("130.211.93.93")
	tab := dnsnames.New(dnsnames.Sizes{})
	now := int64(1000 * time.Second)
	devs := dnsnames.MakeName([]byte("devs.tplinkcloud.com"))
	tab.Record(plug4, cloud, &devs, 60, now)
	tab.Record(plug4, cloud6, &devs, 60, now)
	bare := dnsnames.MakeName([]byte("tplinkcloud.com"))
	tab.Record(plug4, portal, &bare, 60, now)
	hueName := dnsnames.MakeName([]byte("bridge.meethue.com"))
	tab.Record(hue, portal, &hueName, 60, now)
	other := dnsnames.MakeName([]byte("bridge.meethue.com.evil.example"))
	tab.Record(hue, cloud, &other, 60, now)

	side := func(a netip.Addr) *Side {
		return &Side{Addr: a, Device: p.DeviceByAddr(a), Zone: p.ZoneOfAddr(a)}
	}
	var s Scratch
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		port     uint16
		at       time.Duration
		table    bool
		want     string
	}{
		{"plug to its name's address", plug4, cloud, 443, 0, true, "plug-cloud"},
		{"other port of the rule", plug4, cloud, 50443, 0, true, "plug-cloud"},
		{"port not in the rule", plug4, cloud, 22, 0, true, ""},
		{"over IPv6, the name resolved over IPv4", plug6, cloud6, 443, 0, true, "plug-cloud"},
		{"the suffix itself is not *.suffix", plug4, portal, 443, 0, true, ""},
		{"within TTL plus grace", plug4, cloud, 443, 89 * time.Second, true, "plug-cloud"},
		{"after TTL plus grace", plug4, cloud, 443, 90 * time.Second, true, ""},
		{"hue's name does not open plug's rule", hue, cloud, 443, 0, true, ""},
		{"hue to its own name", hue, portal, 80, 0, true, "hue-portal"},
		{"a name that only starts like hue's", hue, cloud, 80, 0, true, ""},
		{"no names table", plug4, cloud, 443, 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.table {
				s.SetNames(tab, now+int64(tc.at), NewFlowNames)
			} else {
				s.SetNames(nil, 0, NewFlowNames)
			}
			got := ""
			if r := p.Match(side(tc.src), side(tc.dst), 6, tc.port, &s); r >= 0 {
				got = p.Rules[r].Name
			}
			if got != tc.want {
				t.Errorf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMatchDNSNoAllocs(t *testing.T) {
	p := compileTest(t, dnsTestPolicy)
	tab := dnsnames.New(dnsnames.Sizes{})
	plug, cloud := netip.MustParseAddr("10.77.0.5"), netip.MustParseAddr("52.49.65.150")
	n := dnsnames.MakeName([]byte("devs.tplinkcloud.com"))
	tab.Record(plug, cloud, &n, 60, 0)
	src := &Side{Addr: plug, Device: p.DeviceByAddr(plug), Zone: p.ZoneOfAddr(plug)}
	dst := &Side{Addr: cloud, Device: None, Zone: p.ZoneOfAddr(cloud)}
	var s Scratch
	s.SetNames(tab, 1, NewFlowNames)
	if a := testing.AllocsPerRun(100, func() {
		if p.Match(src, dst, 6, 443, &s) < 0 {
			t.Fatal("no match")
		}
	}); a != 0 {
		t.Errorf("Match with a dns: rule allocates %v", a)
	}
}
