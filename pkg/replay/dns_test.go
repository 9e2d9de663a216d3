package replay

import (
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// dnsReplayPolicy names the two setup captures' devices; TO is replaced by
// the rule's destination.
const dnsReplayPolicy = `
[gateway]
addresses = ["10.10.10.1"]

[[zone]]
name = "lan"
networks = ["10.10.10.0/24"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[segment]]
from = "lan"
to = "wan"
action = "micro"

[[device]]
name = "plug"
mac = "50:c7:bf:00:c7:03"
ip = ["10.10.10.20"]

[[device]]
name = "hue"
mac = "00:17:88:24:76:ff"
ip = ["10.10.10.6"]

[[allow]]
name = "plug-cloud"
from = "device:plug"
to = "PLUG"
services = ["tcp/50443"]

[[allow]]
name = "hue-portal"
from = "device:hue"
to = "HUE"
services = ["tcp/80"]
`

// replayDNS replays capture under the policy with the two destinations and
// returns the decision of the first packet to dst, and the runner.
func replayDNS(t *testing.T, capture string, plug, hue string, dst netip.AddrPort) (engine.Decision, *Runner, int64) {
	t.Helper()
	src := strings.NewReplacer("PLUG", plug, "HUE", hue).Replace(dnsReplayPolicy)
	cfg, _, err := config.Parse("dns.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(pol)
	rd, err := openCapture(t, capture)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var p packet.Packet
	var first engine.Decision
	seen := false
	var last int64
	for {
		ts, err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			continue
		}
		last = ts.UnixNano()
		d := r.Packet(&p, last)
		if !seen && p.Kind == packet.KindOK && p.Dst == dst.Addr() && p.DstPort == dst.Port() {
			first, seen = d, true
		}
	}
	if !seen {
		t.Fatalf("no packet to %v in %s", dst, capture)
	}
	return first, r, last
}

func openCapture(t *testing.T, name string) (*capture.Reader, error) {
	return capture.Open(filepath.Join(testpcaps.Dir(t), "iot", name))
}

// TestReplayDNSNames: in the setup captures the device resolves its cloud
// (the TP-Link plug through a CNAME chain) and then connects to it; a rule
// naming the cloud by DNS accepts that flow, and one naming another domain
// drops it. After the capture, a connection to an address of the answer
// is accepted and one to an address no answer gave is dropped.
func TestReplayDNSNames(t *testing.T) {
	for _, tc := range []struct {
		name, capture, plug, hue string
		dst                      netip.AddrPort
		want                     engine.Verdict
		rule                     string
		other, given             netip.Addr
		device                   netip.Addr
	}{
		{"tp-link cloud by name", "iotsentinel_tplink-hs110-plug_setup.pcap", "dns:*.tplinkcloud.com", "dns:none.example",
			netip.MustParseAddrPort("52.49.65.150:50443"), engine.Accept, "plug-cloud",
			netip.MustParseAddr("52.49.65.151"), netip.MustParseAddr("52.18.200.165"), netip.MustParseAddr("10.10.10.20")},
		{"tp-link cloud, another name (control)", "iotsentinel_tplink-hs110-plug_setup.pcap", "dns:*.example.com", "dns:none.example",
			netip.MustParseAddrPort("52.49.65.150:50443"), engine.Drop, "", netip.Addr{}, netip.Addr{}, netip.Addr{}},
		{"hue portal by name", "iotsentinel_hue-bridge_setup.pcap", "dns:none.example", "dns:www.ecdinterface.philips.com",
			netip.MustParseAddrPort("162.13.31.14:80"), engine.Accept, "hue-portal",
			netip.MustParseAddr("162.13.31.15"), netip.MustParseAddr("162.13.31.14"), netip.MustParseAddr("10.10.10.6")},
		{"hue portal, the plug's name (control)", "iotsentinel_hue-bridge_setup.pcap", "dns:none.example", "dns:*.tplinkcloud.com",
			netip.MustParseAddrPort("162.13.31.14:80"), engine.Drop, "", netip.Addr{}, netip.Addr{}, netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, r, last := replayDNS(t, tc.capture, tc.plug, tc.hue, tc.dst)
			pol := r.Engine().Policy()
			if d.Verdict != tc.want || d.RuleName(pol) != tc.rule {
				t.Fatalf("first packet to %v: %v by %q (%v), want %v by %q", tc.dst, d.Verdict, d.RuleName(pol), d.Reason, tc.want, tc.rule)
			}
			if !tc.device.IsValid() {
				return
			}
			// Within the answers' TTL and grace, right after the capture.
			syn := func(dst netip.Addr, sport uint16) engine.Verdict {
				p := packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP, Src: tc.device, Dst: dst, SrcPort: sport, DstPort: tc.dst.Port(), TCPFlags: packet.TCPSyn, Length: 60}
				return r.Packet(&p, last+int64(time.Second)).Verdict
			}
			if v := syn(tc.given, 61000); v != engine.Accept {
				t.Errorf("to %v, an address of the answer: %v", tc.given, v)
			}
			if v := syn(tc.other, 61001); v != engine.Drop {
				t.Errorf("to %v, an address no answer gave: %v", tc.other, v)
			}
		})
	}
}
