package policy

import (
	"net/netip"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
)

const gatewayTestPolicy = `
[gateway]
addresses = ["10.77.0.1"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "lan"
to = "gateway"
action = "allow"

[[segment]]
from = "*"
to = "*"
action = "micro"

[[allow]]
name = "r"
from = "any"
to = "zone:lan"
`

func compileTest(t *testing.T, src string) *Policy {
	t.Helper()
	cfg, _, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, Options{GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.88.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The gateway is a segment destination of its own, which "*" does not
// reach: a policy written as "x -> *" opens no service on the router.
func TestGatewaySegment(t *testing.T) {
	p := compileTest(t, gatewayTestPolicy)
	lan, iot := p.ZoneOfAddr(netip.MustParseAddr("10.88.0.5")), p.ZoneOfAddr(netip.MustParseAddr("10.77.0.5"))
	if a, r := p.Segment(lan, Gateway); a != config.SegmentAllow || r != 0 {
		t.Errorf("lan -> gateway: %v rule %d, want allow by segment 0", a, r)
	}
	if a, r := p.Segment(iot, Gateway); a != config.SegmentDeny || r != None {
		t.Errorf(`iot -> gateway: %v rule %d, want the default deny ("*" excludes the gateway)`, a, r)
	}
	if a, _ := p.Segment(iot, lan); a != config.SegmentMicro {
		t.Errorf("iot -> lan: %v, want micro", a)
	}
	if a, r := p.Segment(Gateway, lan); a != config.SegmentDeny || r != None {
		t.Errorf("gateway as a source: %v rule %d, want the default deny", a, r)
	}
	if p.ZoneName(Gateway) != "gateway" {
		t.Errorf("ZoneName(Gateway) = %q", p.ZoneName(Gateway))
	}
}

// Addresses of the gateway come from the policy and from the daemon; only
// a destination identified as the gateway matches "gateway", and "zone:lan"
// never matches the gateway's LAN address.
func TestGatewayAddressesAndSelectors(t *testing.T) {
	p := compileTest(t, gatewayTestPolicy)
	for _, a := range []string{"10.77.0.1", "10.88.0.1"} {
		if !p.IsGatewayDst(netip.MustParseAddr(a)) {
			t.Errorf("%s is not the gateway", a)
		}
	}
	if p.IsGatewayDst(netip.MustParseAddr("10.88.0.2")) {
		t.Error("10.88.0.2 taken for the gateway")
	}
	var s Scratch
	src := Side{Addr: netip.MustParseAddr("10.77.0.5"), Device: None, Zone: p.ZoneOfAddr(netip.MustParseAddr("10.77.0.5"))}
	gw := Side{Addr: netip.MustParseAddr("10.88.0.1"), Device: None, Zone: Gateway}
	if r := p.Match(&src, &gw, 6, 22, &s); r != None {
		t.Errorf(`a rule to "zone:lan" matched the gateway's LAN address: rule %d`, r)
	}
	lanHost := Side{Addr: netip.MustParseAddr("10.88.0.9"), Device: None, Zone: p.ZoneOfAddr(netip.MustParseAddr("10.88.0.9"))}
	if r := p.Match(&src, &lanHost, 6, 22, &s); r != 0 {
		t.Errorf("the rule to zone:lan did not match a LAN host: %d", r)
	}
}

func TestLinkBroadcastAndLocalZones(t *testing.T) {
	p := compileTest(t, gatewayTestPolicy)
	for a, want := range map[string]bool{
		"255.255.255.255": true, "10.77.0.255": true, "224.0.0.251": true, "239.255.255.250": true,
		"ff02::1:ff00:1": true, "10.77.0.254": false, "8.8.8.8": false, "fe80::1": false,
	} {
		if got := p.IsLinkBroadcast(netip.MustParseAddr(a)); got != want {
			t.Errorf("IsLinkBroadcast(%s) = %v, want %v", a, got, want)
		}
	}
	if z := p.LocalZoneOf(netip.MustParseAddr("8.8.8.8")); z != None {
		t.Errorf("an internet address belongs to local zone %s", p.ZoneName(z))
	}
	if z := p.LocalZoneOf(netip.MustParseAddr("10.88.0.9")); p.ZoneName(z) != "lan" {
		t.Errorf("10.88.0.9 belongs to %s, want lan", p.ZoneName(z))
	}
}

// The default services: on unless turned off, from local zones only (the
// WAN gets no resolver), neighbour discovery from anywhere but router
// advertisements never from a local zone, and DNS never to a broadcast.
func TestGatewayDefaults(t *testing.T) {
	p := compileTest(t, gatewayTestPolicy)
	var s Scratch
	side := func(a string) *Side {
		addr := netip.MustParseAddr(a)
		return &Side{Addr: addr, Device: None, Zone: p.ZoneOfAddr(addr)}
	}
	gw := &Side{Addr: netip.MustParseAddr("10.77.0.1"), Device: None, Zone: Gateway}
	bcast := &Side{Addr: netip.MustParseAddr("255.255.255.255"), Device: None, Zone: Gateway}
	name := func(r int32) string {
		if r == None {
			return ""
		}
		return p.Rules[r].Name
	}
	for _, tc := range []struct {
		name     string
		src, dst *Side
		proto    uint8
		port     uint16
		icmp     uint8
		want     string
	}{
		{"dns from iot", side("10.77.0.5"), gw, 17, 53, 0, "default:dns"},
		{"dns over tcp", side("10.77.0.5"), gw, 6, 53, 0, "default:dns"},
		{"dns from the wan", side("8.8.8.8"), gw, 17, 53, 0, ""},
		{"dns to a broadcast", side("10.77.0.5"), bcast, 17, 53, 0, ""},
		{"dhcp to a broadcast", side("10.77.0.5"), bcast, 17, 67, 0, "default:dhcp"},
		{"ssh is no default", side("10.77.0.5"), gw, 6, 22, 0, ""},
		{"ping", side("10.77.0.5"), gw, 1, 0, 8, "default:ping"},
		{"an echo reply is no ping", side("10.77.0.5"), gw, 1, 0, 0, ""},
		{"icmpv6 echo", side("10.77.0.5"), gw, 58, 0, 128, "default:ping"},
		{"neighbour solicitation from the wan", side("8.8.8.8"), gw, 58, 0, 135, "default:ipv6_nd"},
		{"router advertisement from the wan", side("8.8.8.8"), gw, 58, 0, 134, "default:ipv6_nd"},
		{"router advertisement from iot", side("10.77.0.5"), gw, 58, 0, 134, ""},
		{"dhcpv6", side("10.77.0.5"), gw, 17, 547, 0, "default:dhcpv6"},
	} {
		if got := name(p.GatewayDefault(tc.src, tc.dst, tc.proto, tc.port, tc.icmp, &s)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len(p.GatewayServices()); n != 5 || p.UserRules != 1 || len(p.Rules) != 6 {
		t.Errorf("%d default services, %d user rules, %d rules; want 5, 1, 6", n, p.UserRules, len(p.Rules))
	}
	off := compileTest(t, "[gateway]\ndhcp = false\ndns = false\nping = false\nipv6_nd = false\ndhcpv6 = false\n"+gatewayTestPolicy[len("\n[gateway]\naddresses = [\"10.77.0.1\"]\n"):])
	if len(off.GatewayServices()) != 0 || off.GatewayDefault(side("10.77.0.5"), gw, 17, 67, 0, &s) != None {
		t.Error("defaults turned off still allow")
	}
}
