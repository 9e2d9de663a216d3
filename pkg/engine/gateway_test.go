package engine

import (
	"net"
	"net/netip"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// demoPolicy is rules/demo.toml, the lab's policy: zones wan (wan0), lan
// (lan0) and iot (br-iot); the admin PC 10.88.0.10 is known by address
// only; the gateway is .1 on every side.
func demoPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	cfg, _, err := config.Load("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// gwPacket is one first packet: proto "tcp", "udp", "icmp" or "icmpv6";
// for ICMP the port is the message type. mac may be "".
func gwPacket(t testing.TB, proto, src string, dst string, port uint16, mac string) *packet.Packet {
	t.Helper()
	p := &packet.Packet{Kind: packet.KindOK, Length: 60, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst)}
	switch proto {
	case "tcp":
		p.Proto, p.SrcPort, p.DstPort, p.TCPFlags = packet.ProtoTCP, 40000, port, packet.TCPSyn
	case "udp":
		p.Proto, p.SrcPort, p.DstPort = packet.ProtoUDP, 40000, port
	case "icmp":
		p.Proto, p.ICMPType = packet.ProtoICMP, uint8(port)
	case "icmpv6":
		p.Proto, p.ICMPType = packet.ProtoICMPv6, uint8(port)
	default:
		t.Fatalf("unknown proto %q", proto)
	}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			t.Fatal(err)
		}
		p.HasMAC = true
		copy(p.SrcMAC[:], hw)
	}
	return p
}

// meta is what the kernel path knows: the ingress interface's zone, and
// the egress's, or "gateway" on the input hook.
func meta(pol *policy.Policy, in, out string) Meta {
	m := NoMeta
	if in != "" {
		m.InZone = pol.ZoneOfInterface(in)
	}
	switch out {
	case "":
	case "gateway":
		m.OutZone = policy.Gateway
	default:
		m.OutZone = pol.ZoneOfInterface(out)
	}
	return m
}

func TestGatewayAndSpoofing(t *testing.T) {
	pol := demoPolicy(t)
	const unknownMAC = "02:00:00:00:00:99"
	tests := []struct {
		name       string
		proto      string
		src, dst   string
		port       uint16
		mac        string
		in, out    string // interfaces; out "gateway" is the input hook
		verdict    Verdict
		layer      Layer
		reason     Reason
		rule       string
		wantDevice string // the source device the decision names
	}{
		// Hole 3: the gateway is judged.
		{name: "a plug cannot reach SSH on the gateway", proto: "tcp", src: "10.77.0.21", dst: "10.77.0.1", port: 22, in: "br-iot", out: "gateway",
			verdict: Drop, layer: LayerSegment, reason: ReasonNoSegment, wantDevice: "plug1"},
		{name: "nor on the gateway's LAN address", proto: "tcp", src: "10.77.0.21", dst: "10.88.0.1", port: 22, in: "br-iot", out: "gateway",
			verdict: Drop, layer: LayerSegment, reason: ReasonNoSegment, wantDevice: "plug1"},
		{name: "zone:lan does not name the gateway's LAN address", proto: "tcp", src: "10.88.0.10", dst: "10.88.0.1", port: 80, in: "lan0", out: "gateway",
			verdict: Drop, layer: LayerMicro, reason: ReasonNoAllowRule, wantDevice: "admin"},
		{name: "a to = gateway rule opens its port", proto: "tcp", src: "10.88.0.10", dst: "10.88.0.1", port: 22, in: "lan0", out: "gateway",
			verdict: Accept, layer: LayerPico, reason: ReasonAllowRule, rule: "admin-ssh-gateway", wantDevice: "admin"},
		{name: "offline, the gateway's listed address is the gateway", proto: "tcp", src: "10.88.0.10", dst: "10.88.0.1", port: 22,
			verdict: Accept, layer: LayerPico, reason: ReasonAllowRule, rule: "admin-ssh-gateway", wantDevice: "admin"},
		{name: "DNS to the gateway by default", proto: "udp", src: "10.77.0.21", dst: "10.77.0.1", port: 53, in: "br-iot", out: "gateway",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:dns", wantDevice: "plug1"},
		{name: "but not from the internet (wan -> * does not name the gateway)", proto: "udp", src: "203.0.113.9", dst: "198.51.100.1", port: 53, in: "wan0", out: "gateway",
			verdict: Drop, layer: LayerSegment, reason: ReasonNoSegment},
		{name: "DHCP from 0.0.0.0 to the broadcast", proto: "udp", src: "0.0.0.0", dst: "255.255.255.255", port: 67, mac: "02:00:00:00:00:21", in: "br-iot", out: "gateway",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:dhcp", wantDevice: "plug1"},
		{name: "offline, DHCP from 0.0.0.0 is the device of its MAC", proto: "udp", src: "0.0.0.0", dst: "255.255.255.255", port: 67, mac: "02:00:00:00:00:21",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:dhcp", wantDevice: "plug1"},
		{name: "IPv6 duplicate address detection from ::", proto: "icmpv6", src: "::", dst: "ff02::1:ff00:21", port: 135, mac: "02:00:00:00:00:21", in: "br-iot", out: "gateway",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:ipv6_nd", wantDevice: "plug1"},
		{name: "neighbour discovery from a known device's link-local address", proto: "icmpv6", src: "fe80::21", dst: "ff02::1:ff00:1", port: 135, mac: "02:00:00:00:00:21",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:ipv6_nd", wantDevice: "plug1"},
		{name: "a router advertisement from a device is no default", proto: "icmpv6", src: "fe80::21", dst: "ff02::1", port: 134, mac: "02:00:00:00:00:21", in: "br-iot", out: "gateway",
			verdict: Drop, layer: LayerMicro, reason: ReasonNoAllowRule, wantDevice: "plug1"},
		{name: "multicast is one flow: the bridged copy is judged as the gateway's", proto: "icmpv6", src: "fe80::21", dst: "ff02::1:ff00:1", port: 135, mac: "02:00:00:00:00:21", in: "br-iot", out: "br-iot",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:ipv6_nd", wantDevice: "plug1"},
		{name: "a DNS query broadcast to the link is no default", proto: "udp", src: "10.77.0.21", dst: "10.77.0.255", port: 53, in: "br-iot", out: "gateway",
			verdict: Drop, layer: LayerMicro, reason: ReasonNoAllowRule, wantDevice: "plug1"},
		{name: "ping narrowed to lan and iot: not from the wan", proto: "icmp", src: "203.0.113.9", dst: "198.51.100.1", port: 8, in: "wan0", out: "gateway",
			verdict: Drop, layer: LayerSegment, reason: ReasonNoSegment},
		{name: "ping from iot", proto: "icmp", src: "10.77.0.11", dst: "10.77.0.1", port: 8, in: "br-iot", out: "gateway",
			verdict: Accept, layer: LayerMicro, reason: ReasonGatewayDefault, rule: "default:ping", wantDevice: "cam"},
		{name: "unspecified source outside DHCP and ND", proto: "tcp", src: "0.0.0.0", dst: "198.51.100.2", port: 443, in: "br-iot", out: "wan0",
			verdict: Drop, layer: LayerIdentify, reason: ReasonUnspecifiedSrc},

		// Hole 4: an address proves nothing outside its zone.
		{name: "unknown MAC on the IoT bridge with the LAN admin's address", proto: "tcp", src: "10.88.0.10", dst: "10.77.0.30", port: 80, mac: unknownMAC, in: "br-iot", out: "br-iot",
			verdict: Drop, layer: LayerIdentify, reason: ReasonSpoofedZone, wantDevice: "admin"},
		{name: "explain: the same from the IoT bridge to the hub", proto: "tcp", src: "10.88.0.10", dst: "10.77.0.30", port: 80, mac: unknownMAC, in: "br-iot",
			verdict: Drop, layer: LayerIdentify, reason: ReasonSpoofedZone, wantDevice: "admin"},
		{name: "the admin from the LAN", proto: "tcp", src: "10.88.0.10", dst: "10.77.0.30", port: 80, in: "lan0", out: "br-iot",
			verdict: Accept, layer: LayerPico, reason: ReasonAllowRule, rule: "admin-to-hub", wantDevice: "admin"},
		{name: "a LAN address arriving from the internet", proto: "tcp", src: "10.88.0.10", dst: "10.77.0.30", port: 80, in: "wan0", out: "br-iot",
			verdict: Drop, layer: LayerIdentify, reason: ReasonSpoofedZone, wantDevice: "admin"},
		{name: "the gateway's own address arriving on the bridge", proto: "tcp", src: "10.77.0.1", dst: "10.77.0.30", port: 80, in: "br-iot", out: "br-iot",
			verdict: Drop, layer: LayerIdentify, reason: ReasonSpoofedZone},
		{name: "an internet address from the IoT bridge is left to reverse-path filtering", proto: "tcp", src: "203.0.113.9", dst: "10.77.0.30", port: 80, in: "br-iot", out: "br-iot",
			verdict: Drop, layer: LayerMicro, reason: ReasonNoAllowRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := gwPacket(t, tc.proto, tc.src, tc.dst, tc.port, tc.mac)
			e := New(pol, Options{})
			d := e.NewWorker().Judge(p, monday10.UnixNano(), meta(pol, tc.in, tc.out))
			if d.Verdict != tc.verdict || d.Layer != tc.layer || d.Reason != tc.reason || d.RuleName(pol) != tc.rule {
				t.Errorf("got %v by %v rule %q: %v\nwant %v by %v rule %q: %v", d.Verdict, d.Layer, d.RuleName(pol), d.Reason, tc.verdict, tc.layer, tc.rule, tc.reason)
			}
			if got := pol.DeviceName(d.SrcDevice); tc.wantDevice != "" && got != tc.wantDevice {
				t.Errorf("source device %q, want %q", got, tc.wantDevice)
			}
			// explain runs the same stages: it must agree.
			m := meta(pol, tc.in, tc.out)
			if tr := e.Explain(p, monday10, m); tr.Decision.Verdict != d.Verdict || tr.Decision.Reason != d.Reason {
				t.Errorf("explain says %v (%v), Judge %v (%v)", tr.Decision.Verdict, tr.Decision.Reason, d.Verdict, d.Reason)
			}
		})
	}
}

// Spoofing is an event, raised with the identify layer.
func TestSpoofedZoneRaisesEvent(t *testing.T) {
	pol := demoPolicy(t)
	var got []Event
	e := New(pol, Options{Sink: SinkFunc(func(ev Event) { got = append(got, ev) })})
	p := gwPacket(t, "udp", "10.88.0.10", "10.77.0.30", 5683, "02:00:00:00:00:99")
	e.NewWorker().Judge(p, monday10.UnixNano(), meta(pol, "br-iot", "br-iot"))
	if len(got) != 1 || got[0].Type != EventSpoof || got[0].Layer != LayerIdentify || got[0].Device != "admin" {
		t.Fatalf("events %+v, want one spoofed_address from identify naming the admin", got)
	}
}

// On the input hook a packet the kernel queued is never a reply to the
// gateway's own connection (conntrack passes those): a device's lone ACK
// to the gateway must not be accepted as the reply of a flow "the gateway
// opened".
func TestMidStreamToGatewayIsNoReply(t *testing.T) {
	pol := demoPolicy(t)
	p := gwPacket(t, "tcp", "10.77.0.21", "10.77.0.1", 22, "02:00:00:00:00:21")
	p.SrcPort, p.DstPort, p.TCPFlags = 22, 40000, packet.TCPAck // as if the gateway's SSH client were answered
	p.Src, p.Dst = netip.MustParseAddr("10.77.0.21"), netip.MustParseAddr("10.77.0.1")
	d := New(pol, Options{}).NewWorker().Judge(p, monday10.UnixNano(), meta(pol, "br-iot", "gateway"))
	if d.Verdict != Drop {
		t.Fatalf("a mid-stream packet to the gateway was accepted: %v by %v (%v)", d.Verdict, d.Layer, d.Reason)
	}
	// Nor offline, nor arriving on an interface in no zone: the engine
	// cannot tell a capture of the gateway's own traffic from a packet
	// forged on a bridge no zone names, so it trusts neither.
	for _, m := range []Meta{NoMeta, {InZone: policy.None, OutZone: policy.None}} {
		if d := New(pol, Options{}).NewWorker().Judge(p, monday10.UnixNano(), m); d.Verdict != Drop {
			t.Fatalf("without zones: %v by %v (%v), want a drop", d.Verdict, d.Layer, d.Reason)
		}
	}
}

func TestGatewayDefaultsTurnedOffOrNarrowed(t *testing.T) {
	const base = `
[[zone]]
name = "wan"
interfaces = ["wan0"]
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
interfaces = ["lan0"]
networks = ["10.88.0.0/24"]

[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[device]]
name = "cam"
mac = "02:00:00:00:00:11"
ip = ["10.77.0.11"]

[[allow]]
name = "unused"
from = "zone:lan"
to = "zone:wan"
`
	for _, tc := range []struct {
		name, gateway string
		src           string
		in            string
		want          Verdict
	}{
		{"default on", "", "10.77.0.11", "br-iot", Accept},
		{"turned off", "[gateway]\ndns = false\n", "10.77.0.11", "br-iot", Drop},
		{"narrowed to lan: iot refused", "[gateway]\ndns = [\"zone:lan\"]\n", "10.77.0.11", "br-iot", Drop},
		{"narrowed to lan: lan allowed", "[gateway]\ndns = [\"zone:lan\"]\n", "10.88.0.5", "lan0", Accept},
		{"narrowed to a device", "[gateway]\ndns = [\"device:cam\"]\n", "10.77.0.11", "br-iot", Accept},
		{"narrowed to a net", "[gateway]\ndns = [\"net:10.88.0.0/28\"]\n", "10.88.0.5", "lan0", Accept},
		{"narrowed to a net: outside it", "[gateway]\ndns = [\"net:10.88.0.0/28\"]\n", "10.88.0.50", "lan0", Drop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := compile(t, tc.gateway+base)
			p := gwPacket(t, "udp", tc.src, "10.77.0.1", 53, "")
			d := New(pol, Options{}).NewWorker().Judge(p, monday10.UnixNano(), meta(pol, tc.in, "gateway"))
			if d.Verdict != tc.want {
				t.Errorf("DNS from %s: %v by %v (%v), want %v", tc.src, d.Verdict, d.Layer, d.Reason, tc.want)
			}
		})
	}
}

// The gateway's stage and the spoofing checks are on the verdict path:
// no allocation for a new flow to the gateway (default, rule or denial) or
// a spoofed one.
func TestGatewayPathsAllocateNothing(t *testing.T) {
	pol := demoPolicy(t)
	e := New(pol, Options{FlowCapacity: 1 << 16, Sink: SinkFunc(func(Event) {})})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for _, tc := range []struct {
		name    string
		p       *packet.Packet
		in, out string
	}{
		{"default dns", gwPacket(t, "udp", "10.77.0.21", "10.77.0.1", 53, ""), "br-iot", "gateway"},
		{"narrowed default, by source selectors", gwPacket(t, "icmp", "10.77.0.21", "10.77.0.1", 8, ""), "br-iot", "gateway"},
		{"denied", gwPacket(t, "tcp", "10.77.0.21", "10.77.0.1", 22, ""), "br-iot", "gateway"},
		{"to = gateway rule", gwPacket(t, "tcp", "10.88.0.10", "10.88.0.1", 22, ""), "lan0", "gateway"},
		{"spoofed zone", gwPacket(t, "udp", "10.88.0.10", "10.77.0.30", 80, "02:00:00:00:00:99"), "br-iot", "br-iot"},
		{"link multicast", gwPacket(t, "icmpv6", "fe80::21", "ff02::1:ff00:1", 135, "02:00:00:00:00:21"), "br-iot", "br-iot"},
	} {
		m := meta(pol, tc.in, tc.out)
		p := *tc.p
		i := 0
		if n := testing.AllocsPerRun(500, func() {
			// A new flow every time: another port, and for ICMP, which
			// has none, another host of the same network.
			p.SrcPort++
			p.Src = tc.p.Src
			for range i % 50 {
				p.Src = p.Src.Next()
			}
			i++
			w.Judge(&p, now, m)
		}); n != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", tc.name, n)
		}
	}
}

// A flow judged again from its conntrack entry (after a reload) carries no
// ICMP type: an ICMP flow is a query, so a running ping to the gateway
// keeps its default.
func TestRejudgedPingToGatewayKeepsDefault(t *testing.T) {
	pol := demoPolicy(t)
	for _, q := range []Query{
		{From: netip.MustParseAddr("10.77.0.21"), To: netip.MustParseAddr("10.77.0.1"), Proto: packet.ProtoICMP, At: monday10, Existing: true},
		{From: netip.MustParseAddr("10.88.0.10"), To: netip.MustParseAddr("10.88.0.1"), Proto: packet.ProtoICMP, At: monday10},
	} {
		d := New(pol, Options{}).ExplainQuery(q).Decision
		if d.Verdict != Accept || d.RuleName(pol) != "default:ping" {
			t.Errorf("%v -> %v icmp: %v by %v rule %q, want the default ping", q.From, q.To, d.Verdict, d.Layer, d.RuleName(pol))
		}
	}
}
