package engine

import (
	"net/netip"
	"sync"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Query is one flow described by its tuple rather than by a packet: a
// hypothetical one (explain), or one the kernel tracks and fast-paths (the
// daemon judging conntrack entries again).
type Query struct {
	From, To netip.Addr
	// FromMAC is the sender's hardware address, when known.
	FromMAC *[6]byte
	Proto   uint8
	DPort   uint16
	// Size is the first packet's IP length (default 60).
	Size uint16
	At   time.Time
	// InIface and OutIface name the interfaces, when known.
	InIface, OutIface string
	// Existing asks about a flow that is already running (the daemon
	// judging a conntrack entry again), not a new one: a new-flow rate
	// does not apply to it.
	Existing bool
}

// queryScratch is what judging a query needs besides the query: the
// engine keeps one, so that enforcement's passes over the kernel's flows
// allocate nothing per flow.
type queryScratch struct {
	mu sync.Mutex
	w  Worker
	p  packet.Packet
}

// Judge decides the flow q describes as the pipeline decides its first
// packet at q.At, and changes nothing: no flow is stored, no counter or
// budget moves, no event is raised. In monitor mode a drop is answered as
// Accept with WouldDrop. It is the verdict enforcement applies to flows the
// kernel fast-paths (re-judging conntrack entries after a reload, as time
// windows close, for byte budgets), and it allocates nothing. It is safe
// for concurrent use: concurrent calls take turns.
func (e *Engine) Judge(q Query) Decision {
	return e.judge(e.cur.Load(), q)
}

// judge is Judge under generation g.
func (e *Engine) judge(g *generation, q Query) Decision {
	s := &e.queries
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.w.query(g, q, &s.p)
	// The scratch must not hold a replaced policy alive until the next
	// query.
	s.w.ctx.Policy, s.w.ctx.gen = nil, nil
	return d
}

// query judges q dry, with p as the scratch for its first packet.
func (w *Worker) query(g *generation, q Query, p *packet.Packet) Decision {
	q.firstPacket(p)
	w.e.senderMAC(g.policy, p)
	how := opening
	if q.Existing {
		how = existingFlow
	}
	return w.decide(g, p, q.At.UnixNano(), q.meta(g.policy), how)
}

// decide judges p dry, as how says: the stages of the verdict path, with
// nothing stored and nothing counted. Explain and Judge both come here; the
// only difference is w.trace.
func (w *Worker) decide(g *generation, p *packet.Packet, now int64, m Meta, how judging) Decision {
	if d, ok := decodeDecision(p); ok {
		return d
	}
	// No flow is behind a dry judgement: it starts from an empty state,
	// whatever the previous query left.
	w.st = flow.State{}
	d, _ := w.run(g, p, now, m, how|dryRun)
	if d.Verdict == Drop && g.policy.Mode == config.ModeMonitor {
		d.Verdict, d.WouldDrop = Accept, true
	}
	return d
}

// firstPacket writes the first packet of q's flow into p: a SYN, an echo
// request, from q.From.
func (q *Query) firstPacket(p *packet.Packet) {
	*p = packet.Packet{Kind: packet.KindOK, Src: q.From.Unmap(), Dst: q.To.Unmap(), Proto: q.Proto, Length: q.Size}
	if p.Length == 0 {
		p.Length = 60
	}
	if q.Proto == packet.ProtoTCP || q.Proto == packet.ProtoUDP {
		p.DstPort, p.SrcPort = q.DPort, 40000
	}
	// An ICMP flow is opened by a query (conntrack tracks no other): a
	// hypothetical or re-judged one is an echo request, as the gateway's
	// default ping service expects.
	switch q.Proto {
	case packet.ProtoTCP:
		p.TCPFlags = packet.TCPSyn
	case packet.ProtoICMP:
		p.ICMPType = 8
	case packet.ProtoICMPv6:
		p.ICMPType = 128
	}
	if q.FromMAC != nil {
		p.HasMAC, p.SrcMAC = true, *q.FromMAC
	}
}

// meta is what q says of its interfaces, as zones of pol.
func (q *Query) meta(pol *policy.Policy) Meta {
	m := NoMeta
	if q.InIface != "" {
		m.InZone = pol.ZoneOfInterface(q.InIface)
	}
	if q.OutIface != "" {
		m.OutZone = pol.ZoneOfInterface(q.OutIface)
	}
	return m
}
