package flow

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

// TCP phases a flow goes through, as far as the table tracks them (only to
// pick a time-to-live; conntrack in the kernel is the authority).
const (
	PhaseNone        uint8 = iota // not TCP, or no SYN seen yet
	PhaseHandshake                // SYN seen
	PhaseEstablished              // data flowing
	PhaseClosing                  // FIN or RST seen
)

// How a flow was opened, as far as the packets picoseg saw tell.
const (
	// OpenedFirst: the flow's first packet opened it (UDP, ICMP queries,
	// protocols without handshakes), or the flow has not been judged.
	OpenedFirst uint8 = iota
	// OpenedSYN: a TCP SYN without ACK opened it.
	OpenedSYN
	// OpenedMidStream: a TCP packet without SYN, or an ICMP reply, was the
	// first seen (a capture that began late, a daemon restart). The flow
	// was credited to one side by judgement, not by a handshake, so it
	// vouches for nothing that opens a connection.
	OpenedMidStream
)

// Judgement is how picoseg judged a flow. It is replaced whole: every
// field belongs to the generation in Gen, and a field left from another
// generation (a budget slot) would index that generation's state.
type Judgement struct {
	// Gen is the policy generation that judged the flow. A flow judged by
	// an older policy is judged again.
	Gen     uint32
	Verdict uint8 // the engine's verdict enum
	Layer   uint8 // the deciding layer
	Reason  uint8 // the engine's reason code
	// FromA says the flow's opener is the key's endpoint A: the verdict
	// is the opener's, and only the opener's.
	FromA bool
	Rule  int32 // deciding rule in its layer, -1 for none
	// SrcDevice and DstDevice index the policy's devices, -1 when unknown.
	// SrcDevice is the opener's.
	SrcDevice, DstDevice int32
	// Budget indexes the generation's per-device budget state, -1 for none.
	Budget int32
	// ValidUntil ends the flow's permission (a closing time window);
	// zero means no end.
	ValidUntil int64
}

// State is what picoseg remembers of one flow. It is copied in and out of
// the table, never shared.
type State struct {
	Judgement
	Phase uint8
	// Opened says how the flow was opened (OpenedFirst, ...): a fact
	// about its packets, which no judgement changes.
	Opened uint8
	// App is the application protocol (appid.Proto) the flow was
	// identified as speaking, 0 for none: a fact about its bytes, kept
	// when the flow is judged again after a reload.
	App uint8
	// Packets and Bytes count both directions; Up counts bytes the
	// opener sent.
	Packets          uint32
	Bytes, Up        uint64
	MinSize, MaxSize uint16
	First, Last      int64 // unix nanoseconds
}

// TTLs says how long an idle flow is kept, by protocol state.
type TTLs struct {
	TCPHandshake, TCPEstablished, TCPClosing time.Duration
	UDP, ICMP, Other                         time.Duration
}

// DefaultTTLs are close to the kernel's conntrack defaults, shortened where
// userspace only needs to remember a flow while it is being judged.
func DefaultTTLs() TTLs {
	return TTLs{
		TCPHandshake:   30 * time.Second,
		TCPEstablished: time.Hour,
		TCPClosing:     10 * time.Second,
		UDP:            2 * time.Minute,
		ICMP:           30 * time.Second,
		Other:          2 * time.Minute,
	}
}

const shardCount = 16

// Table is a bounded flow table. The zero value is not usable; call New.
type Table struct {
	ttl       TTLs
	seed      uint64
	shards    [shardCount]shard
	evictions atomic.Uint64
	expired   atomic.Uint64
}

type entry struct {
	key        Key
	state      State
	expires    int64
	hash       uint64
	prev, next int32 // LRU links; -1 ends the list
}

// shard is an open-addressing hash table over a fixed array of entries,
// with linear probing and backward-shift deletion: no tombstones, so a
// table that churns (every new flow evicting an old one) never degrades and
// never allocates. A slot holds entry index + 1 (0 for empty) and 32 bits
// of the entry's hash, from which its home slot follows: probing and
// shifting compare slots alone and touch an entry only on a likely match.
// There are at least twice as many slots as entries.
type shard struct {
	mu      sync.Mutex
	slots   []slot
	mask    uint64
	count   int
	entries []entry
	free    []int32
	head    int32 // most recently used
	tail    int32 // least recently used
	tallies tallyTable
	_       [32]byte
}

// New returns a table holding at most capacity flows (rounded up to a
// multiple of the shard count).
func New(capacity int, ttl TTLs) *Table {
	per := (capacity + shardCount - 1) / shardCount
	if per < 1 {
		per = 1
	}
	t := &Table{ttl: ttl, seed: rand.Uint64()}
	for i := range t.shards {
		s := &t.shards[i]
		n := 1
		for n < 2*per {
			n <<= 1
		}
		s.slots = make([]slot, n)
		s.mask = uint64(n - 1)
		s.entries = make([]entry, per)
		s.free = make([]int32, per)
		for j := range s.free {
			s.free[j] = int32(per - 1 - j)
		}
		s.head, s.tail = -1, -1
		s.tallies.grow()
	}
	return t
}

// Capacity is the most flows the table holds.
func (t *Table) Capacity() int { return len(t.shards[0].entries) * shardCount }

// Len counts the flows held now, expired ones included until they are
// looked up or evicted.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

// Evictions counts flows pushed out because the table was full.
func (t *Table) Evictions() uint64 { return t.evictions.Load() }

// Expired counts flows dropped because they were idle past their TTL.
func (t *Table) Expired() uint64 { return t.expired.Load() }

func (t *Table) shardOf(k *Key) *shard { return &t.shards[k.hash64(t.seed)%shardCount] }

// slot is one place of a shard's open-addressing index.
type slot struct {
	idx int32  // entry index + 1; 0 for an empty slot
	tag uint32 // hash >> 4, truncated: tag & mask is the home slot
}

func tagOf(h uint64) uint32 { return uint32(h >> 4) }

// find returns the entry holding k, or -1.
func (s *shard) find(k *Key, h uint64) int32 {
	tag := tagOf(h)
	for i := uint64(tag) & s.mask; ; i = (i + 1) & s.mask {
		sl := s.slots[i]
		if sl.idx == 0 {
			return -1
		}
		if sl.tag == tag {
			if e := &s.entries[sl.idx-1]; e.hash == h && e.key == *k {
				return sl.idx - 1
			}
		}
	}
}

// place records entry idx, whose key hashes to h, in the first free slot.
func (s *shard) place(idx int32, h uint64) {
	tag := tagOf(h)
	i := uint64(tag) & s.mask
	for s.slots[i].idx != 0 {
		i = (i + 1) & s.mask
	}
	s.slots[i] = slot{idx: idx + 1, tag: tag}
	s.count++
}

// unplace removes entry idx from the slots, shifting later members of its
// probe run back so that every lookup still finds them.
func (s *shard) unplace(idx int32) {
	i := uint64(tagOf(s.entries[idx].hash)) & s.mask
	for s.slots[i].idx != idx+1 {
		i = (i + 1) & s.mask
	}
	for j := (i + 1) & s.mask; s.slots[j].idx != 0; j = (j + 1) & s.mask {
		home := uint64(s.slots[j].tag) & s.mask
		// The entry at j may move to the hole at i only if its home
		// slot is not cyclically in (i, j].
		if (j-home)&s.mask >= (j-i)&s.mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = slot{}
	s.count--
}

// Observe accounts one packet of size bytes, sent from endpoint A when
// fromA, to the flow k, and copies the flow's state to out. It reports
// false, changing nothing, when the flow is unknown or expired.
func (t *Table) Observe(k Key, now int64, size uint16, fromA bool, tcpFlags uint8, out *State) bool {
	h := k.hash64(t.seed)
	s := &t.shards[h%shardCount]
	// Deferred unlocks here and in Insert: should a bug ever panic inside
	// (the daemon recovers and goes on judging), a shard left locked
	// would hang every later packet of its flows.
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(&k, h)
	if i < 0 {
		return false
	}
	e := &s.entries[i]
	if now > e.expires {
		s.remove(i)
		t.expired.Add(1)
		return false
	}
	st := &e.state
	account(st, now, size, fromA == st.FromA, k.Proto, tcpFlags)
	e.expires = now + t.ttlOf(k.Proto, st.Phase)
	s.touch(i)
	*out = *st
	return true
}

// Peek copies the state of flow k to out without accounting a packet or
// touching its place in the eviction order. It reports false when the flow
// is unknown or expired at now. ICMP errors are judged by the flow they
// quote this way: an error is not a packet of that flow.
func (t *Table) Peek(k Key, now int64, out *State) bool {
	h := k.hash64(t.seed)
	s := &t.shards[h%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(&k, h)
	if i < 0 || now > s.entries[i].expires {
		return false
	}
	*out = s.entries[i].state
	return true
}

// Insert stores st as the state of flow k, replacing any state it had, and
// accounts the packet that created it.
func (t *Table) Insert(k Key, now int64, size uint16, tcpFlags uint8, st *State) {
	h := k.hash64(t.seed)
	s := &t.shards[h%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(&k, h)
	if i < 0 {
		if len(s.free) == 0 {
			s.remove(s.tail)
			t.evictions.Add(1)
		}
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.entries[i].key, s.entries[i].hash = k, h
		s.place(i, h)
		s.pushFront(i)
	} else {
		s.touch(i)
		s.tally(&s.entries[i].state, -1)
	}
	e := &s.entries[i]
	e.state = *st
	s.tally(&e.state, 1)
	if e.state.First == 0 {
		e.state.First = now
	}
	account(&e.state, now, size, true, k.Proto, tcpFlags)
	*st = e.state
	e.expires = now + t.ttlOf(k.Proto, e.state.Phase)
}

// Update replaces the judgement of flow k with st's, whole, and its
// identified application (State.App), keeping its
// counters. It reports false when the flow is no longer in the table.
func (t *Table) Update(k Key, st *State) bool {
	h := k.hash64(t.seed)
	s := &t.shards[h%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(&k, h)
	if i < 0 {
		return false
	}
	e := &s.entries[i].state
	s.tally(e, -1)
	e.Judgement = st.Judgement
	e.App = st.App
	s.tally(e, 1)
	return true
}

// Range calls fn with a copy of every unexpired flow until fn returns
// false. It holds one shard's lock at a time; fn must not call the table.
func (t *Table) Range(now int64, fn func(Key, State) bool) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := s.head; j >= 0; j = s.entries[j].next {
			e := &s.entries[j]
			if now > e.expires {
				continue
			}
			if !fn(e.key, e.state) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

func account(st *State, now int64, size uint16, fromInitiator bool, proto, tcpFlags uint8) {
	st.Packets++
	st.Bytes += uint64(size)
	if fromInitiator {
		st.Up += uint64(size)
	}
	if st.MinSize == 0 || size < st.MinSize {
		st.MinSize = size
	}
	if size > st.MaxSize {
		st.MaxSize = size
	}
	st.Last = now
	if proto != packet.ProtoTCP {
		return
	}
	switch {
	case tcpFlags&(packet.TCPFin|packet.TCPRst) != 0:
		st.Phase = PhaseClosing
	case tcpFlags&packet.TCPSyn != 0 && st.Phase == PhaseNone:
		st.Phase = PhaseHandshake
	case tcpFlags&packet.TCPSyn == 0 && st.Phase != PhaseClosing:
		// Mid-stream pickup lands here too: conntrack's loose tracking
		// does the same.
		st.Phase = PhaseEstablished
	}
}

func (t *Table) ttlOf(proto, phase uint8) int64 {
	switch proto {
	case packet.ProtoTCP:
		switch phase {
		case PhaseEstablished:
			return int64(t.ttl.TCPEstablished)
		case PhaseClosing:
			return int64(t.ttl.TCPClosing)
		}
		return int64(t.ttl.TCPHandshake)
	case packet.ProtoUDP:
		return int64(t.ttl.UDP)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return int64(t.ttl.ICMP)
	}
	return int64(t.ttl.Other)
}

func (s *shard) remove(i int32) {
	s.tally(&s.entries[i].state, -1)
	s.unplace(i)
	s.unlink(i)
	s.free = append(s.free, i)
}

func (s *shard) unlink(i int32) {
	e := &s.entries[i]
	if e.prev >= 0 {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *shard) pushFront(i int32) {
	e := &s.entries[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.entries[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *shard) touch(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}
