package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/replay"
)

// sentinelPolicy names the two devices of the IoT Sentinel setup captures
// by MAC and address, behind the capture's router 10.10.10.1.
const sentinelPolicy = `
[gateway]
addresses = ["10.10.10.1"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0", "::/0"]

[[zone]]
name = "iot"
networks = ["10.10.10.0/24", "fdd9:fbb:a067::/64"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[device]]
name = "hue"
mac = "00:17:88:24:76:ff"
ip = ["10.10.10.6"]

[[device]]
name = "plug"
mac = "50:c7:bf:00:c7:03"
ip = ["10.10.10.20"]

[[allow]]
name = "iot-cloud"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/80", "tcp/443", "tcp/50443", "udp/123"]
`

// Real devices setting up: their DHCP requests from 0.0.0.0, duplicate
// address detection and router solicitations from ::, and neighbour
// discovery from their link-local addresses (multicast listener reports)
// are what a network needs, not
// spoofing, and DHCP and DNS to the gateway pass by default.
func TestReplayRealSetupIsNotSpoofing(t *testing.T) {
	dir := testpcaps.Dir(t)
	cfg, _, err := config.Parse("sentinel.toml", []byte(sentinelPolicy))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := replay.New(pol)
	counts := map[string]int{}
	for _, name := range []string{"iotsentinel_hue-bridge_setup.pcap", "iotsentinel_tplink-hs110-plug_setup.pcap"} {
		rd, err := capture.Open(filepath.Join(dir, "iot", name))
		if err != nil {
			t.Fatal(err)
		}
		var p packet.Packet
		for {
			ts, err := rd.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			d := r.Packet(&p, ts.UnixNano())
			what := ""
			switch {
			case p.Src.IsUnspecified() && p.Proto == packet.ProtoUDP && p.DstPort == 67:
				what = "dhcp from 0.0.0.0"
			case p.Src.IsUnspecified() && p.Proto == packet.ProtoICMPv6 && p.ICMPType == 135:
				what = "duplicate address detection from ::"
			case p.Src.Is6() && p.Src.IsLinkLocalUnicast() && p.Proto == packet.ProtoICMPv6 && p.ICMPType == 143:
				what = "multicast listener report from a link-local address"
			case p.Proto == packet.ProtoUDP && p.DstPort == 53 && pol.IsGatewayDst(p.Dst):
				what = "dns to the gateway"
			default:
				continue
			}
			counts[what]++
			if d.Verdict == engine.Drop {
				t.Errorf("%s: %s %v -> %v dropped by %v: %v", name, what, p.Src, p.Dst, d.Layer, d.Reason)
			}
		}
		rd.Close()
	}
	for _, what := range []string{"dhcp from 0.0.0.0", "duplicate address detection from ::", "multicast listener report from a link-local address", "dns to the gateway"} {
		if counts[what] == 0 {
			t.Errorf("the captures hold no %s: the test proves nothing", what)
		}
	}
	for _, e := range r.Report().Events {
		if e.Type == "spoofed_address" && !strings.HasPrefix(e.Src, "0.0.0.0") {
			t.Errorf("spoofed_address for a real device's setup: %+v", e)
		}
	}
}
