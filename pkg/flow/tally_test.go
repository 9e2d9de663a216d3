package flow

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/picoseg/picoseg/pkg/packet"
)

// walk counts the flows held by judgement the slow way, every entry of
// every shard, expired ones included (as Tallies counts them).
func walk(t *Table) map[Tally]int {
	out := map[Tally]int{}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := s.head; j >= 0; j = s.entries[j].next {
			out[tallyOf(&s.entries[j].state)]++
		}
		s.mu.Unlock()
	}
	return out
}

// Whatever happens to the flows (new, judged again, re-inserted, expired,
// evicted from a full table), the running counts are those of a walk.
func TestTalliesMatchAWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ttl := DefaultTTLs()
	tab := New(256, ttl)
	key := func() Key {
		k, _ := KeyOf(&packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoUDP,
			Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(40))}), Dst: netip.AddrFrom4([4]byte{10, 1, 0, 1}),
			SrcPort: uint16(r.IntN(20)), DstPort: 53})
		return k
	}
	judgement := func() State {
		return State{Judgement: Judgement{Verdict: uint8(r.IntN(3)), Layer: uint8(r.IntN(4)), Rule: int32(r.IntN(6)) - 1}}
	}
	now := int64(1e18)
	for step := range 20000 {
		now += r.Int64N(int64(ttl.UDP) / 50)
		switch k := key(); r.IntN(4) {
		case 0, 1:
			st := judgement()
			tab.Insert(k, now, 60, 0, &st)
		case 2:
			st := judgement()
			tab.Update(k, &st)
		case 3:
			var st State
			tab.Observe(k, now, 60, true, 0, &st) // may expire the flow
		}
		if step%500 == 0 {
			want, got := walk(tab), tab.Tallies()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("step %d: tallies (-walk +running):\n%s", step, diff)
			}
		}
	}
	if tab.Evictions() == 0 || tab.Expired() == 0 {
		t.Fatalf("the test never evicted (%d) or expired (%d) a flow", tab.Evictions(), tab.Expired())
	}
	total := 0
	for _, n := range tab.Tallies() {
		total += n
	}
	if total != tab.Len() {
		t.Fatalf("tallies add up to %d flows, Len is %d", total, tab.Len())
	}
}

// Counting flows costs no allocation once a judgement has been seen.
func TestTallyNoAllocs(t *testing.T) {
	tab := New(64, DefaultTTLs())
	k, _ := KeyOf(tcp("10.0.0.1", "10.0.0.2", 40000, 80))
	accept, drop := State{Judgement: Judgement{Verdict: 1, Layer: 2, Rule: 3}}, State{Judgement: Judgement{Verdict: 2, Layer: 2, Rule: 3}}
	tab.Insert(k, 1, 60, packet.TCPSyn, &accept)
	tab.Update(k, &drop)
	if n := testing.AllocsPerRun(1000, func() {
		tab.Update(k, &accept)
		tab.Insert(k, 2, 60, packet.TCPSyn, &drop)
	}); n != 0 {
		t.Fatalf("%v allocations per re-judgement", n)
	}
}

// BenchmarkScrape compares reading the per-rule counts from the running
// tallies with walking a full table, as a scrape did.
func BenchmarkScrape(b *testing.B) {
	tab := New(100000, DefaultTTLs())
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 100000 {
		k, _ := KeyOf(&packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP,
			Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Dst: netip.AddrFrom4([4]byte{198, 51, 100, 2}),
			SrcPort: 40000, DstPort: 443})
		st := State{Judgement: Judgement{Verdict: uint8(1 + r.IntN(2)), Layer: uint8(r.IntN(4)), Rule: int32(r.IntN(50))}}
		tab.Insert(k, 1, 60, packet.TCPSyn, &st)
	}
	b.Run("tallies", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if len(tab.Tallies()) == 0 {
				b.Fatal("no tallies")
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			counts := map[Tally]int{}
			tab.Range(2, func(_ Key, st State) bool { counts[tallyOf(&st)]++; return true })
			if len(counts) == 0 {
				b.Fatal("no flows")
			}
		}
	})
}
