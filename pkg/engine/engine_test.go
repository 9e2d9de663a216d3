package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// homePolicy is the policy the table tests speak about.
const homePolicy = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
networks = ["192.168.1.0/24"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"

[[segment]]
from = "iot"
to = "lan"
action = "micro"

[[segment]]
from = "lan"
to = "*"
action = "allow"

[[segment]]
from = "wan"
to = "iot"
action = "deny"

[[group]]
name = "cameras"

[[group]]
name = "plugs"

[[device]]
name = "cam"
mac = "02:00:00:00:00:11"
ip = ["10.77.0.11"]
groups = ["cameras"]

[[device]]
name = "plug1"
mac = "02:00:00:00:00:21"
ip = ["10.77.0.21"]
groups = ["plugs"]

[[device]]
name = "plug2"
mac = "02:00:00:00:00:22"
ip = ["10.77.0.22"]
groups = ["plugs"]

[[device]]
name = "nvr"
ip = ["192.168.1.20"]

[[allow]]
name = "cams-to-nvr"
from = "group:cameras"
to = "device:nvr"
services = ["tcp/554", "udp/5000-5010", "icmp"]

[[allow]]
name = "plugs-cloud"
from = "group:plugs"
to = "zone:wan"
services = ["tcp/8883"]
hours = ["06:00-23:00"]
days = ["mon-fri"]

[[allow]]
name = "cam-cloud"
from = "device:cam"
to = "net:203.0.113.0/24"
services = ["tcp/443"]
packet_size = "40-1500"
max_new_flows = "2/s"
`

// pkt builds a packet from "PROTO SRC[:PORT] -> DST[:PORT] [mac=MAC] [len=N] [flags=S|A|F|R]".
func pkt(t *testing.T, spec string) *packet.Packet {
	t.Helper()
	f := strings.Fields(spec)
	if len(f) < 4 || f[2] != "->" {
		t.Fatalf("bad packet spec %q", spec)
	}
	p := &packet.Packet{Kind: packet.KindOK, Length: 60}
	proto, err := parseProtoName(f[0])
	if err != nil {
		t.Fatal(err)
	}
	p.Proto = proto
	p.Src, p.SrcPort = endpoint(t, f[1])
	p.Dst, p.DstPort = endpoint(t, f[3])
	switch proto {
	case packet.ProtoTCP:
		p.TCPFlags = packet.TCPSyn
	case packet.ProtoICMP:
		p.ICMPType = 8 // echo request
	case packet.ProtoICMPv6:
		p.ICMPType = 128
	}
	for _, opt := range f[4:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "mac":
			hw, err := net.ParseMAC(v)
			if err != nil {
				t.Fatal(err)
			}
			p.HasMAC = true
			copy(p.SrcMAC[:], hw)
		case "len":
			n, _ := strconv.Atoi(v)
			p.Length = uint16(n)
		case "flags":
			p.TCPFlags = 0
			for _, c := range v {
				p.TCPFlags |= map[rune]uint8{'S': packet.TCPSyn, 'A': packet.TCPAck, 'F': packet.TCPFin, 'R': packet.TCPRst}[c]
			}
		case "type", "id":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			if k == "type" {
				p.ICMPType = uint8(n)
			} else {
				p.ICMPID = uint16(n)
			}
		case "quote":
			// quote=PROTO,SRC[:PORT],DST[:PORT][,type,id]: what an ICMP
			// error quotes.
			q := strings.Split(v, ",")
			quoted := pkt(t, strings.Join([]string{q[0], q[1], "->", q[2]}, " "))
			p.Quoted = packet.Quote{Valid: true, Src: quoted.Src, Dst: quoted.Dst, Proto: quoted.Proto, SrcPort: quoted.SrcPort, DstPort: quoted.DstPort, ICMPType: quoted.ICMPType}
			if len(q) == 5 {
				ty, _ := strconv.Atoi(q[3])
				id, _ := strconv.Atoi(q[4])
				p.Quoted.ICMPType, p.Quoted.ICMPID = uint8(ty), uint16(id)
			}
		case "kind":
			p.Kind = map[string]packet.Kind{"fragment": packet.KindFragment, "truncated": packet.KindTruncated, "malformed": packet.KindMalformed, "tunnel": packet.KindTunnel, "not-ip": packet.KindNotIP}[v]
		default:
			t.Fatalf("bad option %q", opt)
		}
	}
	return p
}

func parseProtoName(s string) (uint8, error) {
	switch s {
	case "tcp":
		return packet.ProtoTCP, nil
	case "udp":
		return packet.ProtoUDP, nil
	case "icmp":
		return packet.ProtoICMP, nil
	case "icmpv6":
		return packet.ProtoICMPv6, nil
	case "gre":
		return packet.ProtoGRE, nil
	}
	return 0, fmt.Errorf("unknown proto %q", s)
}

func endpoint(t *testing.T, s string) (netip.Addr, uint16) {
	t.Helper()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), ap.Port()
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a, 0
}

func compile(t testing.TB, src string) *policy.Policy {
	t.Helper()
	cfg, _, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// monday10 is a Monday, 10:00 UTC.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestVerdicts(t *testing.T) {
	pol := compile(t, homePolicy)
	tests := []struct {
		name    string
		packet  string
		at      time.Time
		verdict Verdict
		layer   Layer
		rule    string
		reason  Reason
	}{
		{"camera streams to the NVR", "tcp 10.77.0.11:40000 -> 192.168.1.20:554 mac=02:00:00:00:00:11", monday10, Accept, LayerPico, "cams-to-nvr", ReasonAllowRule},
		{"camera RTP inside the port range", "udp 10.77.0.11:40000 -> 192.168.1.20:5007", monday10, Accept, LayerPico, "cams-to-nvr", ReasonAllowRule},
		{"camera just past the port range", "udp 10.77.0.11:40000 -> 192.168.1.20:5011", monday10, Drop, LayerMicro, "", ReasonNoAllowRule},
		{"camera pings the NVR", "icmp 10.77.0.11 -> 192.168.1.20", monday10, Accept, LayerPico, "cams-to-nvr", ReasonAllowRule},
		{"camera tries ssh on the NVR", "tcp 10.77.0.11:40000 -> 192.168.1.20:22", monday10, Drop, LayerMicro, "", ReasonNoAllowRule},
		{"plug talks to plug", "tcp 10.77.0.21:40000 -> 10.77.0.22:80 mac=02:00:00:00:00:21", monday10, Drop, LayerMicro, "", ReasonNoAllowRule},
		{"plug reaches its broker in the window", "tcp 10.77.0.21:40000 -> 198.51.100.7:8883", monday10, Accept, LayerPico, "plugs-cloud", ReasonWithinLimits},
		{"plug reaches its broker at night", "tcp 10.77.0.21:40000 -> 198.51.100.7:8883", monday10.Add(14 * time.Hour), Drop, LayerPico, "plugs-cloud", ReasonOutsideWindow},
		{"plug reaches its broker on Sunday", "tcp 10.77.0.21:40000 -> 198.51.100.7:8883", monday10.Add(-24 * time.Hour), Drop, LayerPico, "plugs-cloud", ReasonOutsideWindow},
		{"camera to its cloud net", "tcp 10.77.0.11:40000 -> 203.0.113.9:443 len=60", monday10, NeedMore, LayerPico, "cam-cloud", ReasonInspecting},
		{"camera to its cloud with a jumbo first packet", "tcp 10.77.0.11:40000 -> 203.0.113.9:443 len=9000", monday10, Drop, LayerPico, "cam-cloud", ReasonPacketSize},
		{"camera to another cloud", "tcp 10.77.0.11:40000 -> 198.51.100.9:443", monday10, Drop, LayerMicro, "", ReasonNoAllowRule},
		{"wan scans the camera", "tcp 198.51.100.9:40000 -> 10.77.0.11:23", monday10, Drop, LayerSegment, "wan->iot", ReasonSegmentDeny},
		{"wan to lan has no segment", "tcp 198.51.100.9:40000 -> 192.168.1.20:23", monday10, Drop, LayerSegment, "", ReasonNoSegment},
		{"lan reaches everything", "tcp 192.168.1.20:40000 -> 10.77.0.21:80", monday10, Accept, LayerSegment, "lan->*", ReasonSegmentAllow},
		{"camera MAC with a plug's address", "tcp 10.77.0.21:40000 -> 192.168.1.20:554 mac=02:00:00:00:00:11", monday10, Drop, LayerIdentify, "", ReasonSpoofedMAC},
		{"camera's address from a stranger's MAC", "tcp 10.77.0.11:40000 -> 192.168.1.20:554 mac=02:00:00:00:99:99", monday10, Drop, LayerIdentify, "", ReasonSpoofedAddr},
		{"fragment", "udp 10.77.0.11 -> 192.168.1.20 kind=fragment", monday10, Drop, LayerDecode, "", ReasonFragment},
		{"truncated", "tcp 10.77.0.11 -> 192.168.1.20 kind=truncated", monday10, Drop, LayerDecode, "", ReasonTruncated},
		{"malformed", "tcp 10.77.0.11 -> 192.168.1.20 kind=malformed", monday10, Drop, LayerDecode, "", ReasonMalformed},
		{"GRE tunnel is judged on its outer header", "gre 10.77.0.11 -> 192.168.1.20 kind=tunnel", monday10, Drop, LayerMicro, "", ReasonNoAllowRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(pol, Options{})
			d := e.NewWorker().Judge(pkt(t, tt.packet), tt.at.UnixNano(), NoMeta)
			got := fmt.Sprintf("%s %s %q %q", d.Verdict, d.Layer, d.RuleName(pol), d.Reason)
			want := fmt.Sprintf("%s %s %q %q", tt.verdict, tt.layer, tt.rule, tt.reason)
			if got != want {
				t.Errorf("(-want +got)\n-%s\n+%s", want, got)
			}
			// explain must agree with the pipeline.
			tr := e.Explain(pkt(t, tt.packet), tt.at, NoMeta)
			if tr.Decision.Verdict != d.Verdict || tr.Decision.Layer != d.Layer || tr.Decision.Rule != d.Rule {
				t.Errorf("explain says %s %s rule %d; judge says %s %s rule %d", tr.Decision.Verdict, tr.Decision.Layer, tr.Decision.Rule, d.Verdict, d.Layer, d.Rule)
			}
		})
	}
}

func TestFlowCacheAndReplies(t *testing.T) {
	pol := compile(t, homePolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	first := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 192.168.1.20:554"), now, NoMeta)
	reply := w.Judge(pkt(t, "tcp 192.168.1.20:554 -> 10.77.0.11:40000 flags=SA"), now+1, NoMeta)
	if !first.NewFlow || first.Verdict != Accept {
		t.Fatalf("first packet: %+v", first)
	}
	if !reply.Cached || reply.Verdict != Accept || reply.NewFlow {
		t.Fatalf("reply should be answered from the flow cache: %+v", reply)
	}
	// The NVR opening a connection to the camera is another flow, and no
	// rule allows it.
	back := w.Judge(pkt(t, "tcp 192.168.1.20:554 -> 10.77.0.11:40001"), now+2, NoMeta)
	if back.Verdict != Accept || back.Layer != LayerSegment {
		t.Fatalf("lan->iot is allowed by segment: %+v", back)
	}
	if got := e.Stats().CacheHits.Load(); got != 1 {
		t.Errorf("cache hits = %d, want 1", got)
	}
}

func TestMidStreamReplyIsJudgedAsReply(t *testing.T) {
	pol := compile(t, homePolicy)
	w := New(pol, Options{}).NewWorker()
	// The capture starts after the handshake: the first packet seen is
	// the NVR's answer to the camera.
	d := w.Judge(pkt(t, "tcp 192.168.1.20:554 -> 10.77.0.11:40000 flags=A"), monday10.UnixNano(), NoMeta)
	if d.Verdict != Accept {
		t.Fatalf("mid-stream reply of an allowed flow: %+v", d)
	}
	// A mid-stream packet whose reverse is not allowed either stays dropped.
	d = w.Judge(pkt(t, "tcp 198.51.100.9:443 -> 10.77.0.21:40000 flags=A"), monday10.UnixNano(), NoMeta)
	if d.Verdict != Drop {
		t.Fatalf("mid-stream packet of a denied flow: %+v", d)
	}
}

func TestWindowClosesOnCachedFlow(t *testing.T) {
	pol := compile(t, homePolicy)
	var events []Event
	e := New(pol, Options{Sink: SinkFunc(func(ev Event) { events = append(events, ev) })})
	w := e.NewWorker()
	at := time.Date(2026, 11, 23, 22, 59, 0, 0, time.UTC)
	if d := w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 198.51.100.7:8883"), at.UnixNano(), NoMeta); d.Verdict != Accept {
		t.Fatalf("in window: %+v", d)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 198.51.100.7:8883 flags=A"), at.Add(30*time.Second).UnixNano(), NoMeta); d.Verdict != Accept {
		t.Fatalf("still in window: %+v", d)
	}
	d := w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 198.51.100.7:8883 flags=A"), at.Add(61*time.Second).UnixNano(), NoMeta)
	if d.Verdict != Drop || d.Reason != ReasonOutsideWindow {
		t.Fatalf("window closed at 23:00: %+v", d)
	}
	if len(events) != 1 || events[0].Type != EventWindow || events[0].Device != "plug1" || events[0].DPort != 8883 {
		t.Fatalf("events: %+v", events)
	}
}

func TestNewFlowRate(t *testing.T) {
	pol := compile(t, homePolicy)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	var got []Verdict
	for port := uint16(40000); port < 40004; port++ {
		p := pkt(t, "tcp 10.77.0.11:1 -> 203.0.113.9:443")
		p.SrcPort = port
		got = append(got, w.Judge(p, now, NoMeta).Verdict)
	}
	// 2/s: two flows at once, then refused until time passes.
	want := []Verdict{NeedMore, NeedMore, Drop, Drop}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("verdicts %v, want %v", got, want)
	}
	p := pkt(t, "tcp 10.77.0.11:50000 -> 203.0.113.9:443")
	if d := w.Judge(p, now+int64(600*time.Millisecond), NoMeta); d.Verdict != NeedMore {
		t.Fatalf("after 600ms one more flow is allowed: %+v", d)
	}
}

func TestInspectionThenFastPath(t *testing.T) {
	pol := compile(t, homePolicy)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	var got []Verdict
	for i, spec := range []string{
		"tcp 10.77.0.11:40000 -> 203.0.113.9:443",
		"tcp 203.0.113.9:443 -> 10.77.0.11:40000 flags=SA",
		"tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A",
		"tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A len=1500",
	} {
		got = append(got, w.Judge(pkt(t, spec), now+int64(i), NoMeta).Verdict)
	}
	want := []Verdict{NeedMore, NeedMore, Accept, Accept}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("verdicts %v, want %v", got, want)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A len=1600"), now+5, NoMeta); d.Verdict != Drop || d.Reason != ReasonPacketSize {
		t.Fatalf("oversized packet on a cached flow: %+v", d)
	}
}

func TestReloadJudgesCachedFlowsAgain(t *testing.T) {
	pol := compile(t, homePolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	if d := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 192.168.1.20:554"), now, NoMeta); d.Verdict != Accept {
		t.Fatal(d)
	}
	stricter := strings.Replace(homePolicy, `services = ["tcp/554", "udp/5000-5010", "icmp"]`, `services = ["udp/5000-5010"]`, 1)
	e.Swap(compile(t, stricter), now)
	// The next packet of the flow is the NVR's reply: the flow is judged
	// again as the camera opened it, and now refused.
	d := w.Judge(pkt(t, "tcp 192.168.1.20:554 -> 10.77.0.11:40000 flags=SA"), now+1, NoMeta)
	if d.Verdict != Drop || d.Layer != LayerMicro || !d.NewFlow {
		t.Fatalf("after reload: %+v", d)
	}
}

func TestMonitorModeNeverDrops(t *testing.T) {
	pol := compile(t, strings.Replace(homePolicy, `timezone = "UTC"`, "timezone = \"UTC\"\nmode = \"monitor\"", 1))
	var events int
	w := New(pol, Options{Sink: SinkFunc(func(Event) { events++ })}).NewWorker()
	d := w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 10.77.0.22:80"), monday10.UnixNano(), NoMeta)
	if d.Verdict != Accept || !d.WouldDrop || d.Layer != LayerMicro || events != 1 {
		t.Fatalf("monitor: %+v, %d events", d, events)
	}
}

func TestDeviceBudgetsAndSilence(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plug-telemetry"
from = "device:plug2"
to = "zone:wan"
services = ["udp/9000"]
max_device_bytes = { amount = "1KB", per = "1h" }
min_device_bytes = { amount = "100B", per = "10m" }
`
	pol := compile(t, src)
	var events []Event
	e := New(pol, Options{Sink: SinkFunc(func(ev Event) { events = append(events, ev) })})
	w := e.NewWorker()
	now := monday10.UnixNano()
	e.Sweep(now)
	for i := 0; i < 2; i++ {
		d := w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000 len=400"), now+int64(i), NoMeta)
		if d.Verdict != Accept {
			t.Fatalf("packet %d: %+v", i, d)
		}
	}
	d := w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000 len=400"), now+3, NoMeta)
	if d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("budget of 1KB spent: %+v", d)
	}
	d = w.Judge(pkt(t, "udp 10.77.0.22:5001 -> 198.51.100.7:9000 len=100"), now+4, NoMeta)
	if d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("a new flow after the budget is spent: %+v", d)
	}
	if len(events) != 2 || events[0].Type != EventVolume {
		t.Fatalf("events: %+v", events)
	}
	// Nothing moves for ten minutes: the device is silent.
	e.Sweep(now + int64(10*time.Minute))
	e.Sweep(now + int64(20*time.Minute))
	if len(events) != 3 || events[2].Type != EventSilent || events[2].Device != "plug2" {
		t.Fatalf("silence events: %+v", events)
	}
}

func TestUnknownDevicesAreQuarantined(t *testing.T) {
	src := homePolicy + `
[inventory]
unknown_group = "quarantine"

[[group]]
name = "quarantine"

[[allow]]
name = "quarantine-dns-only"
from = "group:quarantine"
to = "zone:wan"
services = ["udp/53"]
`
	pol := compile(t, src)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	// 10.77.0.99 is in the iot zone but in no [[device]].
	if d := w.Judge(pkt(t, "udp 10.77.0.99:5000 -> 198.51.100.1:53"), now, NoMeta); d.Verdict != Accept || d.RuleName(pol) != "quarantine-dns-only" {
		t.Fatalf("an unknown device's DNS: %+v", d)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.99:5000 -> 198.51.100.1:443"), now, NoMeta); d.Verdict != Drop || d.Layer != LayerMicro {
		t.Fatalf("an unknown device's HTTPS: %+v", d)
	}
	// Known devices are not in the group, and neither is the internet.
	if d := w.Judge(pkt(t, "udp 10.77.0.21:5000 -> 198.51.100.1:53"), now, NoMeta); d.Verdict != Drop {
		t.Fatalf("a known plug is not quarantined: %+v", d)
	}
}

// Segments the kernel merged (GRO) arrive as one long packet: its length
// is no reason to cut a flow whose packets are each within bounds.
func TestMergedSegmentsAreNotOversized(t *testing.T) {
	pol := compile(t, homePolicy)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 203.0.113.9:443"), now, NoMeta)
	merged := Meta{InZone: policy.None, OutZone: policy.None, Merged: true}
	if d := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A len=9000"), now+1, merged); d.Verdict == Drop {
		t.Fatalf("merged segments: %+v", d)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A len=9000"), now+2, NoMeta); d.Verdict != Drop || d.Reason != ReasonPacketSize {
		t.Fatalf("one 9000-byte packet: %+v", d)
	}
}

// A rule's byte bound is the kernel's on the fast path: it marks the flow
// with the rule's class and queues a packet again, tripped, when the flow
// passes the bound. The engine then cuts the flow.
func TestByteBoundClassesAndTrips(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plug-upload"
from = "group:plugs"
to = "net:198.51.100.0/24"
services = ["tcp/443"]
max_flow_bytes = "10MB"

[[allow]]
name = "plug-ota"
from = "group:plugs"
to = "net:198.51.100.0/24"
services = ["tcp/8080"]
max_flow_bytes = "10MB"
`
	pol := compile(t, src)
	upload, ota := &pol.Rules[pol.UserRules-2], &pol.Rules[pol.UserRules-1]
	if upload.Class == 0 || upload.Class != ota.Class || pol.Classes[upload.Class].Bytes != 10_000_000 {
		t.Fatalf("classes %+v, rules in %d and %d: want one class for both 10MB rules", pol.Classes, upload.Class, ota.Class)
	}
	class := upload.Class
	var events []Event
	w := New(pol, Options{Sink: SinkFunc(func(e Event) { events = append(events, e) })}).NewWorker()
	now := monday10.UnixNano()
	d := w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 198.51.100.7:443"), now, NoMeta)
	if d.Verdict != Accept || d.Class != class {
		t.Fatalf("first packet: %+v, want accept in class %d", d, class)
	}
	tripped := Meta{InZone: policy.None, OutZone: policy.None, Tripped: true}
	d = w.Judge(pkt(t, "tcp 10.77.0.21:40000 -> 198.51.100.7:443 flags=A"), now+1, tripped)
	if d.Verdict != Drop || d.Reason != ReasonFlowBytes {
		t.Fatalf("tripped packet: %+v", d)
	}
	// A tripped packet of a flow the engine no longer remembers (a daemon
	// restart) is cut just the same.
	w2 := New(pol, Options{}).NewWorker()
	if d := w2.Judge(pkt(t, "tcp 10.77.0.22:40001 -> 198.51.100.7:8080 flags=A"), now, tripped); d.Verdict != Drop || d.Reason != ReasonFlowBytes {
		t.Fatalf("tripped packet of an unknown flow: %+v", d)
	}
	if len(events) != 1 || events[0].Type != EventVolume || events[0].Rule != "plug-upload" {
		t.Fatalf("events %+v", events)
	}
}

// Flows judged again after a reload are not new flows: a device with many
// running flows must not trip its new-flow rate just because the policy
// changed.
func TestRejudgedFlowsAreNotNewFlows(t *testing.T) {
	pol := compile(t, homePolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	// cam-cloud allows 2 new flows a second: open 2, each with one packet.
	for port := uint16(40000); port < 40002; port++ {
		p := pkt(t, "tcp 10.77.0.11:1 -> 203.0.113.9:443")
		p.SrcPort = port
		if d := w.Judge(p, now, NoMeta); d.Verdict == Drop {
			t.Fatalf("flow %d: %+v", port, d)
		}
	}
	e.Swap(compile(t, homePolicy), now)
	for port := uint16(40000); port < 40002; port++ {
		p := pkt(t, "tcp 10.77.0.11:1 -> 203.0.113.9:443 flags=A")
		p.SrcPort = port
		if d := w.Judge(p, now+1, NoMeta); d.Verdict == Drop {
			t.Fatalf("running flow %d after a reload: %+v", port, d)
		}
	}
	// The same flows asked about as running conntrack entries.
	q := Query{From: netip.MustParseAddr("10.77.0.11"), To: netip.MustParseAddr("203.0.113.9"), Proto: packet.ProtoTCP, DPort: 443, At: monday10, Existing: true}
	if d := e.ExplainQuery(q).Decision; d.Verdict == Drop {
		t.Fatalf("running flow judged from conntrack: %+v", d)
	}
	// New flows are still held to the rate, which the reload kept: the
	// two flows before it used it up.
	p := pkt(t, "tcp 10.77.0.11:40009 -> 203.0.113.9:443")
	if d := w.Judge(p, now+2, NoMeta); d.Verdict != Drop || d.Reason != ReasonNewFlowRate {
		t.Fatalf("a new flow over the rate: %+v", d)
	}
}

// A reload keeps a device's spent byte budget: it does not hand out a
// fresh one.
func TestReloadKeepsBudgets(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plug-telemetry"
from = "device:plug2"
to = "zone:wan"
services = ["udp/9000"]
max_device_bytes = { amount = "1KB", per = "1h" }
`
	e := New(compile(t, src), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for i := 0; i < 3; i++ {
		w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000 len=400"), now+int64(i), NoMeta)
	}
	e.Swap(compile(t, src), now+10)
	if d := w.Judge(pkt(t, "udp 10.77.0.22:5001 -> 198.51.100.7:9000 len=100"), now+11, NoMeta); d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("a new flow after the reload, budget spent before it: %+v", d)
	}
	// A rule whose bound changed starts afresh.
	e.Swap(compile(t, strings.Replace(src, `amount = "1KB"`, `amount = "2KB"`, 1)), now+20)
	if d := w.Judge(pkt(t, "udp 10.77.0.22:5002 -> 198.51.100.7:9000 len=100"), now+21, NoMeta); d.Verdict != Accept {
		t.Fatalf("a new flow under a new budget: %+v", d)
	}
}
