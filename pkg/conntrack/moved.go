package conntrack

// Tracker turns successive dumps of the table into what each flow moved
// between them. The kernel's byte counters only grow for the life of an
// entry, so the Tracker keeps each flow's last counts and hands out the
// difference. It is not safe for concurrent use: one goroutine takes the
// dumps (Begin, Flow for each flow, End).
type Tracker struct {
	prev, next map[uint64]byteCounts // by Flow.Hash: eight bytes where the tuple is forty
}

type byteCounts struct{ orig, reply uint64 }

// Moved is what one flow moved since the previous dump.
type Moved struct {
	// Orig and Reply are the bytes moved in the original direction (from
	// the flow's source) and in the reply direction.
	Orig, Reply uint64
	// New reports that the flow was not in the previous dump: it counts
	// from zero. Reset reports that a counter was lower than before
	// (zeroed by someone else, or an id reused): that direction counts
	// from zero again.
	New, Reset bool
}

// NewTracker returns a Tracker that has seen no dump yet: every flow of the
// first one is New.
func NewTracker() *Tracker {
	return &Tracker{prev: map[uint64]byteCounts{}, next: map[uint64]byteCounts{}}
}

// Begin starts a dump, taken a flow at a time so that a large table is
// never held in memory at once.
func (t *Tracker) Begin() { clear(t.next) }

// Flow takes one flow of the dump under way and says what it moved since
// the previous dump. Flows the caller does not pass to Flow are forgotten
// at End, as if they had closed.
func (t *Tracker) Flow(f *Flow) Moved {
	id := f.Hash()
	cur := byteCounts{orig: f.OrigBytes, reply: f.ReplyBytes}
	t.next[id] = cur
	last, seen := t.prev[id]
	return Moved{
		Orig:  grown(cur.orig, last.orig),
		Reply: grown(cur.reply, last.reply),
		New:   !seen,
		Reset: seen && (cur.orig < last.orig || cur.reply < last.reply),
	}
}

// End finishes the dump under way and returns how many flows of the
// previous dump it did not hold.
func (t *Tracker) End() (vanished int) {
	for id := range t.prev {
		if _, ok := t.next[id]; !ok {
			vanished++
		}
	}
	t.prev, t.next = t.next, t.prev
	return vanished
}

// grown is what a counter that only grows moved since last; a counter
// lower than last was reset and moved cur since.
func grown(cur, last uint64) uint64 {
	if cur < last {
		return cur
	}
	return cur - last
}
