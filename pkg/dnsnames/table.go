package dnsnames

import (
	"net/netip"
	"sync"
	"time"
)

// Sizes bounds a Table. Zero fields take the defaults.
type Sizes struct {
	// Devices is how many devices (answer destinations) have entries
	// (default 512). A new device past it evicts the device whose entries
	// were first made longest ago.
	Devices int
	// PerDevice is how many addresses one device keeps (default 32). A new
	// address past it evicts that device's entry that expires first: a
	// device flooding itself with names only loses its own.
	PerDevice int
	// Pending is how many outstanding queries are kept (default 4096), at
	// most PendingPerDevice (default 32) of one device: a device sending
	// queries faster than they are answered cannot crowd out another's.
	Pending, PendingPerDevice int
	// QueryTimeout is how long a query waits for its answer (default 10s).
	QueryTimeout time.Duration
	// MaxTTL caps the TTL an answer may give (default 24h).
	MaxTTL time.Duration
}

// NamesPerAddr is how many names one address of one device is kept under
// (a CDN address serving several names the device asked for). A further
// name replaces the one that expires first.
const NamesPerAddr = 2

// Defaults of Sizes.
const (
	DefaultDevices          = 512
	DefaultPerDevice        = 32
	DefaultPending          = 4096
	DefaultPendingPerDevice = 32
	DefaultQueryTimeout     = 10 * time.Second
	DefaultMaxTTL           = 24 * time.Hour
)

func (s *Sizes) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.Devices, DefaultDevices)
	def(&s.PerDevice, DefaultPerDevice)
	def(&s.Pending, DefaultPending)
	def(&s.PendingPerDevice, DefaultPendingPerDevice)
	if s.QueryTimeout <= 0 {
		s.QueryTimeout = DefaultQueryTimeout
	}
	if s.MaxTTL <= 0 {
		s.MaxTTL = DefaultMaxTTL
	}
}

// Query identifies one outstanding query: who asked whom, from which port
// and with which identifier. The answer must come back on the reverse of
// it.
type Query struct {
	Client, Resolver         netip.Addr
	ClientPort, ResolverPort uint16
	ID                       uint16
}

// Port is where resolvers listen.
const Port = 53

// MessageQuery is the query a DNS message from src:sport to dst:dport
// with identifier id belongs to: a message to the resolver's port 53 is
// the client's query, any other the resolver's answer to it.
func MessageQuery(src, dst netip.Addr, sport, dport, id uint16) Query {
	if dport == Port {
		return Query{Client: src.Unmap(), Resolver: dst.Unmap(), ClientPort: sport, ResolverPort: dport, ID: id}
	}
	return Query{Client: dst.Unmap(), Resolver: src.Unmap(), ClientPort: dport, ResolverPort: sport, ID: id}
}

type pending struct {
	name    uint64 // hash of the question name
	expires int64
}

type addrKey struct {
	owner, addr netip.Addr
}

type nameRec struct {
	name    Name
	expires int64 // answer time + TTL (capped); the grace is added on lookup
}

type entry struct {
	names [NamesPerAddr]nameRec
}

type device struct {
	addrs []netip.Addr // its keys in entries, at most PerDevice
	// pending counts its outstanding queries.
	pending int
}

// Table is the per-device record of DNS answers. It is safe for concurrent
// use by the queue workers.
type Table struct {
	sizes Sizes

	mu      sync.RWMutex
	entries map[addrKey]*entry
	devices map[netip.Addr]*device
	order   []netip.Addr // devices in the order they were added, for eviction
	queries map[Query]pending
	// expired is when outstanding queries were last expired: a device
	// past its bound sending query after query must not make every one
	// of them walk all the outstanding queries.
	expired int64
}

// New returns an empty table bounded by sizes.
func New(sizes Sizes) *Table {
	sizes.fill()
	return &Table{
		sizes:   sizes,
		entries: map[addrKey]*entry{},
		devices: map[netip.Addr]*device{},
		queries: map[Query]pending{},
	}
}

// Sizes returns the table's bounds, defaults filled in.
func (t *Table) Sizes() Sizes { return t.sizes }

// Query records that q.Client sent the query q for the name hashed as name
// at now (unix nanoseconds). It reports false when the query could not be
// kept (the device has too many outstanding): its answer will open
// nothing.
func (t *Table) Query(q Query, name uint64, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.queries[q]; ok {
		// A retransmission, or a new query reusing the tuple: the latest
		// question is the one an answer must match.
		old.name, old.expires = name, now+int64(t.sizes.QueryTimeout)
		t.queries[q] = old
		return true
	}
	d := t.device(q.Client)
	if d.pending >= t.sizes.PendingPerDevice || len(t.queries) >= t.sizes.Pending {
		if now-t.expired < int64(time.Second) {
			return false
		}
		t.expireQueries(now)
		if d.pending >= t.sizes.PendingPerDevice || len(t.queries) >= t.sizes.Pending {
			return false
		}
	}
	t.queries[q] = pending{name: name, expires: now + int64(t.sizes.QueryTimeout)}
	d.pending++
	return true
}

// Answer takes the outstanding query q answers (q is written as the query
// was: Client is the answer's destination) for the name hashed as name.
// It reports whether there was one: an answer with another identifier,
// port, resolver or name, or a second answer, answers nothing. The query
// is used up.
func (t *Table) Answer(q Query, name uint64, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.queries[q]
	if !ok || p.expires < now || p.name != name {
		return false
	}
	t.dropQuery(q)
	return true
}

// Record keeps that owner was given addr for name, valid for ttl seconds
// from now. Call it for each address of an answer Answer accepted.
func (t *Table) Record(owner, addr netip.Addr, name *Name, ttl uint32, now int64) {
	expires := now + min(int64(ttl)*int64(time.Second), int64(t.sizes.MaxTTL))
	t.mu.Lock()
	defer t.mu.Unlock()
	k := addrKey{owner: owner, addr: addr.Unmap()}
	e := t.entries[k]
	if e == nil {
		d := t.device(owner)
		if len(d.addrs) >= t.sizes.PerDevice {
			t.evictAddr(owner, d)
		}
		e = &entry{}
		t.entries[k] = e
		d.addrs = append(d.addrs, k.addr)
	}
	slot := 0
	for i := range e.names {
		r := &e.names[i]
		if r.name.Full == name.Full {
			slot = i
			break
		}
		if r.expires < e.names[slot].expires {
			slot = i
		}
	}
	e.names[slot] = nameRec{name: *name, expires: max(expires, e.names[slot].expiresIf(name.Full))}
}

// expiresIf is the record's expiry when it is for the name hashed full, 0
// otherwise.
func (r *nameRec) expiresIf(full uint64) int64 {
	if r.name.Full == full {
		return r.expires
	}
	return 0
}

// Lookup copies into out the names under which one of owners was given
// addr that are still valid at now with grace added, and returns how many.
// owners are the addresses of one device (the flow's source, and the
// device's other addresses when the policy knows it).
func (t *Table) Lookup(owners []netip.Addr, addr netip.Addr, now int64, grace time.Duration, out *[8]Name) int {
	n := 0
	addr = addr.Unmap()
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, o := range owners {
		e := t.entries[addrKey{owner: o, addr: addr}]
		if e == nil {
			continue
		}
		for i := range e.names {
			r := &e.names[i]
			if r.expires != 0 && now < r.expires+int64(grace) && n < len(out) {
				out[n] = r.name
				n++
			}
		}
	}
	return n
}

// Sweep drops what expired before now less grace, and outstanding queries
// past their timeout.
func (t *Table) Sweep(now int64, grace time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireQueries(now)
	for _, o := range append([]netip.Addr(nil), t.order...) {
		d := t.devices[o]
		kept := d.addrs[:0]
		for _, a := range d.addrs {
			k := addrKey{owner: o, addr: a}
			if t.entries[k].latest()+int64(grace) <= now {
				delete(t.entries, k)
				continue
			}
			kept = append(kept, a)
		}
		d.addrs = kept
		if len(d.addrs) == 0 && d.pending == 0 {
			t.dropDevice(o)
		}
	}
}

func (e *entry) latest() int64 {
	var l int64
	for i := range e.names {
		l = max(l, e.names[i].expires)
	}
	return l
}

// Len returns how many devices, addresses and outstanding queries the
// table holds.
func (t *Table) Len() (devices, addrs, queries int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.devices), len(t.entries), len(t.queries)
}

// device returns owner's record, making one (and evicting the oldest
// device when the table is full).
func (t *Table) device(owner netip.Addr) *device {
	if d := t.devices[owner]; d != nil {
		return d
	}
	if len(t.devices) >= t.sizes.Devices && len(t.order) > 0 {
		t.dropDevice(t.order[0])
	}
	d := &device{}
	t.devices[owner] = d
	t.order = append(t.order, owner)
	return d
}

func (t *Table) dropDevice(owner netip.Addr) {
	d := t.devices[owner]
	if d == nil {
		return
	}
	for _, a := range d.addrs {
		delete(t.entries, addrKey{owner: owner, addr: a})
	}
	for q := range t.queries {
		if q.Client == owner {
			delete(t.queries, q)
		}
	}
	delete(t.devices, owner)
	for i, o := range t.order {
		if o == owner {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
}

// evictAddr drops owner's entry that expires first.
func (t *Table) evictAddr(owner netip.Addr, d *device) {
	victim := 0
	for i, a := range d.addrs {
		if t.entries[addrKey{owner, a}].latest() < t.entries[addrKey{owner, d.addrs[victim]}].latest() {
			victim = i
		}
	}
	delete(t.entries, addrKey{owner, d.addrs[victim]})
	d.addrs = append(d.addrs[:victim], d.addrs[victim+1:]...)
}

func (t *Table) dropQuery(q Query) {
	delete(t.queries, q)
	if d := t.devices[q.Client]; d != nil && d.pending > 0 {
		d.pending--
	}
}

func (t *Table) expireQueries(now int64) {
	t.expired = now
	for q, p := range t.queries {
		if p.expires < now {
			t.dropQuery(q)
		}
	}
}
