package engine

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// fanOut is what one device's slot remembers for its rule's fan-out bound:
// the distinct peers it opened flows to (max_peers) and the distinct peer
// and port pairs (max_ports), each with when it was last opened, forgotten
// once older than the rule's fanout_window.
//
// Both lists have a fixed capacity, set when the slot first needs them and
// kept when the slot is reused, so judging a flow allocates nothing after
// that: max_peers entries for the peers; max_peers × max_ports for the
// pairs, which the peer bound can never overfill; with max_ports alone,
// fanOutPairsAlone × max_ports pairs (up to config.MaxFanOutEntries). A
// device that fills that many live pairs in a window is refused new ones
// (ReasonFanOutPorts): a full table never means "not counted".
type fanOut struct {
	peers []fanPeer
	pairs []fanPair
}

type fanPeer struct {
	addr [16]byte
	seen int64
}

type fanPair struct {
	addr [16]byte
	port uint16
	seen int64
}

// fanOutPairsAlone is how many peers' worth of ports a slot follows for a
// rule with max_ports but no max_peers.
const fanOutPairsAlone = 16

func pairCapacity(r *policy.Rule) int {
	if r.FanPeers > 0 {
		return r.FanPeers * r.FanPorts
	}
	return min(fanOutPairsAlone*r.FanPorts, config.MaxFanOutEntries)
}

// size gives f the capacity r needs, keeping the lists it has when they are
// large enough.
func (f *fanOut) size(r *policy.Rule) {
	if r.FanPeers > 0 && cap(f.peers) < r.FanPeers {
		f.peers = make([]fanPeer, 0, r.FanPeers)
	}
	if n := pairCapacity(r); r.FanPorts > 0 && cap(f.pairs) < n {
		f.pairs = make([]fanPair, 0, n)
	}
}

// reset forgets every peer and pair, keeping the capacity.
func (f *fanOut) reset() {
	f.peers, f.pairs = f.peers[:0], f.pairs[:0]
}

// clone copies f into lists of its own.
func (f *fanOut) clone() fanOut {
	return fanOut{peers: append(make([]fanPeer, 0, cap(f.peers)), f.peers...), pairs: append(make([]fanPair, 0, cap(f.pairs)), f.pairs...)}
}

// admit decides whether a new flow to peer:port keeps rule r's fan-out
// bound, and unless dry records it. It returns ReasonNone to admit.
//
// A flow to a peer (and port) reached within the window is always
// admitted: the bound is on how many distinct ones, not on how many flows
// (the new-flow rate bounds those). A refused flow is not recorded, so a
// device that keeps probing stays at its bound and is refused again.
func (f *fanOut) admit(r *policy.Rule, peer netip.Addr, port uint16, now int64, dry bool) Reason {
	f.size(r)
	f.expire(now - int64(r.FanWindow))
	addr := peer.As16()
	pi := -1
	for i := range f.peers {
		if f.peers[i].addr == addr {
			pi = i
			break
		}
	}
	if r.FanPeers > 0 && pi < 0 && len(f.peers) >= r.FanPeers {
		return ReasonFanOutPeers
	}
	qi, onPeer := -1, 0
	for i := range f.pairs {
		if f.pairs[i].addr != addr {
			continue
		}
		onPeer++
		if f.pairs[i].port == port {
			qi = i
		}
	}
	if r.FanPorts > 0 && qi < 0 && (onPeer >= r.FanPorts || len(f.pairs) >= cap(f.pairs)) {
		return ReasonFanOutPorts
	}
	if dry {
		return ReasonNone
	}
	switch {
	case r.FanPeers == 0:
	case pi >= 0:
		f.peers[pi].seen = now
	default:
		f.peers = append(f.peers, fanPeer{addr: addr, seen: now})
	}
	switch {
	case r.FanPorts == 0:
	case qi >= 0:
		f.pairs[qi].seen = now
	default:
		f.pairs = append(f.pairs, fanPair{addr: addr, port: port, seen: now})
	}
	return ReasonNone
}

// expire forgets the peers and pairs last opened before since, in place.
func (f *fanOut) expire(since int64) {
	peers := f.peers[:0]
	for _, p := range f.peers {
		if p.seen >= since {
			peers = append(peers, p)
		}
	}
	pairs := f.pairs[:0]
	for _, p := range f.pairs {
		if p.seen >= since {
			pairs = append(pairs, p)
		}
	}
	f.peers, f.pairs = peers, pairs
}

// fanOutAdmit decides whether a new flow of owner o to peer:port keeps
// rule ri's fan-out bound, in the owner's slot of the budget table (the
// same slots, owners and bounds on memory as the byte budgets and rates).
func (t *budgetTable) fanOutAdmit(ri int32, r *policy.Rule, o budgetOwner, peer netip.Addr, port uint16, now int64, dry bool) Reason {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.find(ri, o)
	if !ok {
		if dry {
			return ReasonNone
		}
		if i = t.open(ri, o, now); i < 0 {
			return ReasonStateFull
		}
	}
	b := &t.slots[i]
	if !dry {
		b.last = now
	}
	return b.fan.admit(r, peer, port, now, dry)
}

// checkFanOut holds a new flow to its rule's fan-out bound: the distinct
// peers, and ports on one peer, its device opened flows to under the rule
// within the window. Flows judged again after a reload are not new.
func checkFanOut(c *Context, r *policy.Rule) Result {
	if (r.FanPeers == 0 && r.FanPorts == 0) || c.Existing {
		return Result{}
	}
	c.owner = ownerOf(c.Src.Device, c.Src.Addr)
	reason := c.gen.budgets.fanOutAdmit(c.Rule, r, c.owner, c.Dst.Addr.Unmap(), c.DPort, c.Now, c.DryRun)
	switch reason {
	case ReasonNone:
		return Result{}
	case ReasonStateFull:
		return Result{Verdict: Drop, Rule: c.Rule, Reason: reason, Event: EventDeny}
	}
	return Result{Verdict: Drop, Rule: c.Rule, Reason: reason, Event: EventFanOut}
}
