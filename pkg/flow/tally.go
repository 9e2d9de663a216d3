package flow

// Tally is a judgement flows are counted by: the verdict, deciding layer
// and rule of their State.
type Tally struct {
	Verdict, Layer uint8
	Rule           int32
}

func tallyOf(st *State) Tally { return Tally{Verdict: st.Verdict, Layer: st.Layer, Rule: st.Rule} }

// packed is a Tally as one integer: the shards' maps are keyed by it, which
// takes Go's fast path for 64-bit keys (a struct key with padding is hashed
// field by field).
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
//
// The map gains a key only for a judgement it has not seen (bounded by
// verdicts × layers × rules); counting a known one does not allocate.
func (s *shard) tally(st *State, d int32) { s.tallies[packed(st)] += d }

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
		for k, n := range s.tallies {
			if n != 0 {
				out[unpacked(k)] += int(n)
			}
		}
		s.mu.Unlock()
	}
	return out
}
