package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// An error about an accepted flow, judged after a reload: the flow was
// judged by the older policy, so its opening is judged again under the new
// one. A policy that now denies the flow drops its errors; one that still
// allows it passes them, and nothing is stored either way.
func TestICMPErrorOfAFlowFromAnOlderPolicy(t *testing.T) {
	pol := compile(t, openerPolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	if d := w.Judge(pkt(t, "tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S"), now, NoMeta); d.Verdict != Accept {
		t.Fatalf("the admin's connection: %s", d.Verdict)
	}
	frag := pkt(t, "icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40000,10.77.0.21:8080")
	e.Swap(pol, now)
	flows := e.Flows().Len()
	if d := w.Judge(frag, now, NoMeta); d.Verdict != Accept || !d.Related || d.Layer != LayerPico || d.RuleName(pol) != "admin-to-plug" {
		t.Errorf("after a reload that keeps the flow allowed: %s %s %q", d.Verdict, d.Layer, d.RuleName(pol))
	}
	narrowed := compile(t, strings.Replace(openerPolicy, `services = ["tcp/8080", "icmp", "icmpv6"]`, `services = ["icmp", "icmpv6"]`, 1))
	e.Swap(narrowed, now)
	if d := w.Judge(frag, now, NoMeta); d.Verdict != Drop || d.Reason != ReasonErrorNoFlow {
		t.Errorf("after a reload that denies the flow: %s %q", d.Verdict, d.Reason)
	}
	if got := e.Flows().Len(); got != flows {
		t.Errorf("judging the errors changed the flow table: %d flows, had %d", got, flows)
	}
}

// On the kernel path the error's zones are those of its interfaces; the
// quoted packet went the other way. Judged with the zones swapped, the
// admin's connection to the plug is allowed; the plug's error about it,
// coming in on the IoT zone, passes. The same error claiming to come in on
// the LAN (where the plug's address is spoofed) is dropped as spoofed.
func TestICMPErrorOfAnUnknownFlowOnTheKernelPath(t *testing.T) {
	pol := compile(t, openerPolicy)
	zone := func(name string) int32 {
		for i, z := range pol.Zones {
			if z.Name == name {
				return int32(i)
			}
		}
		t.Fatalf("no zone %q", name)
		return 0
	}
	lan, iot := zone("lan"), zone("iot")
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	frag := pkt(t, "icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40000,10.77.0.21:8080")
	if d := w.Judge(frag, now, Meta{InZone: iot, OutZone: lan}); d.Verdict != Accept {
		t.Errorf("the plug's error about the admin's connection, iot -> lan: %s %s %q", d.Verdict, d.Layer, d.Reason)
	}
	if d := w.Judge(frag, now, Meta{InZone: lan, OutZone: iot}); d.Verdict != Drop || d.Layer != LayerIdentify {
		t.Errorf("the same error coming in on the LAN: %s %s %q, want a spoofing drop", d.Verdict, d.Layer, d.Reason)
	}
	// The admin's error about the plug's reply: the quoted packet is the
	// plug's, its flow the admin's.
	back := pkt(t, "icmp 10.88.0.10 -> 10.77.0.21 type=3 quote=tcp,10.77.0.21:8080,10.88.0.10:40000")
	if d := w.Judge(back, now, Meta{InZone: lan, OutZone: iot}); d.Verdict != Accept {
		t.Errorf("the admin's error about the plug's reply: %s %s %q", d.Verdict, d.Layer, d.Reason)
	}
}

// Judging an error's quoted flow is a dry run: it charges no new-flow
// rate, raises no event for the flow, and stores nothing. Errors about an
// allowed flow, many in one instant, leave the rule's one new flow a
// second to the device's own opening.
func TestICMPErrorsChargeNoRate(t *testing.T) {
	pol := compile(t, strings.Replace(openerPolicy, `services = ["tcp/8080", "icmp", "icmpv6"]`, `services = ["tcp/8080", "icmp", "icmpv6"]
max_new_flows = "1/s"`, 1))
	var events []Event
	e := New(pol, Options{Sink: SinkFunc(func(ev Event) { events = append(events, ev) })})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for port := 40000; port < 40010; port++ {
		p := pkt(t, "icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40000,10.77.0.21:8080")
		p.Quoted.SrcPort = uint16(port)
		if d := w.Judge(p, now, NoMeta); d.Verdict != Accept {
			t.Fatalf("error %d: %s %q", port-40000, d.Verdict, d.Reason)
		}
	}
	if len(events) != 0 || e.Flows().Len() != 0 {
		t.Errorf("the errors raised %d events and stored %d flows, want none", len(events), e.Flows().Len())
	}
	if d := w.Judge(pkt(t, "tcp 10.88.0.10:41000 -> 10.77.0.21:8080 flags=S"), now, NoMeta); d.Verdict != Accept {
		t.Errorf("the admin's own connection after the errors: %s %q (the errors spent its rate)", d.Verdict, d.Reason)
	}
}

// Judging errors about flows the table does not hold allocates nothing,
// accepted or refused, on IPv4 and IPv6.
func TestICMPErrorsOfUnknownFlowsDoNotAllocate(t *testing.T) {
	w := New(compile(t, openerPolicy), Options{}).NewWorker()
	now := monday10.UnixNano()
	for _, spec := range []string{
		"icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40000,10.77.0.21:8080",
		"icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40000,10.77.0.21:9999",
		"icmpv6 fd77::21 -> fd88::10 type=1 quote=tcp,[fd88::10]:40000,[fd77::21]:8080",
	} {
		p := pkt(t, spec)
		if n := testing.AllocsPerRun(200, func() { w.Judge(p, now, NoMeta) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", spec, n)
		}
	}
}

// On the input hook the error is for the gateway, and the quoted packet
// came from it: the camera's "port unreachable" about the gateway's answer
// to its DNS query speaks for the camera's flow to the gateway, which the
// gateway's default services allow. The hub's error about the gateway's
// packet to the camera speaks for no flow of the hub's, and is dropped.
func TestICMPErrorToTheGatewayOfAnUnknownFlow(t *testing.T) {
	pol := demoPolicy(t)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	m := meta(pol, "br-iot", "gateway")
	dns := pkt(t, "icmp 10.77.0.11 -> 10.77.0.1 type=3 mac=02:00:00:00:00:11 quote=udp,10.77.0.1:53,10.77.0.11:40000")
	if d := w.Judge(dns, now, m); d.Verdict != Accept {
		t.Errorf("the camera's error about the gateway's DNS answer: %s %s %q", d.Verdict, d.Layer, d.Reason)
	}
	ssh := pkt(t, "icmp 10.77.0.30 -> 10.77.0.1 type=3 mac=02:00:00:00:00:30 quote=tcp,10.77.0.1:22,10.77.0.11:40000")
	if d := w.Judge(ssh, now, m); d.Verdict != Drop {
		t.Errorf("the hub's error about an SSH answer to the camera: %s %s %q", d.Verdict, d.Layer, d.Reason)
	}
}

// The gateway's own connections are not judged, but errors about them
// are: plug1 (a device on the IoT zone) may not cut the gateway's
// connection to a WAN server, or shrink its path MTU, with a forged error;
// the server itself, a router on the WAN, and plug1 about the gateway's
// connection to plug1 may.
func TestICMPErrorOfTheGatewaysOwnConnection(t *testing.T) {
	cfg, _, err := config.Load("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	gw := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.88.0.1")}
	pol, err := policy.Compile(cfg, policy.Options{GatewayAddrs: gw})
	if err != nil {
		t.Fatal(err)
	}
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	fromIoT, fromWAN := meta(pol, "br-iot", "gateway"), meta(pol, "wan0", "gateway")
	toServer := "quote=udp,198.51.100.1:40000,198.51.100.2:9999"
	for _, tc := range []struct {
		name, pkt string
		m         Meta
		want      Verdict
	}{
		{"plug1 about the gateway's connection to a server", "icmp 10.77.0.21 -> 198.51.100.1 type=3 mac=02:00:00:00:00:21 " + toServer, fromIoT, Drop},
		{"plug1's fragmentation needed about it", "icmp 10.77.0.21 -> 198.51.100.1 type=3 mac=02:00:00:00:00:21 " + toServer, fromIoT, Drop},
		{"the server itself", "icmp 198.51.100.2 -> 198.51.100.1 type=3 " + toServer, fromWAN, Accept},
		{"a router on the WAN", "icmp 203.0.113.9 -> 198.51.100.1 type=3 " + toServer, fromWAN, Accept},
		{"plug1 about the gateway's connection to plug1", "icmp 10.77.0.21 -> 10.77.0.1 type=3 mac=02:00:00:00:00:21 quote=udp,10.77.0.1:40000,10.77.0.21:9999", fromIoT, Accept},
		{"the hub about the gateway's connection to plug1", "icmp 10.77.0.30 -> 10.77.0.1 type=3 mac=02:00:00:00:00:30 quote=udp,10.77.0.1:40000,10.77.0.21:9999", fromIoT, Drop},
		{"offline, no interface", "icmp 10.77.0.21 -> 198.51.100.1 type=3 " + toServer, NoMeta, Accept},
	} {
		d := w.Judge(pkt(t, tc.pkt), now, tc.m)
		if d.Verdict != tc.want || !d.Related {
			t.Errorf("%s: %s %s %q (related %v), want %s", tc.name, d.Verdict, d.Layer, d.Reason, d.Related, tc.want)
		}
		if d.Verdict == Drop && d.Reason != ReasonErrorOffPath {
			t.Errorf("%s: dropped for %q", tc.name, d.Reason)
		}
	}
}
