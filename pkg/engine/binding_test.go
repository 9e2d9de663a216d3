package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/policy"
)

// phonePolicy: the owner's phone is known only by its address; it may
// reach plug1's control port. A LAN-side rule is not needed: the phone and
// the plug share the IoT bridge.
const phonePolicy = homePolicy + `
[[device]]
name = "phone"
ip = ["10.77.0.50"]

[[allow]]
name = "phone-to-plug"
from = "device:phone"
to = "device:plug1"
services = ["tcp/8080", "udp/5683"]
`

func bridged(port uint32) Meta {
	m := NoMeta
	m.InPort = port
	return m
}

// A device known only by its address is bound to the bridge port and MAC
// it is first seen on: a host on another port, or with another MAC,
// claiming the address is spoofing while the binding is fresh; once the
// device has been silent for BindingIdle, it may come back from anywhere.
func TestAddressOnlyDeviceBoundToItsPort(t *testing.T) {
	e := New(compile(t, phonePolicy), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	const phoneMAC, otherMAC = "mac=02:00:00:00:00:50", "mac=02:00:00:00:00:66"
	steps := []struct {
		name   string
		packet string
		port   uint32
		after  time.Duration
		want   Verdict
		reason Reason
	}{
		{"the phone talks first, from port 7", "tcp 10.77.0.50:40000 -> 10.77.0.21:8080 " + phoneMAC, 7, 0, Accept, ReasonAllowRule},
		{"a host on port 9 posing as the phone", "tcp 10.77.0.50:40001 -> 10.77.0.21:8080 " + otherMAC, 9, time.Second, Drop, ReasonSpoofedPort},
		{"the same with the phone's MAC copied", "udp 10.77.0.50:40002 -> 10.77.0.21:5683 " + phoneMAC, 9, time.Second, Drop, ReasonSpoofedPort},
		{"another MAC on the phone's own port", "tcp 10.77.0.50:40003 -> 10.77.0.21:8080 " + otherMAC, 7, time.Second, Drop, ReasonSpoofedPort},
		{"the phone again, from its port", "udp 10.77.0.50:40004 -> 10.77.0.21:5683 " + phoneMAC, 7, time.Second, Accept, ReasonAllowRule},
		{"no bridge port known: the zone check only", "tcp 10.77.0.50:40005 -> 10.77.0.21:8080 " + otherMAC, 0, time.Second, Accept, ReasonAllowRule},
		{"port 9 just before the binding lapses", "tcp 10.77.0.50:40006 -> 10.77.0.21:8080 " + otherMAC, 9, BindingIdle - 2*time.Second, Drop, ReasonSpoofedPort},
		{"the phone moved to port 9, silent for BindingIdle", "tcp 10.77.0.50:40007 -> 10.77.0.21:8080 " + phoneMAC, 9, 2 * time.Second, Accept, ReasonAllowRule},
		{"its old port is now the stranger", "tcp 10.77.0.50:40008 -> 10.77.0.21:8080 " + phoneMAC, 7, time.Second, Drop, ReasonSpoofedPort},
		{"a device with a MAC needs no binding", "tcp 10.77.0.21:40009 -> 203.0.113.9:8883 mac=02:00:00:00:00:21", 3, time.Second, Accept, ReasonAllowRule},
	}
	var events []Event
	e.sink = SinkFunc(func(ev Event) { events = append(events, ev) })
	for _, s := range steps {
		now += int64(s.after)
		d := w.Judge(pkt(t, s.packet), now, bridged(s.port))
		if d.Verdict != s.want || (s.want == Drop && d.Reason != s.reason) {
			t.Fatalf("%s: %v (%v, %v), want %v (%v)", s.name, d.Verdict, d.Layer, d.Reason, s.want, s.reason)
		}
	}
	spoofs := 0
	for _, ev := range events {
		if ev.Type == EventSpoof && ev.Device == "phone" && ev.Layer == LayerIdentify {
			spoofs++
		}
	}
	if spoofs != 5 {
		t.Errorf("%d spoofed_address events for the phone, want 5: %+v", spoofs, events)
	}
}

// explain never binds: a hypothetical packet from port 9 does not take the
// phone's address away from the port it really uses.
func TestExplainDoesNotBind(t *testing.T) {
	e := New(compile(t, phonePolicy), Options{})
	now := monday10
	if tr := e.Explain(pkt(t, "tcp 10.77.0.50:40000 -> 10.77.0.21:8080"), now, bridged(9)); tr.Decision.Verdict != Accept {
		t.Fatalf("explain: %+v", tr.Decision)
	}
	if d := e.NewWorker().Judge(pkt(t, "tcp 10.77.0.50:40001 -> 10.77.0.21:8080"), now.UnixNano(), bridged(7)); d.Verdict != Accept {
		t.Fatalf("the phone from port 7 after an explain from port 9: %+v", d)
	}
}

// A reload keeps the bindings of devices still known only by address under
// the same name, wherever they moved in the device list; a device given a
// MAC no longer needs one.
func TestReloadKeepsBindings(t *testing.T) {
	e := New(compile(t, phonePolicy), Options{})
	now := monday10.UnixNano()
	w := e.NewWorker()
	w.Judge(pkt(t, "tcp 10.77.0.50:40000 -> 10.77.0.21:8080"), now, bridged(7))
	// The phone moves in the list: another address-only device first.
	moved := strings.Replace(phonePolicy, "[[device]]\nname = \"phone\"", "[[device]]\nname = \"tv\"\nip = [\"10.77.0.60\"]\n\n[[device]]\nname = \"phone\"", 1)
	e.Swap(compile(t, moved), now+1)
	if d := w.Judge(pkt(t, "tcp 10.77.0.50:40001 -> 10.77.0.21:8080"), now+2, bridged(9)); d.Verdict != Drop || d.Reason != ReasonSpoofedPort {
		t.Fatalf("port 9 claiming the phone after a reload: %+v", d)
	}
	if d := w.Judge(pkt(t, "tcp 10.77.0.60:40001 -> 10.77.0.21:8080"), now+3, bridged(9)); d.Reason == ReasonSpoofedPort {
		t.Fatalf("the tv inherited the phone's binding: %+v", d)
	}
	withMAC := strings.Replace(phonePolicy, "name = \"phone\"\n", "name = \"phone\"\nmac = \"02:00:00:00:00:50\"\n", 1)
	e.Swap(compile(t, withMAC), now+4)
	if d := w.Judge(pkt(t, "tcp 10.77.0.50:40002 -> 10.77.0.21:8080 mac=02:00:00:00:00:50"), now+5, bridged(9)); d.Verdict != Accept {
		t.Fatalf("the phone, now known by its MAC, from port 9: %+v", d)
	}
}

// The binding table has one slot per policy device and never grows,
// whatever addresses the traffic claims.
func TestBindingTableBounded(t *testing.T) {
	pol := compile(t, phonePolicy)
	e := New(pol, Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for i := 0; i < 1000; i++ {
		p := pkt(t, "udp 10.77.0.50:40000 -> 10.77.0.21:5683")
		p.Src = p.Src.Next().Next() // addresses of no device
		p.SrcPort += uint16(i)
		w.Judge(p, now, bridged(uint32(i+1)))
	}
	if n := len(e.cur.Load().bindings.slots); n != len(pol.Devices) {
		t.Fatalf("binding table holds %d slots, want one per device (%d)", n, len(pol.Devices))
	}
	if pol.DeviceByAddr(pkt(t, "udp 10.77.0.52:1 -> 10.77.0.21:5683").Src) != policy.None {
		t.Fatal("test policy changed: 10.77.0.52 names a device")
	}
}

// A device whose only traffic is one long fast-pathed connection keeps its
// binding: the conntrack pass reports the bytes it sends (DeviceSent),
// so a host on another port still cannot take its address after
// BindingIdle. DeviceSent does not bring a lapsed binding back, and does
// nothing for an address of no device.
func TestDeviceSentWhileFastPathed(t *testing.T) {
	for _, kept := range []bool{false, true} {
		e := New(compile(t, phonePolicy), Options{})
		w := e.NewWorker()
		now := monday10.UnixNano()
		const phone, stranger = "tcp 10.77.0.50:40000 -> 10.77.0.21:8080 mac=02:00:00:00:00:50", "tcp 10.77.0.50:40001 -> 10.77.0.21:8080 mac=02:00:00:00:00:66"
		if d := w.Judge(pkt(t, phone), now, bridged(7)); d.Verdict != Accept {
			t.Fatalf("the phone's connection: %v %v", d.Verdict, d.Reason)
		}
		for range 3 { // the connection runs, fast-pathed
			now += int64(BindingIdle / 2)
			if kept {
				e.DeviceSent(pkt(t, phone).Src, now)
				e.DeviceSent(pkt(t, "udp 10.77.0.51:1 -> 10.77.0.21:5683").Src, now)
			}
		}
		d := w.Judge(pkt(t, stranger), now+int64(time.Second), bridged(9))
		if want := map[bool]Verdict{false: Accept, true: Drop}[kept]; d.Verdict != want {
			t.Errorf("kept %v: a stranger on port 9 after %v: %v (%v), want %v", kept, 3*BindingIdle/2, d.Verdict, d.Reason, want)
		}
	}
	// A lapsed binding stays lapsed.
	e := New(compile(t, phonePolicy), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	w.Judge(pkt(t, "tcp 10.77.0.50:40000 -> 10.77.0.21:8080 mac=02:00:00:00:00:50"), now, bridged(7))
	now += int64(BindingIdle + time.Second)
	e.DeviceSent(pkt(t, "tcp 10.77.0.50:1 -> 10.77.0.21:8080").Src, now)
	if d := w.Judge(pkt(t, "tcp 10.77.0.50:40001 -> 10.77.0.21:8080 mac=02:00:00:00:00:66"), now, bridged(9)); d.Verdict != Accept {
		t.Errorf("DeviceSent revived a lapsed binding: %v (%v)", d.Verdict, d.Reason)
	}
}
