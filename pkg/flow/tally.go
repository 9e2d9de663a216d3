package flow

import "math/bits"

// Tally is a judgement flows are counted by: the verdict, deciding layer
// and rule of their State.
type Tally struct {
	Verdict, Layer uint8
	Rule           int32
}

func tallyOf(st *State) Tally { return Tally{Verdict: st.Verdict, Layer: st.Layer, Rule: st.Rule} }

// packed is a Tally as one integer, the key of a shard's tallyTable.
func packed(st *State) uint64 {
	return uint64(st.Verdict)<<40 | uint64(st.Layer)<<32 | uint64(uint32(st.Rule))
}

func unpacked(k uint64) Tally {
	return Tally{Verdict: uint8(k >> 40), Layer: uint8(k >> 32), Rule: int32(uint32(k))}
}

// tally adds d to the count of st's judgement. Every change to the flows a
// shard holds, or to a held flow's Verdict, Layer or Rule, goes through it
// (Insert, Update, remove), so the counts are always those of the flows
// held, and reading them never walks the flows.
func (s *shard) tally(st *State, d int32) { s.tallies.add(packed(st), d) }

// tallyTable counts flows by packed Tally. It is an open-addressing table
// of (key, count) pairs with linear probing, doubled when half full: a few
// nanoseconds a count on the new-flow path, where a Go map costs tens.
// Keys are never removed (a judgement whose count falls to 0 keeps its
// slot; there are at most verdicts × layers × rules of them), so there are
// no tombstones, and a table that has seen a judgement counts it again
// without allocating.
type tallyTable struct {
	keys   []uint64 // packed key + 1; 0 marks an empty slot
	counts []int32
	used   int
	shift  uint8 // 64 - log2(len(keys))
}

func (t *tallyTable) add(k uint64, d int32) {
	k++
	if len(t.keys) == 0 {
		t.grow()
	}
	i := t.find(k)
	if t.keys[i] == k {
		t.counts[i] += d
		return
	}
	if 2*(t.used+1) > len(t.keys) {
		t.grow()
		i = t.find(k)
	}
	t.keys[i], t.counts[i] = k, d
	t.used++
}

// find returns the slot holding stored key k, or the empty slot where it
// belongs. The table is never full, so the probe ends.
func (t *tallyTable) find(k uint64) uint64 {
	mask := uint64(len(t.keys) - 1)
	for i := (k * 0x9e3779b97f4a7c15) >> t.shift; ; i = (i + 1) & mask {
		if t.keys[i] == k || t.keys[i] == 0 {
			return i
		}
	}
}

// grow doubles the table (64 slots at first) and places every key again.
func (t *tallyTable) grow() {
	n := max(64, 2*len(t.keys))
	old, oldCounts := t.keys, t.counts
	t.keys, t.counts, t.used = make([]uint64, n), make([]int32, n), 0
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	for i, k := range old {
		if k != 0 {
			t.add(k-1, oldCounts[i])
		}
	}
}

// each calls fn with every judgement the table has a non-zero count for.
func (t *tallyTable) each(fn func(k uint64, n int32)) {
	for i, k := range t.keys {
		if k != 0 && t.counts[i] != 0 {
			fn(k-1, t.counts[i])
		}
	}
}

// Tallies returns how many flows the table holds with each judgement,
// expired ones included until they are looked up or evicted (as in Len).
// The table keeps these counts as flows come, change judgement and go, so
// this takes each shard's lock for a copy of a few dozen counters, never
// for a walk of its flows: a metrics scrape costs the packet path nothing
// however large the table.
func (t *Table) Tallies() map[Tally]int {
	out := make(map[Tally]int)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.tallies.each(func(k uint64, n int32) { out[unpacked(k)] += int(n) })
		s.mu.Unlock()
	}
	return out
}
