package spa

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Grant is one service opened for one source under one rule.
type Grant struct {
	Src   netip.Addr
	Rule  string
	Proto uint8
	Port  uint16
	// Key and User are who asked: the key's name and the message's user.
	Key, User string
	// Until ends the window in which new connections may open (unix
	// nanoseconds).
	Until int64
}

type grantKey struct {
	src   netip.Addr
	rule  string
	proto uint8
	port  uint16
}

// DefaultGrantCapacity bounds the grant table.
const DefaultGrantCapacity = 4096

// keepAfter is how long an expired grant is remembered as having been
// given: a connection opened in its window and judged again later (a
// policy reload) belongs to a source that did knock.
const keepAfter = 24 * time.Hour

// Grants is the table of open grants, keyed by source address, rule name
// and service. Rules are named, not numbered: a grant survives a policy
// reload for as long as a rule of that name exists. It is safe for
// concurrent use.
type Grants struct {
	mu       sync.RWMutex
	m        map[grantKey]Grant
	capacity int
}

// NewGrants returns an empty table of at most capacity grants (0 means
// DefaultGrantCapacity).
func NewGrants(capacity int) *Grants {
	if capacity <= 0 {
		capacity = DefaultGrantCapacity
	}
	return &Grants{m: map[grantKey]Grant{}, capacity: capacity}
}

// Open adds or extends g. It reports false when the table is full of
// grants that are still open.
func (t *Grants) Open(g Grant, now int64) bool {
	g.Src = g.Src.Unmap()
	k := grantKey{g.Src, g.Rule, g.Proto, g.Port}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[k]; !ok && len(t.m) >= t.capacity {
		// Forget the grants whose window closed before refusing a new one.
		t.sweepLocked(now, 0)
		if len(t.m) >= t.capacity {
			return false
		}
	}
	t.m[k] = g
	return true
}

// Lookup returns src's grant of the service under rule, open or closed
// within the last day. It takes a read lock and allocates nothing.
func (t *Grants) Lookup(src netip.Addr, rule string, proto uint8, port uint16) (Grant, bool) {
	t.mu.RLock()
	g, ok := t.m[grantKey{src.Unmap(), rule, proto, port}]
	t.mu.RUnlock()
	return g, ok
}

// Live reports whether src holds an open grant for the service under rule
// at now.
func (t *Grants) Live(src netip.Addr, rule string, proto uint8, port uint16, now int64) bool {
	g, ok := t.Lookup(src, rule, proto, port)
	return ok && now < g.Until
}

// Given reports whether src was granted the service under rule, open or
// closed within the last day.
func (t *Grants) Given(src netip.Addr, rule string, proto uint8, port uint16) bool {
	_, ok := t.Lookup(src, rule, proto, port)
	return ok
}

// List returns the grants open at now, by source and rule.
func (t *Grants) List(now int64) []Grant {
	t.mu.RLock()
	var out []Grant
	for _, g := range t.m {
		if now < g.Until {
			out = append(out, g)
		}
	}
	t.mu.RUnlock()
	// sort.Slice, not slices.SortFunc: the binary already holds it, and a
	// generic sort of Grant would add its own copy of the sort.
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if c := a.Src.Compare(b.Src); c != 0 {
			return c < 0
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Port < b.Port
	})
	return out
}

// Sweep forgets grants closed for more than a day.
func (t *Grants) Sweep(now int64) {
	t.mu.Lock()
	t.sweepLocked(now, int64(keepAfter))
	t.mu.Unlock()
}

func (t *Grants) sweepLocked(now, after int64) {
	for k, g := range t.m {
		if now >= g.Until+after {
			delete(t.m, k)
		}
	}
}
