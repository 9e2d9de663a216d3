package flow

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

func tcp(src, dst string, sport, dport uint16) *packet.Packet {
	return &packet.Packet{Kind: packet.KindOK, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport, Proto: packet.ProtoTCP}
}

func TestKeyIsBidirectional(t *testing.T) {
	k1, fromA1 := KeyOf(tcp("10.0.0.1", "10.0.0.2", 40000, 80))
	k2, fromA2 := KeyOf(tcp("10.0.0.2", "10.0.0.1", 80, 40000))
	if k1 != k2 || fromA1 == fromA2 {
		t.Fatalf("a packet and its reply must share a key from opposite ends: %v %v %v %v", k1, fromA1, k2, fromA2)
	}
	k3, _ := KeyOf(tcp("10.0.0.1", "10.0.0.2", 40001, 80))
	if k3 == k1 {
		t.Fatal("another source port is another flow")
	}
	a, b := k1.Endpoints()
	if a.String() != "10.0.0.1:40000" || b.String() != "10.0.0.2:80" {
		t.Fatalf("endpoints %s %s", a, b)
	}
	// Same address on both ends (a device talking to itself) still orders by port.
	k4, f4 := KeyOf(tcp("10.0.0.1", "10.0.0.1", 80, 40000))
	k5, f5 := KeyOf(tcp("10.0.0.1", "10.0.0.1", 40000, 80))
	if k4 != k5 || f4 == f5 {
		t.Fatal("self flow")
	}
}

func TestObserveCountsAndExpires(t *testing.T) {
	tab := New(64, DefaultTTLs())
	p := tcp("10.0.0.1", "10.0.0.2", 40000, 80)
	k, _ := KeyOf(p)
	now := int64(time.Hour)
	var st State
	if tab.Observe(k, now, 60, true, packet.TCPSyn, &st) {
		t.Fatal("unknown flow observed")
	}
	st = State{Judgement: Judgement{Rule: 7, FromA: true}}
	tab.Insert(k, now, 60, packet.TCPSyn, &st)
	if !tab.Observe(k, now+1, 1500, false, packet.TCPSyn|packet.TCPAck, &st) {
		t.Fatal("flow lost")
	}
	if !tab.Observe(k, now+2, 40, true, packet.TCPAck, &st) {
		t.Fatal("flow lost")
	}
	if st.Packets != 3 || st.Bytes != 1600 || st.Up != 100 || st.MinSize != 40 || st.MaxSize != 1500 || st.Rule != 7 || st.Phase != PhaseEstablished || st.First != now || st.Last != now+2 {
		t.Fatalf("state %+v", st)
	}
	// Established TCP lives an hour idle, not a minute more.
	if !tab.Observe(k, now+2+int64(59*time.Minute), 40, true, packet.TCPAck, &st) {
		t.Fatal("expired too early")
	}
	if tab.Observe(k, now+2+int64(59*time.Minute)+int64(time.Hour)+1, 40, true, packet.TCPAck, &st) {
		t.Fatal("idle flow should have expired")
	}
	if tab.Expired() != 1 || tab.Len() != 0 {
		t.Fatalf("expired %d len %d", tab.Expired(), tab.Len())
	}
}

// TestTableAgreesWithNaive drives the table and an obvious model (a map
// per shard, evicting the least recently used entry by scanning) through
// the same random operations; they must agree on every lookup.
func TestTableAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const ttl = 50
	tab := New(2*shardCount, TTLs{TCPHandshake: ttl, TCPEstablished: ttl, TCPClosing: ttl, UDP: ttl, ICMP: ttl, Other: ttl})
	type ref struct {
		packets uint32
		last    int64
		used    int
	}
	model := map[*shard]map[Key]*ref{}
	now := int64(1000)
	for op := 0; op < 200000; op++ {
		now += int64(r.IntN(3))
		p := &packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP,
			Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(64))}), Dst: netip.AddrFrom4([4]byte{10, 0, 1, 1}), SrcPort: 1, DstPort: 2}
		k, fromA := KeyOf(p)
		sh := tab.shardOf(&k)
		m := model[sh]
		if m == nil {
			m = map[Key]*ref{}
			model[sh] = m
		}
		n, want := m[k]
		if want && now > n.last+ttl {
			delete(m, k)
			want = false
		}
		var st State
		got := tab.Observe(k, now, 100, fromA, 0, &st)
		if got != want {
			t.Fatalf("op %d: table found=%v, model found=%v", op, got, want)
		}
		if got {
			n.packets++
			n.last, n.used = now, op
			if st.Packets != n.packets {
				t.Fatalf("op %d: packets %d, want %d", op, st.Packets, n.packets)
			}
			continue
		}
		if len(m) == 2 { // the shard is full: the least recently used goes
			var oldest Key
			first := true
			for mk, mr := range m {
				if first || mr.used < m[oldest].used {
					oldest, first = mk, false
				}
			}
			delete(m, oldest)
		}
		tab.Insert(k, now, 100, 0, &State{})
		m[k] = &ref{packets: 1, last: now, used: op}
	}
	if tab.Evictions() == 0 || tab.Expired() == 0 {
		t.Fatalf("the run should exercise eviction (%d) and expiry (%d)", tab.Evictions(), tab.Expired())
	}
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	tab := New(16, DefaultTTLs()) // one entry per shard
	var keys []Key
	for i := 0; len(keys) < 2; i++ {
		k, _ := KeyOf(tcp("10.0.0.1", "10.0.0.2", uint16(i), 80))
		if len(keys) == 0 || tab.shardOf(&k) == tab.shardOf(&keys[0]) {
			keys = append(keys, k)
		}
	}
	tab.Insert(keys[0], 1, 60, 0, &State{Judgement: Judgement{Rule: 1}})
	tab.Insert(keys[1], 2, 60, 0, &State{Judgement: Judgement{Rule: 2}})
	var st State
	if tab.Observe(keys[0], 3, 60, true, 0, &st) {
		t.Fatal("the older flow should have been evicted from its one-entry shard")
	}
	if !tab.Observe(keys[1], 3, 60, true, 0, &st) || st.Rule != 2 {
		t.Fatal("the newer flow should be there")
	}
	if tab.Evictions() != 1 {
		t.Fatalf("evictions %d", tab.Evictions())
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	tab := New(1024, DefaultTTLs())
	p := tcp("10.0.0.1", "10.0.0.2", 40000, 80)
	k, _ := KeyOf(p)
	tab.Insert(k, 1, 60, 0, &State{})
	var st State
	if n := testing.AllocsPerRun(1000, func() { tab.Observe(k, 2, 60, true, 0, &st) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	tab := New(65536, DefaultTTLs())
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i], _ = KeyOf(tcp("10.0.0.1", "10.0.0.2", uint16(i), 80))
		tab.Insert(keys[i], 1, 60, 0, &State{})
	}
	var st State
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !tab.Observe(keys[i%len(keys)], 2, 60, true, 0, &st) {
			b.Fatal("lost")
		}
	}
}

func BenchmarkKeyOf(b *testing.B) {
	p := tcp("10.0.0.1", "10.0.0.2", 40000, 80)
	var k Key
	for b.Loop() {
		k, _ = KeyOf(p)
	}
	_ = k
}

// An ICMP query's key says who asks: a request and its reply share it, a
// request the other way does not, nor does a query with another identifier
// or kind. Neighbour discovery keeps one key per pair of hosts.
func TestICMPQueryKeys(t *testing.T) {
	a, b := netip.MustParseAddr("10.88.0.10"), netip.MustParseAddr("10.77.0.21")
	icmp := func(src, dst netip.Addr, typ uint8, id uint16) *packet.Packet {
		return &packet.Packet{Kind: packet.KindOK, Src: src, Dst: dst, Proto: packet.ProtoICMP, ICMPType: typ, ICMPID: id}
	}
	req, fromA := KeyOf(icmp(a, b, 8, 7))
	rep, repFromA := KeyOf(icmp(b, a, 0, 7))
	if req != rep || !fromA || repFromA {
		t.Errorf("a request and its reply: keys %v %v, fromA %v %v", req, rep, fromA, repFromA)
	}
	for name, p := range map[string]*packet.Packet{
		"request the other way": icmp(b, a, 8, 7),
		"another identifier":    icmp(a, b, 8, 8),
		"timestamp":             icmp(a, b, 13, 7),
		"reply the other way":   icmp(a, b, 0, 7),
	} {
		if k, _ := KeyOf(p); k == req {
			t.Errorf("%s shares the echo's key", name)
		}
	}
	if id, kind, ok := req.Query(); !ok || id != 7 || kind != 8 {
		t.Errorf("Query() = %d %d %v", id, kind, ok)
	}
	if x, y := req.Endpoints(); x.Port() != 0 || y.Port() != 0 || x.Addr() != a || y.Addr() != b {
		t.Errorf("endpoints %v %v", x, y)
	}
	ns := &packet.Packet{Kind: packet.KindOK, Src: a, Dst: b, Proto: packet.ProtoICMPv6, ICMPType: 135}
	na := &packet.Packet{Kind: packet.KindOK, Src: b, Dst: a, Proto: packet.ProtoICMPv6, ICMPType: 136}
	if k1, _ := KeyOf(ns); k1 != func() Key { k, _ := KeyOf(na); return k }() {
		t.Error("neighbour solicitation and advertisement between two hosts no longer share a key")
	}
	if _, _, ok := func() Key { k, _ := KeyOf(ns); return k }().Query(); ok {
		t.Error("neighbour discovery is not a query")
	}
}
