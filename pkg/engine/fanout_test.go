package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

const fanOutPolicy = homePolicy + `
[[allow]]
name = "plugs-fan"
from = "group:plugs"
to = "zone:wan"
services = ["udp/1-65535"]
max_peers = 3
max_ports = 2
fanout_window = "1m"
`

type fanCase struct {
	at   time.Duration // after monday10
	spec string
	want Reason
}

func runFanOut(t *testing.T, src string, cases []fanCase) []Event {
	t.Helper()
	var events []Event
	w := New(compile(t, src), Options{Sink: SinkFunc(func(e Event) { events = append(events, e) })}).NewWorker()
	for i, c := range cases {
		d := w.Judge(pkt(t, c.spec), monday10.Add(c.at).UnixNano(), NoMeta)
		wantVerdict := Accept
		if c.want != ReasonNone {
			wantVerdict = Drop
		}
		if d.Verdict != wantVerdict || (c.want != ReasonNone && d.Reason != c.want) {
			t.Errorf("%d: %s at +%v: %v (%v), want %v (%v)", i, c.spec, c.at, d.Verdict, d.Reason, wantVerdict, c.want)
		}
	}
	return events
}

// A device reaching a fourth peer within the window under a rule with
// max_peers = 3 is refused, with a possible_scan event; peers it already
// reached stay open, other devices have their own count, and once the
// window has passed the device may reach new peers again.
func TestFanOutPeers(t *testing.T) {
	events := runFanOut(t, fanOutPolicy, []fanCase{
		{0, "udp 10.77.0.21:4000 -> 198.51.100.1:53", ReasonNone},
		{time.Second, "udp 10.77.0.21:4001 -> 198.51.100.2:53", ReasonNone},
		{2 * time.Second, "udp 10.77.0.21:4002 -> 198.51.100.3:53", ReasonNone},
		{3 * time.Second, "udp 10.77.0.21:4003 -> 198.51.100.4:53", ReasonFanOutPeers},
		{4 * time.Second, "udp 10.77.0.21:4004 -> 198.51.100.1:123", ReasonNone}, // a peer it reached
		{5 * time.Second, "udp 10.77.0.22:4000 -> 198.51.100.4:53", ReasonNone},  // another device
		{6 * time.Second, "udp 10.77.0.21:4005 -> 198.51.100.5:53", ReasonFanOutPeers},
		// .2 and .3 were last reached more than a minute ago, .1 not.
		{63 * time.Second, "udp 10.77.0.21:4006 -> 198.51.100.6:53", ReasonNone},
		{63 * time.Second, "udp 10.77.0.21:4007 -> 198.51.100.7:53", ReasonNone},
		{63 * time.Second, "udp 10.77.0.21:4008 -> 198.51.100.8:53", ReasonFanOutPeers},
		// Now .1 (last at +4s) is forgotten too.
		{65 * time.Second, "udp 10.77.0.21:4009 -> 198.51.100.8:53", ReasonNone},
		{66 * time.Second, "udp 10.77.0.21:4010 -> 198.51.100.9:53", ReasonFanOutPeers},
	})
	n := 0
	for _, e := range events {
		if e.Type == EventFanOut {
			n++
			if e.Rule != "plugs-fan" || e.Device != "plug1" || e.Layer != LayerPico || e.Type.String() != "possible_scan" {
				t.Errorf("event %+v: want possible_scan for plug1 under plugs-fan from the pico layer", e)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d fan-out events, want one per refused flow (4): %+v", n, events)
	}
}

// max_ports = 2: a third port on one peer is refused (a port scan of one
// host), the same port on another peer is not.
func TestFanOutPorts(t *testing.T) {
	runFanOut(t, fanOutPolicy, []fanCase{
		{0, "udp 10.77.0.21:4000 -> 198.51.100.1:53", ReasonNone},
		{0, "udp 10.77.0.21:4001 -> 198.51.100.1:123", ReasonNone},
		{0, "udp 10.77.0.21:4002 -> 198.51.100.1:161", ReasonFanOutPorts},
		{0, "udp 10.77.0.21:4003 -> 198.51.100.1:53", ReasonNone},
		{0, "udp 10.77.0.21:4004 -> 198.51.100.2:161", ReasonNone},
	})
}

// With max_ports alone, a device is followed over a bounded number of peer
// and port pairs; past it new pairs are refused rather than forgotten.
func TestFanOutPortsAloneIsBounded(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plugs-fan"
from = "group:plugs"
to = "zone:wan"
services = ["udp/1-65535"]
max_ports = 1
`
	var cases []fanCase
	for i := range fanOutPairsAlone {
		cases = append(cases, fanCase{0, fmt.Sprintf("udp 10.77.0.21:4000 -> 198.51.100.%d:53", i+1), ReasonNone})
	}
	cases = append(cases, fanCase{0, "udp 10.77.0.21:4000 -> 198.51.100.200:53", ReasonFanOutPorts})
	runFanOut(t, src, cases)
}

// Explain decides the same without counting: asking about a fourth peer
// does not use up the device's bound.
func TestFanOutExplainCountsNothing(t *testing.T) {
	e := New(compile(t, fanOutPolicy), Options{})
	w := e.NewWorker()
	for i := 1; i <= 2; i++ {
		w.Judge(pkt(t, fmt.Sprintf("udp 10.77.0.21:4000 -> 198.51.100.%d:53", i)), monday10.UnixNano(), NoMeta)
	}
	for range 3 {
		tr := e.Explain(pkt(t, "udp 10.77.0.21:4000 -> 198.51.100.9:53"), monday10, NoMeta)
		if tr.Decision.Verdict != Accept {
			t.Fatalf("explain of a third peer: %+v", tr.Decision)
		}
	}
	if d := w.Judge(pkt(t, "udp 10.77.0.21:4000 -> 198.51.100.3:53"), monday10.UnixNano(), NoMeta); d.Verdict != Accept {
		t.Errorf("the third peer after explaining: %v (%v), want accept", d.Verdict, d.Reason)
	}
}

// Judging new flows under a fan-out bound allocates nothing once the
// device's slot exists, whether the flow is admitted or refused.
func TestFanOutNoAllocs(t *testing.T) {
	w := New(compile(t, fanOutPolicy), Options{}).NewWorker()
	p := pkt(t, "udp 10.77.0.21:4000 -> 198.51.100.1:53")
	now := monday10.UnixNano()
	i := 0
	judge := func() {
		i++
		now += int64(time.Second)
		p.SrcPort = uint16(10000 + i%50000)
		p.Dst = netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 5)})
		p.DstPort = uint16(50 + i%4)
		w.Judge(p, now, NoMeta)
	}
	for range 200 {
		judge()
	}
	if n := testing.AllocsPerRun(1000, judge); n != 0 {
		t.Errorf("%v allocations per new flow, want 0", n)
	}
}
