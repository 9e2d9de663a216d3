package engine

import (
	"sync"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/flow"
)

// Inspection bounds.
const (
	// InspectBytes is how many of a flow's client bytes are kept while its
	// application is identified: its first bytes, in order from the
	// stream's start, and for a lifelong flow the bytes since the last
	// judged message plus what is left of the last ones (to compare
	// retransmissions against).
	InspectBytes = 4096
	// DefaultInspectFlows bounds how many flows are under inspection at
	// once: 1024 × 4 KiB is 4 MiB, allocated when the first flow needs it.
	DefaultInspectFlows = 1024
	// DefaultAppPackets is how many packets (both ways) a flow may take to
	// be identified before its rule's unidentified choice applies.
	DefaultAppPackets = 12
	// appNameMax is how many bytes of an identified name are kept.
	appNameMax = 64
	// DefaultAppNames bounds the identified flows whose application and
	// name status and replay can show.
	DefaultAppNames = 4096
)

// streamSlot is one flow under inspection: its client's bytes in order.
//
// buf holds the stream from sequence number base: buf[:off] has been
// judged (kept to compare retransmissions with), buf[off:n] waits for a
// whole message. A segment is taken only when it starts at or before the
// next byte expected: one ahead of it is dropped alone until the gap is
// filled, so that the bytes judged are exactly the bytes the server reads,
// in its order. Bytes sent again are compared with the ones judged: a
// retransmission that differs is the classic way to show a checker one
// stream and the server another.
type streamSlot struct {
	key    flow.Key
	idx    int32 // the slot's own index
	chain  int32 // next slot in the bucket, -1 ends it
	stamp  uint64
	inUse  bool
	lost   bool // bytes went by that were not seen (a copy cut short)
	passed bool // a lifelong flow's first message passed: it is identified
	base   uint32
	n, off int
	buf    [InspectBytes]byte
}

// inspectTable is a bounded table of the flows under inspection, keyed by
// flow key. The slots are allocated once, on first use; when all are in
// use a new flow takes an old one's (see take), and the flow it held is
// then unidentified on its next packet.
type inspectTable struct {
	mu      sync.Mutex
	size    int
	slots   []streamSlot
	buckets []int32
	// free are the slots not in use; hand is where the search for a slot
	// to evict goes on from.
	free  []int32
	hand  int
	clock uint64
	seed  uint64
}

// evictSample is how many slots the eviction looks at: the least recently
// used of them goes. A flow whose packets keep coming (a lifelong one) is
// touched on each and is not the one evicted.
const evictSample = 8

func newInspectTable(size int) *inspectTable {
	if size <= 0 {
		size = DefaultInspectFlows
	}
	return &inspectTable{size: size, seed: 0x9e3779b97f4a7c15}
}

func keyHash(k *flow.Key, seed uint64) uint64 {
	h := seed ^ k.AHi ^ k.ALo*0xff51afd7ed558ccd ^ k.BHi*0xc4ceb9fe1a85ec53 ^ k.BLo ^ uint64(k.APort)<<32 ^ uint64(k.BPort)<<16 ^ uint64(k.Proto)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (t *inspectTable) bucket(k *flow.Key) *int32 {
	return &t.buckets[keyHash(k, t.seed)&uint64(len(t.buckets)-1)]
}

// find returns the slot of k, nil when none. Call with mu held.
func (t *inspectTable) find(k *flow.Key) *streamSlot {
	if t.slots == nil {
		return nil
	}
	for i := *t.bucket(k); i >= 0; i = t.slots[i].chain {
		if s := &t.slots[i]; s.key == *k {
			t.clock++
			s.stamp = t.clock
			return s
		}
	}
	return nil
}

// take returns a fresh slot for k. When all are in use the least recently
// used of a few is evicted: its flow is unidentified on its next packet.
// Call with mu held.
func (t *inspectTable) take(k *flow.Key) *streamSlot {
	if t.slots == nil {
		t.alloc()
	}
	if s := t.find(k); s != nil {
		t.release(s)
	}
	var idx int32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		idx = int32(t.hand)
		for i := 0; i < evictSample; i++ {
			j := (t.hand + i) % len(t.slots)
			if t.slots[j].stamp < t.slots[idx].stamp {
				idx = int32(j)
			}
		}
		t.hand = (t.hand + evictSample) % len(t.slots)
		t.unlink(&t.slots[idx])
	}
	s := &t.slots[idx]
	b := t.bucket(k)
	t.clock++
	s.key, s.chain, s.stamp, s.inUse = *k, *b, t.clock, true
	s.lost, s.passed, s.base, s.n, s.off = false, false, 0, 0, 0
	*b = idx
	return s
}

// alloc makes the slots, once, when the first flow needs one.
func (t *inspectTable) alloc() {
	nb := 1
	for nb < 2*t.size {
		nb <<= 1
	}
	t.slots = make([]streamSlot, t.size)
	t.buckets = make([]int32, nb)
	t.free = make([]int32, t.size)
	for i := range t.buckets {
		t.buckets[i] = -1
	}
	for i := range t.slots {
		t.slots[i].idx = int32(i)
		t.free[i] = int32(t.size - 1 - i)
	}
}

// release frees s. Call with mu held.
func (t *inspectTable) release(s *streamSlot) {
	if s != nil && s.inUse {
		t.unlink(s)
		t.free = append(t.free, s.idx)
	}
}

func (t *inspectTable) unlink(s *streamSlot) {
	idx := s.idx
	for p := t.bucket(&s.key); *p >= 0; p = &t.slots[*p].chain {
		if *p == idx {
			*p = s.chain
			break
		}
	}
	s.inUse, s.chain = false, -1
}

// segment is what taking one client segment did.
type segment uint8

const (
	segTaken   segment = iota // in order (or a faithful copy of bytes judged): judge
	segAhead                  // starts past the next byte expected: drop it alone
	segTooOld                 // resends bytes no longer kept: drop it alone
	segDiffers                // resends judged bytes with other content
	segFull                   // more bytes than a slot holds without a decision
)

// add takes the payload of a client segment with sequence number seq and
// wireLen bytes on the wire (of which len(pl) were delivered).
func (s *streamSlot) add(seq uint32, pl []byte, wireLen int) segment {
	next := s.base + uint32(s.n)
	ahead := int32(seq - next)
	if ahead > 0 {
		return segAhead
	}
	// Bytes before next: a copy of what was seen. They must be the same.
	rel := int32(seq - s.base)
	if rel < 0 {
		return segTooOld
	}
	old := min(int(-ahead), wireLen)
	if string(pl[:min(old, len(pl))]) != string(s.buf[int(rel):int(rel)+min(old, len(pl))]) {
		return segDiffers
	}
	if old >= len(pl) {
		if old < wireLen {
			s.lost = true
		}
		return segTaken
	}
	fresh := pl[old:]
	if s.n+len(fresh) > len(s.buf) {
		// Keep what a lifelong flow has judged only as long as there is
		// room: drop the oldest judged bytes first.
		drop := min(s.off, s.n+len(fresh)-len(s.buf))
		copy(s.buf[:], s.buf[drop:s.n])
		s.base += uint32(drop)
		s.n -= drop
		s.off -= drop
		if s.n+len(fresh) > len(s.buf) {
			return segFull
		}
	}
	s.n += copy(s.buf[s.n:], fresh)
	if len(pl) < wireLen {
		s.lost = true
	}
	return segTaken
}

// appNames remembers the application and name of identified flows for
// status and replay. It is a hash table of fixed entries: a flow's entry
// is one of appProbe slots from its hash, and a new flow takes the oldest
// of them when none is free. Lookups and inserts are O(1) and allocate
// nothing once the entries exist.
type appNames struct {
	mu      sync.Mutex
	entries []appNameEntry
	size    int
	clock   uint64
}

// appProbe is how many slots a flow's entry may be in.
const appProbe = 8

type appNameEntry struct {
	key     flow.Key
	stamp   uint64 // 0: free
	proto   appid.Proto
	nameLen uint8
	name    [appNameMax]byte
}

func (a *appNames) put(k *flow.Key, proto appid.Proto, name []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		n := appProbe
		for n < a.size {
			n <<= 1
		}
		a.entries = make([]appNameEntry, n)
	}
	mask := uint64(len(a.entries) - 1)
	h := keyHash(k, 0)
	victim := &a.entries[h&mask]
	for i := uint64(0); i < appProbe; i++ {
		e := &a.entries[(h+i)&mask]
		if e.stamp != 0 && e.key == *k {
			victim = e
			break
		}
		if e.stamp < victim.stamp {
			victim = e
		}
	}
	a.clock++
	victim.key, victim.stamp, victim.proto = *k, a.clock, proto
	victim.nameLen = uint8(copy(victim.name[:], name))
}

// get returns the entry of k.
func (a *appNames) get(k flow.Key) (appid.Proto, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		return appid.None, "", false
	}
	mask := uint64(len(a.entries) - 1)
	h := keyHash(&k, 0)
	for i := uint64(0); i < appProbe; i++ {
		if e := &a.entries[(h+i)&mask]; e.stamp != 0 && e.key == k {
			return e.proto, string(e.name[:e.nameLen]), true
		}
	}
	return appid.None, "", false
}
