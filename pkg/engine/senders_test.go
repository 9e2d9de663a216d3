package engine

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// speakerPolicy adds a device known only by its MAC (written without
// ip, as a DHCP client usually is) with a rule of its own.
const speakerPolicy = homePolicy + `
[[device]]
name = "speaker"
mac = "02:00:00:00:00:44"

[[allow]]
name = "speaker-cloud"
from = "device:speaker"
to = "zone:wan"
services = ["tcp/443"]
`

// Judge, which enforcement runs on conntrack's flows (no MAC there),
// names a device known only by its MAC from the MAC its address last
// opened an accepted flow with: without it the speaker's fast-pathed
// flow would be judged as an unknown host's and cut at the next pass
// over conntrack, or the next reload. The same holds after a reload.
func TestJudgeNamesMACOnlyDevice(t *testing.T) {
	pol := compile(t, speakerPolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	addr := netip.MustParseAddr("10.77.0.44")
	q := Query{From: addr, To: netip.MustParseAddr("198.51.100.7"), Proto: 6, DPort: 443, At: monday10, Existing: true}
	if d := e.Judge(q); d.Verdict != Drop {
		t.Fatalf("before any flow: %v %q; the test expects an unnamed host to be refused", d.Verdict, d.Reason)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.44:40000 -> 198.51.100.7:443 mac=02:00:00:00:00:44"), now, NoMeta); d.Verdict != Accept {
		t.Fatalf("the speaker's connection: %v %q", d.Verdict, d.Reason)
	}
	if d := e.Judge(q); d.Verdict != Accept || d.RuleName(pol) != "speaker-cloud" {
		t.Errorf("judged again: %v %q by %q, want accepted by speaker-cloud", d.Verdict, d.Reason, d.RuleName(pol))
	}
	e.Swap(compile(t, speakerPolicy), now)
	if d := e.Judge(q); d.Verdict != Accept {
		t.Errorf("after a reload: %v %q", d.Verdict, d.Reason)
	}
	// A flow from another address, or to a service the speaker may not
	// use, is still refused.
	other := q
	other.From = netip.MustParseAddr("10.77.0.45")
	if d := e.Judge(other); d.Verdict != Drop {
		t.Errorf("another address: %v", d.Verdict)
	}
	ssh := q
	ssh.DPort = 22
	if d := e.Judge(ssh); d.Verdict != Drop {
		t.Errorf("the speaker on tcp/22: %v", d.Verdict)
	}
}

// Only an accepted flow, judged for real, teaches the table: a refused
// flow, a dry judgement (explain, Judge) or an address that names a device
// already does not.
func TestSenderTableLearnsFromAcceptedFlowsOnly(t *testing.T) {
	pol := compile(t, speakerPolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for _, s := range []string{
		"tcp 10.77.0.44:40000 -> 198.51.100.7:22 mac=02:00:00:00:00:44",  // refused
		"tcp 10.77.0.11:40001 -> 203.0.113.9:443 mac=02:00:00:00:00:11",  // the cam, named by its address
		"tcp 10.77.0.46:40002 -> 198.51.100.7:443 mac=02:00:00:00:00:99", // no device
	} {
		w.Judge(pkt(t, s), now, NoMeta)
	}
	mac := [6]byte{2, 0, 0, 0, 0, 0x44}
	e.Judge(Query{From: netip.MustParseAddr("10.77.0.47"), FromMAC: &mac, To: netip.MustParseAddr("198.51.100.7"), Proto: 6, DPort: 443, At: monday10})
	for _, a := range []string{"10.77.0.44", "10.77.0.11", "10.77.0.46", "10.77.0.47"} {
		if m, ok := e.senders.mac(netip.MustParseAddr(a)); ok {
			t.Errorf("the table learned %s from %x", a, m)
		}
	}
}

// The table never grows past its slots, and a crowded set of slots gives
// up the address seen longest ago, not the one in use.
func TestSenderTableBounded(t *testing.T) {
	pol := compile(t, speakerPolicy)
	e := New(pol, Options{})
	slots := len(e.senders.slots)
	if slots != minSenderSlots {
		t.Fatalf("%d slots for a small policy, want %d", slots, minSenderSlots)
	}
	now := monday10.UnixNano()
	busy := netip.MustParseAddr("fd00::1")
	e.senders.saw(busy, [6]byte{1}, now)
	a := netip.MustParseAddr("fd00::1000")
	for range 10 * slots {
		now += int64(time.Millisecond)
		e.DeviceSent(busy, now)
		e.senders.saw(a, [6]byte{2}, now)
		a = a.Next()
	}
	if len(e.senders.slots) != slots {
		t.Errorf("the table grew to %d slots", len(e.senders.slots))
	}
	if m, ok := e.senders.mac(busy); !ok || m != [6]byte{1} {
		t.Errorf("the address in use was given up: %x %v", m, ok)
	}
}

// A device known only by its MAC is held to its rule's byte budget for
// the bytes its fast-pathed flows move (Volume, from conntrack's counts),
// not only for the bytes the engine saw.
func TestVolumeChargesMACOnlyDevice(t *testing.T) {
	pol := compile(t, strings.Replace(speakerPolicy, `name = "speaker-cloud"
from = "device:speaker"
to = "zone:wan"
services = ["tcp/443"]
`, `name = "speaker-cloud"
from = "device:speaker"
to = "zone:wan"
services = ["tcp/443"]
max_device_bytes = { amount = "1000", per = "24h" }
`, 1))
	e := New(pol, Options{})
	w := e.NewWorker()
	if d := w.Judge(pkt(t, "tcp 10.77.0.44:40000 -> 198.51.100.7:443 mac=02:00:00:00:00:44"), monday10.UnixNano(), NoMeta); d.Verdict != Accept {
		t.Fatalf("the speaker's connection: %v %q", d.Verdict, d.Reason)
	}
	q := Query{From: netip.MustParseAddr("10.77.0.44"), To: netip.MustParseAddr("198.51.100.7"), Proto: 6, DPort: 443, At: monday10}
	if e.Volume(q, 600, 600, monday10) {
		t.Fatal("cut under its budget")
	}
	if !e.Volume(q, 1200, 600, monday10.Add(time.Minute)) {
		t.Error("the speaker's fast-pathed bytes passed its max_device_bytes uncut")
	}
}
