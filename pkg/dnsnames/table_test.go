package dnsnames

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	devA     = netip.MustParseAddr("10.0.0.2")
	devB     = netip.MustParseAddr("10.0.0.3")
	resolver = netip.MustParseAddr("10.0.0.1")
	cloud    = netip.MustParseAddr("52.49.65.150")
)

const sec = int64(time.Second)

func q(client netip.Addr, port, id uint16) Query {
	return Query{Client: client, Resolver: resolver, ClientPort: port, ResolverPort: 53, ID: id}
}

func lookup(t *Table, owner, addr netip.Addr, now int64, grace time.Duration) []Name {
	var out [8]Name
	n := t.Lookup([]netip.Addr{owner}, addr, now, grace, &out)
	return out[:n]
}

func TestMakeNameParents(t *testing.T) {
	n := MakeName([]byte("a.b.example.com"))
	want := []string{"com", "example.com", "b.example.com"}
	if int(n.N) != len(want) || n.Full != HashString("a.b.example.com") {
		t.Fatalf("%d parents", n.N)
	}
	for i, w := range want {
		if n.Parents[i] != HashString(w) {
			t.Errorf("parent %d is not %q", i, w)
		}
	}
}

func TestAnswerNeedsItsQuery(t *testing.T) {
	name := HashString("devs.tplinkcloud.com")
	tab := New(Sizes{})
	now := 100 * sec
	if !tab.Query(q(devA, 40000, 7), name, now) {
		t.Fatal("query not kept")
	}
	for _, tc := range []struct {
		what string
		q    Query
		name uint64
	}{
		{"another identifier", q(devA, 40000, 8), name},
		{"another port", q(devA, 40001, 7), name},
		{"another device", q(devB, 40000, 7), name},
		{"another resolver", Query{Client: devA, Resolver: netip.MustParseAddr("8.8.8.8"), ClientPort: 40000, ResolverPort: 53, ID: 7}, name},
		{"another resolver port", Query{Client: devA, Resolver: resolver, ClientPort: 40000, ResolverPort: 5353, ID: 7}, name},
		{"another name", q(devA, 40000, 7), HashString("evil.example")},
	} {
		if tab.Answer(tc.q, tc.name, now) {
			t.Errorf("%s: answered", tc.what)
		}
	}
	if !tab.Answer(q(devA, 40000, 7), name, now+sec) {
		t.Fatal("the real answer answers nothing")
	}
	if tab.Answer(q(devA, 40000, 7), name, now+sec) {
		t.Error("a second answer to one query was taken")
	}
	tab.Query(q(devA, 40002, 9), name, now)
	if tab.Answer(q(devA, 40002, 9), name, now+int64(DefaultQueryTimeout)+sec) {
		t.Error("an answer after the query's timeout was taken")
	}
}

func TestRecordIsPerDeviceAndExpires(t *testing.T) {
	tab := New(Sizes{})
	n := MakeName([]byte("devs.tplinkcloud.com"))
	now := 1000 * sec
	tab.Record(devA, cloud, &n, 30, now)
	if got := lookup(tab, devA, cloud, now+29*sec, 0); len(got) != 1 || got[0] != n {
		t.Fatalf("within TTL: %v", got)
	}
	if got := lookup(tab, devB, cloud, now, time.Minute); len(got) != 0 {
		t.Errorf("device B sees device A's answer: %v", got)
	}
	if got := lookup(tab, devA, cloud, now+30*sec, 0); len(got) != 0 {
		t.Errorf("after TTL, no grace: %v", got)
	}
	if got := lookup(tab, devA, cloud, now+89*sec, time.Minute); len(got) != 1 {
		t.Errorf("within TTL+grace: %v", got)
	}
	if got := lookup(tab, devA, cloud, now+90*sec, time.Minute); len(got) != 0 {
		t.Errorf("after TTL+grace: %v", got)
	}
	tab.Sweep(now+90*sec, time.Minute)
	if d, a, _ := tab.Len(); d != 0 || a != 0 {
		t.Errorf("sweep kept %d devices %d addresses", d, a)
	}
}

func TestBounds(t *testing.T) {
	tab := New(Sizes{Devices: 4, PerDevice: 3, PendingPerDevice: 2})
	now := sec
	for i := 0; i < 10; i++ {
		n := MakeName([]byte(fmt.Sprintf("n%d.example", i)))
		tab.Record(devA, netip.AddrFrom4([4]byte{52, 0, 0, byte(i)}), &n, uint32(100+i), now)
	}
	if _, a, _ := tab.Len(); a != 3 {
		t.Errorf("%d addresses kept for one device, want 3", a)
	}
	// The ones expiring first went.
	if got := lookup(tab, devA, netip.AddrFrom4([4]byte{52, 0, 0, 9}), now, 0); len(got) != 1 {
		t.Errorf("latest entry evicted")
	}
	for i := 0; i < 10; i++ {
		n := MakeName([]byte("x.example"))
		tab.Record(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), cloud, &n, 100, now)
	}
	if d, _, _ := tab.Len(); d != 4 {
		t.Errorf("%d devices kept, want 4", d)
	}
	if !tab.Query(q(devB, 1, 1), 1, now) || !tab.Query(q(devB, 2, 2), 1, now) || tab.Query(q(devB, 3, 3), 1, now) {
		t.Errorf("per-device outstanding bound not 2")
	}
	if !tab.Query(q(devA, 3, 3), 1, now) {
		t.Errorf("device B's queries crowd out A's")
	}
	// Unanswered queries time out and free the device's bound.
	if !tab.Query(q(devB, 4, 4), 1, now+int64(DefaultQueryTimeout)+sec) {
		t.Errorf("device B's bound is not freed after its queries timed out")
	}
}

func TestManyNamesOnOneAddress(t *testing.T) {
	tab := New(Sizes{})
	a, b, c := MakeName([]byte("a.example")), MakeName([]byte("b.example")), MakeName([]byte("c.example"))
	tab.Record(devA, cloud, &a, 300, 0)
	tab.Record(devA, cloud, &b, 100, 0)
	tab.Record(devA, cloud, &a, 50, 0) // a shorter TTL does not cut a longer one
	if got := lookup(tab, devA, cloud, 200*sec, 0); len(got) != 1 || got[0].Full != a.Full {
		t.Errorf("got %v", got)
	}
	tab.Record(devA, cloud, &c, 400, 0) // replaces b, which expires first
	if got := lookup(tab, devA, cloud, 50*sec, 0); len(got) != 2 {
		t.Errorf("got %d names", len(got))
	}
}

func TestConcurrent(t *testing.T) {
	tab := New(Sizes{Devices: 8, PerDevice: 4})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				owner := netip.AddrFrom4([4]byte{10, 0, byte(w), byte(i % 16)})
				n := MakeName([]byte("x.example"))
				qq := Query{Client: owner, Resolver: resolver, ClientPort: uint16(i), ResolverPort: 53, ID: uint16(i)}
				tab.Query(qq, n.Full, int64(i))
				if tab.Answer(qq, n.Full, int64(i)) {
					tab.Record(owner, netip.AddrFrom4([4]byte{52, 0, 0, byte(i)}), &n, 5, int64(i))
				}
				lookup(tab, owner, cloud, int64(i), time.Second)
				if i%500 == 0 {
					tab.Sweep(int64(i), 0)
				}
			}
		}(w)
	}
	wg.Wait()
}

func TestLookupNoAllocs(t *testing.T) {
	tab := New(Sizes{})
	n := MakeName([]byte("devs.tplinkcloud.com"))
	tab.Record(devA, cloud, &n, 30, 0)
	owners := []netip.Addr{devA}
	var out [8]Name
	if a := testing.AllocsPerRun(100, func() { tab.Lookup(owners, cloud, 1, time.Minute, &out) }); a != 0 {
		t.Errorf("Lookup allocates %v", a)
	}
}

func BenchmarkLookup(b *testing.B) {
	tab := New(Sizes{})
	n := MakeName([]byte("devs.tplinkcloud.com"))
	tab.Record(devA, cloud, &n, 30, 0)
	owners := []netip.Addr{devA}
	var out [8]Name
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if tab.Lookup(owners, cloud, 1, time.Minute, &out) != 1 {
			b.Fatal("miss")
		}
	}
}

// TestMemoryBound fills a table to its bounds and reports the heap it
// holds (the figure the documentation gives); it checks the bounds, not
// the bytes.
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a full table")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := New(Sizes{})
	s := tab.Sizes()
	for d := 0; d < s.Devices; d++ {
		owner := netip.AddrFrom4([4]byte{10, 1, byte(d >> 8), byte(d)})
		for a := 0; a < s.PerDevice; a++ {
			for k := 0; k < NamesPerAddr; k++ {
				n := MakeName([]byte(fmt.Sprintf("n%d.example", k)))
				tab.Record(owner, netip.AddrFrom4([4]byte{52, byte(a), byte(d >> 8), byte(d)}), &n, 300, 0)
			}
		}
		for q := 0; q < s.PendingPerDevice && d*s.PendingPerDevice+q < s.Pending; q++ {
			tab.Query(Query{Client: owner, Resolver: resolver, ClientPort: uint16(q), ResolverPort: 53, ID: uint16(q)}, 1, 0)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	devices, addrs, queries := tab.Len()
	if devices != s.Devices || addrs != s.Devices*s.PerDevice || queries != s.Pending {
		t.Errorf("full table holds %d devices, %d addresses, %d queries", devices, addrs, queries)
	}
	t.Logf("full table at the default sizes (%d devices × %d addresses, %d queries): %.1f MB of heap",
		devices, s.PerDevice, queries, float64(after.HeapAlloc-before.HeapAlloc)/1e6)
	runtime.KeepAlive(tab)
}
