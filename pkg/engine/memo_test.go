package engine

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // a zone with daylight saving time, whatever the system has

	"github.com/picoseg/picoseg/pkg/policy"
)

// TestAddrCacheAgreesWithThePolicy asks the cache about random addresses
// (the policy's devices, its networks' broadcast, the gateway, the
// internet, IPv4-mapped forms of each) in random order, so that slots are
// shared and overwritten, and under two generations: every answer must be
// the policy's own.
func TestAddrCacheAgreesWithThePolicy(t *testing.T) {
	text := strings.Replace(homePolicy, "[[group]]", "[gateway]\naddresses = [\"10.77.0.1\", \"192.168.1.1\"]\n\n[[group]]", 1)
	other := strings.Replace(text, `ip = ["10.77.0.11"]`, `ip = ["10.77.0.12"]`, 1)
	e := New(compile(t, text), Options{})
	w := e.NewWorker()
	var base []netip.Addr
	for _, s := range []string{"10.77.0.11", "10.77.0.12", "10.77.0.21", "10.77.0.1", "192.168.1.1", "192.168.1.20",
		"10.77.0.255", "255.255.255.255", "224.0.0.251", "203.0.113.9", "8.8.8.8", "ff02::1", "2001:db8::1", "0.0.0.0"} {
		a := netip.MustParseAddr(s)
		base = append(base, a)
		if a.Is4() {
			base = append(base, netip.AddrFrom16(a.As16()))
		}
	}
	for i := 0; i < 1000; i++ {
		base = append(base, netip.AddrFrom4([4]byte{10, 77, 0, byte(rand.IntN(256))}), netip.AddrFrom4([4]byte{byte(rand.IntN(256)), byte(rand.IntN(256)), 1, 2}))
	}
	for round, pol := range []*policy.Policy{e.Policy(), compile(t, other)} {
		if round == 1 {
			e.Swap(pol, 0)
		}
		g := e.cur.Load()
		for i := 0; i < 20000; i++ {
			a := base[rand.IntN(len(base))]
			got := w.memo.addrs.get(g, a)
			want := addrFacts{gen: g.id, addr: a, device: pol.DeviceByAddr(a), zone: pol.ZoneOfAddr(a), gateway: pol.IsGateway(a.Unmap()), broadcast: pol.IsLinkBroadcast(a)}
			if got != want {
				t.Fatalf("generation %d, %v: cache says %+v, policy %+v", g.id, a, got, want)
			}
		}
	}
	// The facts the test asks about are not all alike, or it would prove
	// little.
	g := e.cur.Load()
	if f := w.memo.addrs.get(g, netip.MustParseAddr("10.77.0.12")); f.device < 0 {
		t.Fatalf("the camera's new address names no device: %+v", f)
	}
	if f := w.memo.addrs.get(g, netip.MustParseAddr("10.77.0.1")); !f.gateway {
		t.Fatalf("the gateway's address is not the gateway's: %+v", f)
	}
}

// TestReloadMovesAnAddress judges a new flow from an address, reloads a
// policy that gives the address to nobody, and judges another: the second
// must not be judged by what the worker remembered of the first policy.
func TestReloadMovesAnAddress(t *testing.T) {
	e := New(compile(t, homePolicy), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	if d := w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 192.168.1.20:554"), now, NoMeta); d.Verdict != Accept {
		t.Fatalf("before the reload: %+v", d)
	}
	e.Swap(compile(t, strings.Replace(homePolicy, `ip = ["10.77.0.11"]`, `ip = ["10.77.0.12"]`, 1)), now)
	d := w.Judge(pkt(t, "tcp 10.77.0.11:40001 -> 192.168.1.20:554"), now+1, NoMeta)
	if d.Verdict != Drop || d.SrcDevice != policy.None {
		t.Fatalf("after the reload the address is nobody's, got %+v", d)
	}
}

// TestMatchCacheAgreesWithThePolicy asks the micro layer's cache random
// questions (sources, destinations and services the policy allows and
// refuses, so that slots are shared and overwritten) under two
// generations whose rules differ: every answer must be Policy.Match's.
func TestMatchCacheAgreesWithThePolicy(t *testing.T) {
	stricter := strings.Replace(homePolicy, `services = ["tcp/554", "udp/5000-5010", "icmp"]`, `services = ["udp/5000-5010"]`, 1)
	e := New(compile(t, homePolicy), Options{})
	w := e.NewWorker()
	var sides []policy.Side
	// Few enough questions (5 x 5 sides, 3 x 3 services) that the second
	// generation asks many the first answered, among them the camera's
	// RTSP to the NVR, which only the first allows.
	for _, s := range []string{"10.77.0.11", "10.77.0.21", "192.168.1.20", "203.0.113.9"} {
		a := netip.MustParseAddr(s)
		sides = append(sides, policy.Side{Addr: a, Device: e.Policy().DeviceByAddr(a), Zone: 2})
	}
	sides = append(sides, policy.Side{Addr: netip.MustParseAddr("10.77.0.99"), Device: policy.None, Zone: 2})
	protos := []uint8{6, 17, 1}
	ports := []uint16{554, 5005, 443}
	allowed := 0
	for round, pol := range []*policy.Policy{e.Policy(), compile(t, stricter)} {
		if round == 1 {
			e.Swap(pol, 0)
		}
		g := e.cur.Load()
		var s policy.Scratch
		for i := 0; i < 20000; i++ {
			src, dst := sides[rand.IntN(len(sides))], sides[rand.IntN(len(sides))]
			proto, port := protos[rand.IntN(len(protos))], ports[rand.IntN(len(ports))]
			got := w.memo.matches.match(g, &src, &dst, proto, port, &s)
			if want := pol.Match(&src, &dst, proto, port, &s); got != want {
				t.Fatalf("generation %d, %+v -> %+v %d/%d: cache says rule %d, policy %d", g.id, src, dst, proto, port, got, want)
			}
			if got >= 0 {
				allowed++
			}
		}
	}
	if allowed == 0 {
		t.Fatal("no question had an allow rule for an answer: the test proves little")
	}
}

// TestMACCacheAgreesWithThePolicy asks the cache about the policy's MACs
// and others, under a generation that gives the camera's MAC to a plug:
// every answer must be Policy.DeviceByMAC's.
func TestMACCacheAgreesWithThePolicy(t *testing.T) {
	moved := strings.Replace(strings.Replace(homePolicy, `mac = "02:00:00:00:00:11"`, `mac = "02:00:00:00:00:99"`, 1), `mac = "02:00:00:00:00:21"`, `mac = "02:00:00:00:00:11"`, 1)
	e := New(compile(t, homePolicy), Options{})
	w := e.NewWorker()
	var macs [][6]byte
	for i := 0; i < 40; i++ {
		macs = append(macs, [6]byte{2, 0, 0, 0, 0, byte(i)}, [6]byte{2, 0, 0, 0, 0, 0x11}, [6]byte{2, 0, 0, 0, 0, 0x21})
	}
	known := 0
	for round, pol := range []*policy.Policy{e.Policy(), compile(t, moved)} {
		if round == 1 {
			e.Swap(pol, 0)
		}
		g := e.cur.Load()
		for i := 0; i < 5000; i++ {
			mac := macs[rand.IntN(len(macs))]
			got, want := w.memo.macs.get(g, mac), pol.DeviceByMAC(mac)
			if got != want {
				t.Fatalf("generation %d, %x: cache says device %d, policy %d", g.id, mac, got, want)
			}
			if got >= 0 {
				known++
			}
		}
	}
	if known == 0 {
		t.Fatal("no MAC named a device: the test proves little")
	}
}

// TestWindowCacheAgreesWithWindowEnd asks the cache about rules with
// overlapping, wrapping and day-bound windows, in a zone with daylight
// saving time, at random instants of the days around both changes of
// 2026 (seconds apart, so that one minute is asked many times, and in
// random order, so that slots are overwritten): every answer must be
// windowEnd's.
func TestWindowCacheAgreesWithWindowEnd(t *testing.T) {
	text := strings.Replace(homePolicy, `timezone = "UTC"`, `timezone = "Europe/Berlin"`, 1) + `
[[allow]]
name = "overlapping"
from = "device:cam"
to = "device:nvr"
services = ["udp/6000"]
hours = ["10:00-14:00", "02:30-12:00"]

[[allow]]
name = "wrapping"
from = "device:cam"
to = "device:nvr"
services = ["udp/6001"]
hours = ["22:00-03:00"]
days = ["sat", "sun"]
`
	e := New(compile(t, text), Options{})
	w := e.NewWorker()
	g := e.cur.Load()
	pol := g.policy
	var rules []int32
	for i := range pol.Rules {
		if len(pol.Rules[i].Hours) > 0 || pol.Rules[i].Days != 0 {
			rules = append(rules, int32(i))
		}
	}
	if len(rules) < 3 {
		t.Fatalf("%d rules with windows, want 3", len(rules))
	}
	inside := 0
	for _, day := range []time.Time{time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)} {
		start := day.Add(-24 * time.Hour).UnixNano()
		for i := 0; i < 200000; i++ {
			now := start + rand.Int64N(int64(72*time.Hour))
			if rand.IntN(2) == 0 {
				// Near a minute's edge.
				now = now - now%int64(time.Minute) + rand.Int64N(2*int64(time.Second)) - int64(time.Second)
			}
			ri := rules[rand.IntN(len(rules))]
			r := &pol.Rules[ri]
			until, ok := w.memo.windows.end(g, ri, r, now)
			wantUntil, wantOK := windowEnd(r, now, pol.Location)
			if until != wantUntil || ok != wantOK {
				t.Fatalf("rule %s at %v: cache says %v until %v, windowEnd %v until %v", r.Name, time.Unix(0, now).In(pol.Location), ok, time.Unix(0, until), wantOK, time.Unix(0, wantUntil))
			}
			if ok {
				inside++
			}
		}
	}
	if inside == 0 {
		t.Fatal("no instant was inside a window: the test proves little")
	}
}
