package engine

import (
	"fmt"
	"strings"
	"testing"
)

// openerPolicy is the shape of the attacks on who opened a flow: the LAN
// may reach a plug's web port and ping it; nothing in the IoT zone may open
// anything towards the LAN.
const openerPolicy = `
[daemon]
timezone = "UTC"

[[zone]]
name = "lan"
networks = ["10.88.0.0/24", "fd88::/64"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24", "fd77::/64"]

[[segment]]
from = "lan"
to = "iot"
action = "micro"

[[segment]]
from = "iot"
to = "lan"
action = "deny"

[[device]]
name = "admin"
ip = ["10.88.0.10", "fd88::10"]

[[device]]
name = "plug"
mac = "02:00:00:00:00:21"
ip = ["10.77.0.21", "fd77::21"]

[[device]]
name = "hub"
ip = ["10.77.0.30"]

[[allow]]
name = "admin-to-hub"
from = "device:admin"
to = "device:hub"
services = ["tcp/8080"]

[[allow]]
name = "admin-to-plug"
from = "device:admin"
to = "device:plug"
services = ["tcp/8080", "icmp", "icmpv6"]
`

// step is one packet of a sequence and what must become of it.
type step struct {
	packet  string
	verdict Verdict
}

// runSteps judges the packets in order on one engine, one millisecond
// apart, and reports every step whose verdict is not the one wanted.
func runSteps(t *testing.T, src string, steps []step) []Decision {
	t.Helper()
	pol := compile(t, src)
	w := New(pol, Options{}).NewWorker()
	now := monday10.UnixNano()
	var out []Decision
	for i, s := range steps {
		d := w.Judge(pkt(t, s.packet), now+int64(i)*1e6, NoMeta)
		if d.Verdict != s.verdict {
			t.Errorf("step %d %q: %s (%s %q, %s), want %s", i+1, s.packet, d.Verdict, d.Layer, d.RuleName(pol), d.Reason, s.verdict)
		}
		out = append(out, d)
	}
	return out
}

// Hole: a bare ACK opens the door for a SYN. A plug's lone ACK from its web
// port is accepted as the reply of the LAN's allowed connection; the flow
// must still belong to the LAN, so the plug's SYN on the same ports is a
// connection the plug opens, and the segment denies it.
func TestResponderCannotOpenOnAnAcceptedTuple(t *testing.T) {
	const plugACK = "tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=A"
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"bare ACK, then SYN", []step{
			{plugACK, Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
			// The tuple is the plug's denied flow now: its data too.
			{plugACK, Drop},
		}},
		{"bare ACK, RST, then SYN", []step{
			{plugACK, Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=R", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
		}},
		{"the LAN's own mid-stream ACK, then the plug's SYN", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=A", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
		}},
		{"a real connection of the LAN, then a SYN from the plug", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=SA", Accept},
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=A", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
			// The denied SYN is dropped alone: a forged SYN must not cut
			// the LAN's established connection.
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=A", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=A", Accept},
			// And it opened nothing: the plug's next SYN is judged again.
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
		}},
		{"the plug's SYN after the LAN's connection closed", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=SA", Accept},
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=FA", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=FA", Accept},
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, openerPolicy, tt.steps) })
	}
}

// What the opener does with its own flow stays with the flow.
func TestOpenerKeepsItsFlow(t *testing.T) {
	ds := runSteps(t, openerPolicy, []step{
		{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
		// A retransmitted SYN is answered from the cache.
		{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
		{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=SA", Accept},
		{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=A", Accept},
		{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=R", Accept},
		// The LAN reuses its port after a reset: a new flow, its own.
		{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
	})
	if !ds[1].Cached || ds[1].NewFlow {
		t.Errorf("retransmitted SYN: %+v", ds[1])
	}
	if !ds[5].NewFlow {
		t.Errorf("SYN after a reset is a new flow: %+v", ds[5])
	}
	// The plug's answer is a reply, credited to the LAN device.
	if pol := compile(t, openerPolicy); !ds[2].Reply || pol.DeviceName(ds[2].SrcDevice) != "admin" {
		t.Errorf("the plug's SYN-ACK is a reply of admin's flow: %+v", ds[2])
	}
}

// A reload judges a flow again for the side that opened it: it never hands
// a flow the new policy denies to the other side as a "reply".
func TestReloadKeepsTheOpener(t *testing.T) {
	pol := compile(t, openerPolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	// Before the reload the plug may reach the admin's port 9000.
	src := strings.Replace(openerPolicy, `action = "deny"`, `action = "micro"`, 1) + `
[[allow]]
name = "plug-to-admin"
from = "device:plug"
to = "device:admin"
services = ["tcp/9000"]
`
	e.Swap(compile(t, src), now)
	if d := w.Judge(pkt(t, "tcp 10.77.0.21:8080 -> 10.88.0.10:9000 flags=S"), now, NoMeta); d.Verdict != Accept {
		t.Fatalf("plug's connection before the reload: %+v", d)
	}
	// The reload takes the plug's rule away; the admin's rule would allow
	// the reverse of the tuple (admin:9000 -> plug:8080).
	e.Swap(pol, now+1)
	if d := w.Judge(pkt(t, "tcp 10.77.0.21:8080 -> 10.88.0.10:9000 flags=A"), now+2, NoMeta); d.Verdict != Drop {
		t.Fatalf("the plug's flow after the reload that denies it: %+v", d)
	}
}

// Hole: ICMP rides on the other side's ping. A query flow is the requester's,
// per identifier and kind.
func TestICMPQueriesBelongToTheirRequester(t *testing.T) {
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"the plug pings back with the same identifier", []step{
			{"icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7", Accept},
			{"icmp 10.77.0.21 -> 10.88.0.10 type=0 id=7", Accept},
			{"icmp 10.77.0.21 -> 10.88.0.10 type=8 id=7", Drop},
			// The admin's ping goes on.
			{"icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7", Accept},
			{"icmp 10.77.0.21 -> 10.88.0.10 type=0 id=7", Accept},
		}},
		{"the plug pings with another identifier", []step{
			{"icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7", Accept},
			{"icmp 10.77.0.21 -> 10.88.0.10 type=8 id=8", Drop},
		}},
		{"the plug asks for a timestamp", []step{
			{"icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7", Accept},
			{"icmp 10.77.0.21 -> 10.88.0.10 type=13 id=7", Drop},
		}},
		{"the plug answers a ping it never got", []step{
			// A reply is judged as its receiver's query: the admin may
			// ping the plug, so the plug's reply passes (a capture that
			// began late)...
			{"icmp 10.77.0.21 -> 10.88.0.10 type=0 id=5", Accept},
			// ...but a reply to the plug answers the plug's query.
			{"icmp 10.88.0.10 -> 10.77.0.21 type=0 id=6", Drop},
		}},
		{"icmpv6 echo", []step{
			{"icmpv6 fd88::10 -> fd77::21 type=128 id=7", Accept},
			{"icmpv6 fd77::21 -> fd88::10 type=129 id=7", Accept},
			{"icmpv6 fd77::21 -> fd88::10 type=128 id=7", Drop},
		}},
		{"neighbour discovery works as before", []step{
			{"icmpv6 fd88::10 -> fd77::21 type=135", Accept},
			{"icmpv6 fd77::21 -> fd88::10 type=136", Accept},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, openerPolicy, tt.steps) })
	}
}

// ICMP errors are judged by the flow they quote and never open one.
func TestICMPErrorsFollowTheQuotedFlow(t *testing.T) {
	const conn = "tcp,10.88.0.10:40000,10.77.0.21:8080"
	unreach := func(src, dst, quote string) string {
		return fmt.Sprintf("icmp %s -> %s type=3 quote=%s", src, dst, quote)
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"the plug refuses the admin's connection", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
			{unreach("10.77.0.21", "10.88.0.10", conn), Accept},
		}},
		// The table has not seen the flow (a restart, or the kernel
		// fast-pathed it under an older policy): its opening is judged
		// as the policy stands, and stored nowhere.
		{"an error quoting an allowed flow the table does not hold", []step{
			{unreach("10.77.0.21", "10.88.0.10", conn), Accept},
			// and it opened none: the plug's SYN is still the plug's
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S", Drop},
		}},
		{"an error quoting a denied flow the table does not hold", []step{
			{unreach("10.77.0.21", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.21:9999"), Drop},
			// nor its reverse: the plug may open nothing towards the LAN
			{unreach("10.88.0.10", "10.77.0.21", "tcp,10.77.0.21:9999,10.88.0.10:40000"), Drop},
		}},
		{"a device speaking for a flow the table does not hold", []step{
			{unreach("10.77.0.21", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.30:8080"), Drop},
			{unreach("10.77.0.30", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.30:8080"), Accept},
			// A router (an address that is no device) may speak for it.
			{unreach("10.77.0.1", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.30:8080"), Accept},
		}},
		{"an error sent to the wrong side of a flow the table does not hold", []step{
			{unreach("10.77.0.21", "10.88.0.11", conn), Drop},
		}},
		{"an error quoting a denied flow", []step{
			{"tcp 10.77.0.21:8080 -> 10.88.0.10:22 flags=S", Drop},
			{unreach("10.77.0.21", "10.88.0.10", "tcp,10.77.0.21:8080,10.88.0.10:22"), Drop},
		}},
		{"an error sent to the wrong side", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.21:8080 flags=S", Accept},
			{unreach("10.77.0.21", "10.88.0.11", conn), Drop},
		}},
		{"a device speaking for another's flow", []step{
			{"tcp 10.88.0.10:40000 -> 10.77.0.30:8080 flags=S", Accept},
			{unreach("10.77.0.21", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.30:8080"), Drop},
			// The hub may speak for its own flow.
			{unreach("10.77.0.30", "10.88.0.10", "tcp,10.88.0.10:40000,10.77.0.30:8080"), Accept},
		}},
		{"a ping that cannot be delivered", []step{
			{"icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7", Accept},
			{unreach("10.77.0.1", "10.88.0.10", "icmp,10.88.0.10,10.77.0.21,8,7"), Accept},
			// A ping the policy does not allow is no flow to speak for.
			{unreach("10.77.0.1", "10.88.0.10", "icmp,10.88.0.10,10.77.0.30,8,8"), Drop},
			// A quoted echo reply speaks for the request its receiver
			// sent: the plug may not ping the admin.
			{unreach("10.77.0.1", "10.77.0.21", "icmp,10.77.0.21,10.88.0.10,0,9"), Accept},
			{unreach("10.77.0.1", "10.77.0.21", "icmp,10.77.0.21,10.88.0.10,8,9"), Drop},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ds := runSteps(t, openerPolicy, tt.steps)
			for i, d := range ds {
				if strings.Contains(tt.steps[i].packet, "quote=") && (!d.Related || d.NewFlow) {
					t.Errorf("step %d: an error is related, never a new flow: %+v", i+1, d)
				}
			}
		})
	}
}

// Judging who opened a flow allocates nothing: a SYN that reopens a tuple,
// an ICMP query, an ICMP error judged by its quote (accepted or refused,
// with an event).
func TestOpenerPathsDoNotAllocate(t *testing.T) {
	var events int
	e := New(compile(t, openerPolicy), Options{Sink: SinkFunc(func(Event) { events++ })})
	w := e.NewWorker()
	now := monday10.UnixNano()
	ack := pkt(t, "tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=A")
	syn := pkt(t, "tcp 10.77.0.21:8080 -> 10.88.0.10:40000 flags=S")
	ping := pkt(t, "icmp 10.88.0.10 -> 10.77.0.21 type=8 id=7")
	w.Judge(pkt(t, "tcp 10.88.0.10:40001 -> 10.77.0.21:8080 flags=S"), now, NoMeta)
	related := pkt(t, "icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40001,10.77.0.21:8080")
	unrelated := pkt(t, "icmp 10.77.0.21 -> 10.88.0.10 type=3 quote=tcp,10.88.0.10:40009,10.77.0.21:8080")
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{"bare ACK then SYN", func() {
			ack.DstPort++
			syn.DstPort = ack.DstPort
			w.Judge(ack, now, NoMeta)
			w.Judge(syn, now, NoMeta)
		}},
		{"ping", func() { ping.ICMPID++; w.Judge(ping, now, NoMeta) }},
		{"error of an accepted flow", func() { w.Judge(related, now, NoMeta) }},
		{"error quoting no flow", func() { w.Judge(unrelated, now, NoMeta) }},
	} {
		if n := testing.AllocsPerRun(500, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tt.name, n)
		}
	}
	if events == 0 {
		t.Error("the refused packets raised no events")
	}
}

// An ICMP error is identified like any packet: a device sending one from
// another device's address is spoofing.
func TestICMPErrorsAreIdentified(t *testing.T) {
	ds := runSteps(t, openerPolicy, []step{
		{"tcp 10.88.0.10:40000 -> 10.77.0.30:8080 flags=S", Accept},
		// The plug, with its own MAC, claims to be the hub.
		{"icmp 10.77.0.30 -> 10.88.0.10 type=3 mac=02:00:00:00:00:21 quote=tcp,10.88.0.10:40000,10.77.0.30:8080", Drop},
	})
	if ds[1].Layer != LayerIdentify || ds[1].Reason != ReasonSpoofedMAC {
		t.Errorf("spoofed error: %s %q, want identify %q", ds[1].Layer, ds[1].Reason, ReasonSpoofedMAC)
	}
}
