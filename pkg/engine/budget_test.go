package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

// budgetPolicy: a tablet known only by its MAC (it picks IPv6 privacy
// addresses at will), a camera known by MAC and address, and a rule for
// every other host of the IoT zone (guests, unknown gadgets).
const budgetPolicy = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0", "::/0"]

[[zone]]
name = "iot"
networks = ["10.0.0.0/8", "2001:db8:77::/48"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[device]]
name = "tablet"
mac = "02:00:00:00:00:70"

[[device]]
name = "cam"
mac = "02:00:00:00:00:11"
ip = ["10.77.0.11"]

[[allow]]
name = "tablet-sync"
from = "device:tablet"
to = "zone:wan"
services = ["udp/443"]
max_device_bytes = { amount = "1MB", per = "1h" }

[[allow]]
name = "guests-dns"
from = "zone:iot"
to = "zone:wan"
services = ["udp/53"]
max_device_bytes = { amount = "1MB", per = "1h" }
`

// flowsUntilCut opens n one-packet flows of 1400 bytes, the i-th from
// src(i), and returns how many were accepted before the first was refused
// for the device's byte budget (n when none was).
func flowsUntilCut(t *testing.T, w *Worker, n int, now int64, spec func(i int) string) int {
	t.Helper()
	for i := 0; i < n; i++ {
		d := w.Judge(pkt(t, spec(i)+" len=1400"), now+int64(i), NoMeta)
		if d.Verdict == Drop {
			if d.Reason != ReasonDeviceBytes {
				t.Fatalf("flow %d (%s): %v %v, want accepted or cut for the device's bytes", i, spec(i), d.Layer, d.Reason)
			}
			return i
		}
	}
	return n
}

// A device's budget is its own, whatever addresses it uses: a tablet
// rotating through 1000 IPv6 privacy addresses is cut once its total
// passes 1MB (about 714 flows of 1400 bytes), and an unknown host rotating
// addresses inside its /64 likewise; a host in another /64 has its own.
func TestBudgetFollowsTheDeviceNotTheAddress(t *testing.T) {
	const bound = 1_000_000 / 1400
	for _, tt := range []struct {
		name string
		spec func(i int) string
	}{
		{"tablet, known by MAC", func(i int) string {
			return fmt.Sprintf("udp [2001:db8:77:1::%x]:5000 -> [2001:db8:ffff::1]:443 mac=02:00:00:00:00:70", i+1)
		}},
		{"unknown host, one /64", func(i int) string {
			return fmt.Sprintf("udp [2001:db8:77:2:%x::1]:5000 -> [2001:db8:ffff::1]:53", i+1)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(compile(t, budgetPolicy), Options{})
			w := e.NewWorker()
			now := monday10.UnixNano()
			got := flowsUntilCut(t, w, 1000, now, tt.spec)
			if got < bound-1 || got > bound+1 {
				t.Fatalf("cut after %d flows of 1400 bytes from 1000 addresses, want about %d (1MB)", got, bound)
			}
			other := w.Judge(pkt(t, "udp [2001:db8:77:3::1]:5000 -> [2001:db8:ffff::1]:53 len=1400"), now+2000, NoMeta)
			if other.Verdict != Accept {
				t.Fatalf("a host of another /64 shares the spent budget: %+v", other)
			}
		})
	}
}

// 70 000 distinct sources fill the budget table (65 536 slots for owners
// that are no policy device), yet a later source is still admitted and
// still held to its budget (it shares the overflow budget), and a device
// of the policy still has its own.
func TestFullBudgetTableStillCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("judges 70 000 flows")
	}
	e := New(compile(t, budgetPolicy), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for i := 0; i < 70000; i++ {
		a := netip.AddrFrom4([4]byte{10, 100 + byte(i>>16), byte(i >> 8), byte(i)})
		p := pkt(t, "udp 10.0.0.1:5000 -> 198.51.100.53:53")
		p.Src = a
		if d := w.Judge(p, now, NoMeta); d.Verdict != Accept {
			t.Fatalf("source %d (%v): %+v", i, a, d)
		}
	}
	later := flowsUntilCut(t, w, 1500, now+1, func(i int) string {
		return fmt.Sprintf("udp 10.200.0.1:%d -> 198.51.100.53:53", 1000+i)
	})
	if later == 0 || later >= 1500 {
		t.Fatalf("a source after the table filled: %d flows of 1400 bytes before the cut, want some, and a cut before 1MB + what the overflow holds", later)
	}
	cam := flowsUntilCut(t, w, 1000, now+2000, func(i int) string {
		return fmt.Sprintf("udp 10.77.0.11:%d -> 198.51.100.53:53 mac=02:00:00:00:00:11", 1000+i)
	})
	if want := 1_000_000 / 1400; cam < want-1 || cam > want+1 {
		t.Fatalf("the camera was cut after %d flows, want about %d: its own budget", cam, want)
	}
}

// Idle slots are reclaimed: once their period has ended and nothing used
// them for a while, new sources get slots of their own again, and the
// table does not grow.
func TestIdleBudgetSlotsAreReused(t *testing.T) {
	e := New(compile(t, budgetPolicy), Options{BudgetCapacity: 4})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for i := 0; i < 4; i++ {
		w.Judge(pkt(t, fmt.Sprintf("udp 10.1.0.%d:5000 -> 198.51.100.53:53", i+1)), now, NoMeta)
	}
	slots := len(e.cur.Load().budgets.slots)
	// Past the period and the idle time: two new sources, each sending
	// 800KB, each within its own 1MB. Sharing one budget (or being
	// refused for a full table) would cut the second.
	later := now + int64(time.Hour) + budgetIdle
	for _, src := range []string{"10.2.0.1", "10.2.0.2"} {
		got := flowsUntilCut(t, w, 570, later, func(i int) string {
			return fmt.Sprintf("udp %s:%d -> 198.51.100.53:53", src, 1000+i)
		})
		if got != 570 {
			t.Fatalf("%s was cut after %d flows of 1400 bytes, within its own 1MB", src, got)
		}
		later += 1000
	}
	// Sweep frees what is idle, without a new source asking.
	e.Sweep(later + int64(time.Hour) + budgetIdle)
	bt := e.cur.Load().budgets
	if bt.others != 0 || len(bt.index) != 0 {
		t.Fatalf("after Sweep: %d live slots of sources (%d indexed), want 0", bt.others, len(bt.index))
	}
	if n := len(bt.slots); n > slots+1 {
		t.Fatalf("the table grew from %d to %d slots instead of reusing idle ones", slots, n)
	}
}

// A flow that still holds the handle of a slot reclaimed and given to
// another owner charges nothing to that owner.
func TestStaleBudgetHandleChargesNothing(t *testing.T) {
	pol := compile(t, budgetPolicy)
	bt := newBudgetTable(1, pol.Rules)
	r := &pol.Rules[1]
	now := monday10.UnixNano()
	a := ownerOf(-1, netip.MustParseAddr("10.1.0.1"))
	bt.admit(1, r, a, now, opening)
	old := bt.handle(1, a)
	now += int64(time.Hour) + budgetIdle
	b := ownerOf(-1, netip.MustParseAddr("10.1.0.2"))
	bt.admit(1, r, b, now, opening)
	if h := bt.handle(1, b); h&handleIndexMask != old&handleIndexMask || h == old {
		t.Fatalf("handles %#x then %#x: want the same slot, reused", old, h)
	}
	if over, _ := bt.add(old, r, 2_000_000, now); over {
		t.Fatal("the old flow's bytes were charged to the slot's new owner")
	}
	if reason, _ := bt.admit(1, r, b, now+1, opening); reason != ReasonNone {
		t.Fatalf("the new owner was refused: %v", reason)
	}
}

// A reload keeps a device's budget under the same rule and bounds even
// when the device moved in the policy's list.
func TestReloadKeepsDeviceBudgetByName(t *testing.T) {
	e := New(compile(t, budgetPolicy), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	spec := func(i int) string {
		return fmt.Sprintf("udp [2001:db8:77:1::%x]:5000 -> [2001:db8:ffff::1]:443 mac=02:00:00:00:00:70", i+1)
	}
	if got := flowsUntilCut(t, w, 1000, now, spec); got == 1000 {
		t.Fatal("the tablet was never cut")
	}
	moved := "[[device]]\nname = \"tv\"\nmac = \"02:00:00:00:00:60\"\n" + budgetPolicy
	e.Swap(compile(t, moved), now+5000)
	if d := w.Judge(pkt(t, spec(2000)+" len=1400"), now+6000, NoMeta); d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("after a reload the tablet's spent budget was forgotten: %+v", d)
	}
}

// Budgets and bindings allocate nothing per packet, also while sources
// rotate and slots are reclaimed and reused.
func TestBudgetAndBindingNoAllocs(t *testing.T) {
	e := New(compile(t, budgetPolicy+`
[[device]]
name = "phone"
ip = ["10.77.0.50"]

[[allow]]
name = "phone-out"
from = "device:phone"
to = "zone:wan"
services = ["tcp/443"]
`), Options{BudgetCapacity: 64})
	w := e.NewWorker()
	now := monday10.UnixNano()
	guest := pkt(t, "udp 10.3.0.1:5000 -> 198.51.100.53:53")
	tablet := pkt(t, "udp [2001:db8:77:1::1]:5000 -> [2001:db8:ffff::1]:443 mac=02:00:00:00:00:70")
	phone := pkt(t, "tcp 10.77.0.50:5000 -> 198.51.100.9:443 mac=02:00:00:00:00:50")
	i := 0
	judge := func() {
		i++
		now += int64(time.Minute) // slots go idle and are reclaimed as sources rotate
		guest.Src = netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)})
		guest.SrcPort++
		w.Judge(guest, now, NoMeta)
		tablet.SrcPort++
		w.Judge(tablet, now, NoMeta)
		phone.SrcPort++
		w.Judge(phone, now, bridged(7))
	}
	for j := 0; j < 2000; j++ {
		judge() // fill the table and the map, and start reclaiming
	}
	if n := testing.AllocsPerRun(1000, judge); n != 0 {
		t.Errorf("%v allocations per round of three packets, want 0", n)
	}
}

// BenchmarkJudgeBudgetAndBinding: new flows of a device known only by its
// address, on its bridge port, under a rule with a byte budget and a
// new-flow rate, next to unknown sources rotating addresses under a zone
// budget.
func BenchmarkJudgeBudgetAndBinding(b *testing.B) {
	e := New(compile(b, budgetPolicy+`
[[device]]
name = "phone"
ip = ["10.77.0.50"]

[[allow]]
name = "phone-out"
from = "device:phone"
to = "zone:wan"
services = ["tcp/443"]
max_device_bytes = { amount = "1TB", per = "24h" }
max_new_flows = "1000000/s"
`), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	phone := &packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP, TCPFlags: packet.TCPSyn, Length: 60,
		Src: netip.MustParseAddr("10.77.0.50"), Dst: netip.MustParseAddr("198.51.100.9"), DstPort: 443,
		HasMAC: true, SrcMAC: [6]byte{2, 0, 0, 0, 0, 0x50}}
	guest := &packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP, Length: 60,
		Dst: netip.MustParseAddr("198.51.100.53"), DstPort: 53}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 1000
		phone.SrcPort++
		if d := w.Judge(phone, now, bridged(7)); d.Verdict != Accept {
			b.Fatalf("phone: %+v", d)
		}
		guest.Src = netip.AddrFrom4([4]byte{10, 4, byte(i >> 8), byte(i)})
		guest.SrcPort++
		if d := w.Judge(guest, now, NoMeta); d.Verdict != Accept {
			b.Fatalf("guest: %+v", d)
		}
	}
}
