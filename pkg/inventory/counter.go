package inventory

import (
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
)

// IdentifyFunc tells a Counter who owns a flow's address: ok is false for an
// address that is not a device of the guarded networks (a server on the
// internet, the gateway itself). The Counter fills in the Observation's
// Addr, Time, Up, Down and NewFlow; identify fills in the rest (MAC when it
// knows it, Name, Zone, Groups).
type IdentifyFunc func(addr netip.Addr) (o Observation, ok bool)

// Counter turns successive conntrack dumps into per-device byte counts. The
// kernel's counters only grow for the life of a flow, so the Counter keeps
// each flow's last counts and observes the difference. It is not safe for
// concurrent use: one goroutine polls conntrack and calls Apply.
type Counter struct {
	inv   *Inventory
	moved *conntrack.Tracker
	// primed is set once a first dump gave the baseline.
	primed bool
	st     ApplyStats // of the dump under way
	// Sent, when set, is told of each device (by the address it used)
	// that sent bytes in flow f since the previous dump.
	Sent func(f *conntrack.Flow, addr netip.Addr, now time.Time)
}

// ApplyStats says what one Apply did.
type ApplyStats struct {
	// Flows is the number of flows in the dump, New how many of them were
	// not in the previous one, Vanished how many of the previous one are
	// gone, Resets how many had a counter lower than before (counters
	// zeroed by someone else, or an id reused).
	Flows, New, Vanished, Resets int
	// Observed counts the observations made, Up and Down their bytes.
	Observed int
	Up, Down uint64
}

// NewCounter returns a Counter feeding inv.
func NewCounter(inv *Inventory) *Counter {
	return &Counter{inv: inv, moved: conntrack.NewTracker()}
}

// Apply takes one dump of the conntrack table, taken at now.
//
// For each flow it computes the bytes moved since the previous dump in the
// original direction (from the flow's source) and in the reply direction.
// A flow not in the previous dump counts from zero and counts as a new
// flow; a counter lower than before counts from zero again. Flows missing
// from the dump are forgotten. A flow is taken as it was judged, after
// destination NAT (conntrack.Flow.Judged). The bytes are observed for the
// flow's source when identify accepts it (Up = original, Down = reply),
// else for its destination when identify accepts that (Up = reply, Down =
// original), else not at all. Flows that moved nothing and are not new are not
// observed, so LastSeen means the device moved traffic.
//
// The first dump only sets the baseline: the bytes flows moved before the
// Counter existed are not attributed (after a restart, the previous run
// counted them). Without conntrack accounting every counter reads 0 and
// only new flows are observed.
func (c *Counter) Apply(flows []conntrack.Flow, now time.Time, identify IdentifyFunc) ApplyStats {
	c.Begin()
	for i := range flows {
		c.Flow(&flows[i], now, identify)
	}
	return c.End()
}

// Begin starts taking a dump one flow at a time (Flow), so that a large
// table is never held in memory at once; End finishes it. Apply is Begin,
// Flow for each flow, End.
func (c *Counter) Begin() {
	c.moved.Begin()
	c.st = ApplyStats{}
}

// Flow takes one flow of the dump under way (see Apply).
func (c *Counter) Flow(f *conntrack.Flow, now time.Time, identify IdentifyFunc) {
	st := &c.st
	st.Flows++
	m := c.moved.Flow(f)
	if !c.primed {
		return
	}
	if m.New {
		st.New++
	} else if m.Reset {
		st.Resets++
	}
	orig, reply := m.Orig, m.Reply
	if orig == 0 && reply == 0 && !m.New {
		return
	}
	// As the queue saw the flow: a port forward's bytes belong to the LAN
	// host it forwards to, not to the gateway address it was sent to.
	src, dst, _ := f.Judged()
	o, ok := identify(src)
	if ok {
		o.Addr, o.Up, o.Down = src, orig, reply
	} else if o, ok = identify(dst); ok {
		o.Addr, o.Up, o.Down = dst, reply, orig
	} else {
		return
	}
	o.Time = now
	if m.New {
		o.Flows = 1
	}
	if o.Up > 0 && c.Sent != nil {
		c.Sent(f, o.Addr, now)
	}
	c.inv.Observe(o)
	st.Observed++
	st.Up += o.Up
	st.Down += o.Down
}

// End finishes the dump under way and says what it did.
func (c *Counter) End() ApplyStats {
	st := c.st
	st.Vanished = c.moved.End()
	c.primed = true
	return st
}
