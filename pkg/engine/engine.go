package engine

import (
	"net/netip"
	"sync/atomic"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Options configures an Engine.
type Options struct {
	// FlowCapacity bounds the flow table (default 65536).
	FlowCapacity int
	// TTLs are the flow table's idle timeouts (default flow.DefaultTTLs).
	TTLs *flow.TTLs
	// BudgetCapacity bounds how many byte budgets and new-flow rates of
	// sources that are no device of the policy are kept (default 65536);
	// the policy's own devices always have theirs.
	BudgetCapacity int
	// Inspect is how many packets a flow under size or byte bounds is
	// judged in userspace before it is let onto the fast path (default 3).
	Inspect uint32
	// Sink receives events (default: discarded).
	Sink Sink
	// SPA configures single packet authorization.
	SPA SPAOptions
	// InspectFlows bounds the flows whose application is being identified
	// at once (default DefaultInspectFlows); AppPackets is how many
	// packets one may take (default DefaultAppPackets).
	InspectFlows int
	AppPackets   uint32
	// Names bounds the table of names DNS answers gave devices.
	Names dnsnames.Sizes
}

// Engine judges packets against the current policy. It is safe for
// concurrent use: packets through one Worker per goroutine, queries
// (Judge, Volume, Explain) from any goroutine.
type Engine struct {
	cur     atomic.Pointer[generation]
	flows   *flow.Table
	sink    Sink
	stages  []Stage
	inspect uint32
	budgets int
	stats   Stats
	// queries is the scratch of Judge.
	queries queryScratch
	// senders tells Judge the MAC of devices their address does not name.
	senders senderTable
	spa     *spaState
	// apps holds the flows under application inspection.
	apps *appState
	// names are the addresses DNS answers gave each device (dns.go); they
	// outlive policies.
	names *dnsnames.Table
}

// generation is a policy together with the state that belongs to it.
// Reloading builds a new generation and swaps it in; flows judged by an
// older one are judged again on their next packet.
type generation struct {
	policy  *policy.Policy
	id      uint32
	budgets *budgetTable
	// bindings tie devices known only by address to the bridge port and
	// MAC they were first seen on.
	bindings *bindingTable
	mins     []minWatch // by rule; nil map when the rule has no lower bound
	// segmentNames are the segments' names, made once: an event of a
	// segment denial must not build its rule name per packet.
	segmentNames []string
	// apps is the engine's application state (app.go).
	apps *appState
	// names is the engine's names table, for "dns:" destinations.
	names *dnsnames.Table
}

// Stats are the engine's counters. Every field is safe to read while the
// engine runs.
type Stats struct {
	Packets     atomic.Uint64
	CacheHits   atomic.Uint64
	NewFlows    atomic.Uint64
	Undecodable atomic.Uint64
	NotIP       atomic.Uint64
	Events      atomic.Uint64
	// Verdicts counts final verdicts per deciding layer (index Layer) and
	// verdict (index Verdict).
	Verdicts [len(layerNames)][len(verdictNames)]atomic.Uint64
	// Flows counts new flows per deciding layer and verdict.
	Flows [len(layerNames)][len(verdictNames)]atomic.Uint64
}

// New returns an engine judging with pol.
func New(pol *policy.Policy, opts Options) *Engine {
	if opts.FlowCapacity <= 0 {
		opts.FlowCapacity = 65536
	}
	ttl := flow.DefaultTTLs()
	if opts.TTLs != nil {
		ttl = *opts.TTLs
	}
	if opts.BudgetCapacity <= 0 {
		opts.BudgetCapacity = 65536
	}
	if opts.Inspect == 0 {
		opts.Inspect = 3
	}
	if opts.Sink == nil {
		opts.Sink = discard{}
	}
	e := &Engine{
		flows:   flow.New(opts.FlowCapacity, ttl),
		sink:    opts.Sink,
		stages:  pipeline(),
		inspect: opts.Inspect,
		budgets: opts.BudgetCapacity,
		spa:     newSPAState(opts.SPA),
		apps:    newAppState(&opts),
		names:   dnsnames.New(opts.Names),
	}
	e.queries.w.e = e
	e.Swap(pol, 0)
	return e
}

// Swap makes pol the policy for every packet judged from now on, and
// returns the new generation number. Flows judged before are judged again
// on their next packet; their counters are kept, and so are the byte
// budgets and new-flow rates of rules that keep their name and bounds. now starts the periods of
// lower volume bounds (unix nanoseconds; zero means "at first sweep").
func (e *Engine) Swap(pol *policy.Policy, now int64) uint32 {
	var id uint32 = 1
	g := &generation{policy: pol, budgets: newBudgetTable(e.budgets, pol.Rules), bindings: newBindingTable(pol), mins: make([]minWatch, len(pol.Rules))}
	if old := e.cur.Load(); old != nil {
		id = old.id + 1
		g.budgets.carryOver(old.budgets, old.policy, pol)
		g.bindings.carryOver(old.bindings, old.policy, pol)
	}
	g.id = id
	e.senders.fit(pol)
	g.apps = e.apps
	g.names = e.names
	for i := range pol.Segments {
		g.segmentNames = append(g.segmentNames, pol.Segments[i].Name())
	}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if r.MinDevice == 0 {
			continue
		}
		g.mins[i].byDevice = map[int32]*minCounter{}
		for _, d := range r.MinSubjects {
			if g.mins[i].byDevice[d] != nil {
				continue
			}
			c := &minCounter{device: d}
			c.windowStart.Store(now)
			g.mins[i].byDevice[d] = c
			g.mins[i].ordered = append(g.mins[i].ordered, c)
		}
	}
	e.cur.Store(g)
	return id
}

// Policy returns the policy in force.
func (e *Engine) Policy() *policy.Policy { return e.cur.Load().policy }

// Generation returns the number of the policy in force.
func (e *Engine) Generation() uint32 { return e.cur.Load().id }

// Flows returns the flow table.
func (e *Engine) Flows() *flow.Table { return e.flows }

// Stats returns the engine's live counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Decision is the pipeline's answer for one packet.
type Decision struct {
	Verdict Verdict
	Layer   Layer
	Reason  Reason
	// Rule indexes Policy.Segments when Layer is LayerSegment, and
	// Policy.Rules for micro and pico; policy.None for a default.
	Rule int32
	// WouldDrop is set in monitor mode when the verdict would have been
	// Drop: Verdict is then Accept.
	WouldDrop bool
	// NewFlow is set when this packet started (or restarted) a flow's
	// judgement; Cached when the flow table answered.
	NewFlow, Cached bool
	// SrcDevice and DstDevice index Policy.Devices, policy.None when
	// unknown.
	SrcDevice, DstDevice int32
	// Class is the pico class an accepted flow is marked with, so that the
	// kernel holds its fast path to the class's checks.
	Class uint16
	// Reply is set when the packet travels from the flow's responder to
	// its opener. SrcDevice is always the opener's: a flow is credited to
	// the side that opened it.
	Reply bool
	// PacketOnly is set when the verdict is this packet's alone and must
	// not reach its flow's conntrack entry: a denied SYN on an established
	// connection's tuple is dropped without cutting the connection.
	PacketOnly bool
	// Related is set for an ICMP error, judged by the flow it quotes. It
	// is no flow of its own: nothing of its verdict is to be recorded (in
	// the kernel, its conntrack entry is the quoted flow's).
	Related bool
}

// RuleName names the deciding rule in pol, "" for a default.
func (d *Decision) RuleName(pol *policy.Policy) string {
	return ruleName(pol, d.Layer, d.Rule)
}

func ruleName(pol *policy.Policy, l Layer, r int32) string {
	if r < 0 {
		return ""
	}
	switch l {
	case LayerSegment:
		if int(r) < len(pol.Segments) {
			return pol.Segments[r].Name()
		}
	case LayerMicro, LayerPico:
		if int(r) < len(pol.Rules) {
			return pol.Rules[r].Name
		}
	}
	return ""
}

// ruleName is ruleName for the generation's policy, without building a
// segment's name.
func (g *generation) ruleName(l Layer, r int32) string {
	if l == LayerSegment && r >= 0 && int(r) < len(g.segmentNames) {
		return g.segmentNames[r]
	}
	return ruleName(g.policy, l, r)
}

// Meta is what the caller knows about a packet besides its bytes.
type Meta struct {
	// InZone and OutZone are the zones of the ingress and egress
	// interfaces (Policy.ZoneOfInterface), policy.None when unknown.
	InZone, OutZone int32
	// Merged is set when the kernel merged several segments into this one
	// packet (GRO): its length is theirs together, so it is held to a
	// rule's smallest size but not to its largest.
	Merged bool
	// Tripped is set when the kernel queued this packet of a fast-pathed
	// flow because the flow broke its class's byte bound.
	Tripped bool
	// InPort is the interface index of the bridge port the packet came in
	// on, when the kernel tells it (bridged with br_netfilter); 0 when
	// unknown. Devices known only by address are bound to it.
	InPort uint32
	// IP is the packet's bytes from its IP header, when the caller has
	// them (the queue): an SPA packet's payload is read from it.
	IP []byte
}

// NoMeta is the Meta of a packet whose interfaces are unknown (captures,
// explain).
var NoMeta = Meta{InZone: policy.None, OutZone: policy.None}

// Worker judges packets for one goroutine. It is not safe for concurrent
// use; make one per queue.
type Worker struct {
	e   *Engine
	ctx Context
	st  flow.State
	// quoted is the packet an ICMP error quotes, decoded into here so
	// that judging the error allocates nothing.
	quoted packet.Packet
	// trace, when set, receives every stage's answer (explain).
	trace *[]Step
	// dns is the DNS message being read (dns.go).
	dns appid.DNSMessage
	// memo remembers the policy's recent answers (memo.go).
	memo memo
}

// NewWorker returns a Worker of e.
func (e *Engine) NewWorker() *Worker { return &Worker{e: e} }

// Judge decides one decoded packet seen at now (unix nanoseconds).
func (w *Worker) Judge(p *packet.Packet, now int64, m Meta) Decision {
	e := w.e
	e.stats.Packets.Add(1)
	if p.Kind != packet.KindOK && p.Kind != packet.KindTunnel {
		return w.undecodable(p, now)
	}
	g := e.cur.Load()
	if role, _ := packet.ICMPRoleOf(p.Proto, p.ICMPType); role == packet.ICMPError {
		return w.quotedFlow(g, p, now, m)
	}
	if d, ok := w.knock(g, p, now, m); ok {
		return d
	}
	key, fromA := flow.KeyOf(p)
	st := &w.st
	var d Decision
	switch {
	case !e.flows.Observe(key, now, p.Length, fromA, p.TCPFlags, st):
		d = w.open(g, key, fromA, p, now, m)
	case opensAnew(p, fromA, st):
		d = w.reopen(g, key, fromA, p, now, m)
	case awaitsGrant(st):
		d = w.open(g, key, fromA, p, now, m)
	case st.Gen == g.id:
		e.stats.CacheHits.Add(1)
		d = w.cached(g, key, p, now, m)
	default:
		// Judged by an older policy: judge again, keep the counters. The
		// packet may be a reply: judge the flow as its opener opened it.
		how := existingFlow
		if fromA != st.FromA {
			how |= asReply
		}
		d = w.evaluate(g, p, now, m, fromA, how)
		e.flows.Update(key, st)
	}
	d.Reply = fromA != st.FromA
	return w.observeDNS(g, p, now, d)
}

// undecodable answers a packet that cannot be judged on its headers.
func (w *Worker) undecodable(p *packet.Packet, now int64) Decision {
	d, _ := decodeDecision(p)
	if p.Kind == packet.KindNotIP {
		w.e.stats.NotIP.Add(1)
		return w.finish(d, p, now, noEvent)
	}
	w.e.stats.Undecodable.Add(1)
	return w.finish(d, p, now, EventUndecodable)
}

// open judges the first packet of a flow and stores the flow.
func (w *Worker) open(g *generation, key flow.Key, fromA bool, p *packet.Packet, now int64, m Meta) Decision {
	st := &w.st
	*st = flow.State{}
	opened := flow.OpenedFirst
	var d Decision
	if role, _ := packet.ICMPRoleOf(p.Proto, p.ICMPType); role == packet.ICMPReply {
		// A reply whose request was not seen answers its receiver's
		// query: it belongs to the receiver's flow and is judged as such.
		// It opens nothing, so it is no new flow for the rate either.
		opened = flow.OpenedMidStream
		d = w.evaluate(g, p, now, m, fromA, asReply|existingFlow)
	} else {
		d = w.evaluate(g, p, now, m, fromA, opening)
		if p.Proto == packet.ProtoTCP {
			opened = flow.OpenedMidStream
			if p.TCPFlags&(packet.TCPSyn|packet.TCPAck) == packet.TCPSyn {
				opened = flow.OpenedSYN
			}
		}
	}
	st.Opened = opened
	w.e.flows.Insert(key, now, p.Length, p.TCPFlags, st)
	return d
}

// reopen judges a packet that opens a new connection on a known tuple, as
// opened by its sender. On a flow that was picked up mid-stream or is
// closing, its judgement replaces whatever the tuple had (a denial
// included). On a connection that opened with its own handshake and is
// not closing, a denied opening is dropped alone and the connection keeps
// its judgement: conntrack checks no sequence numbers on a SYN, so
// otherwise anyone who knows a connection's ports could cut it with one
// forged SYN, where TCP itself asks for a reset inside the window.
func (w *Worker) reopen(g *generation, key flow.Key, fromA bool, p *packet.Packet, now int64, m Meta) Decision {
	st := &w.st
	if st.Opened != flow.OpenedSYN || st.Phase == flow.PhaseClosing {
		return w.open(g, key, fromA, p, now, m)
	}
	kept := *st
	*st = flow.State{}
	d := w.evaluate(g, p, now, m, fromA, opening)
	if d.Verdict == Drop || d.WouldDrop {
		*st = kept
		d.PacketOnly = true
		return d
	}
	st.Opened = flow.OpenedSYN
	w.e.flows.Insert(key, now, p.Length, p.TCPFlags, st)
	return d
}

// opensAnew reports whether p, a packet of the known flow st, opens a new
// connection rather than continuing the one st was judged for. A verdict
// belongs to the side that opened the flow, the way it opened it:
//
//   - a SYN without ACK from the responder opens a connection the other
//     way (a plug answering a LAN host's connection cannot use its accept
//     to open one of its own to that host on the same ports);
//   - any SYN on a flow that was picked up mid-stream, or whose first
//     packet was no SYN, or that is closing (FIN or RST seen) starts a new
//     connection: a mid-stream packet accepted as a reply (a lone ACK)
//     vouches for nothing, and neither does a connection that ended;
//   - a SYN without ACK from the opener of a flow it opened with a SYN is
//     a retransmission, and a SYN with ACK is the handshake's answer: both
//     stay with the flow.
//
// ICMP queries need nothing here: their key has a direction (flow.KeyOf).
func opensAnew(p *packet.Packet, fromA bool, st *flow.State) bool {
	if p.Proto != packet.ProtoTCP || p.TCPFlags&packet.TCPSyn == 0 {
		return false
	}
	if st.Opened != flow.OpenedSYN || st.Phase == flow.PhaseClosing {
		return true
	}
	return p.TCPFlags&packet.TCPAck == 0 && fromA != st.FromA
}

// decodeDecision decides packets that cannot be judged on their headers,
// and reports false for those the stages should judge.
func decodeDecision(p *packet.Packet) (Decision, bool) {
	d := Decision{Verdict: Drop, Layer: LayerDecode, Rule: policy.None, SrcDevice: policy.None, DstDevice: policy.None}
	switch p.Kind {
	case packet.KindOK, packet.KindTunnel:
		// A tunnel is judged on its outer header only: a rule must permit
		// the tunnel protocol itself to the tunnel's endpoint.
		return d, false
	case packet.KindNotIP:
		d.Verdict, d.Reason = Accept, ReasonNotIP
	case packet.KindFragment:
		// Only the first fragment carries ports, and overlapping fragments
		// can rewrite them after the verdict: never judge fragments. (On
		// the kernel path conntrack reassembles before the queue.)
		d.Reason = ReasonFragment
	case packet.KindTruncated:
		d.Reason = ReasonTruncated
	default:
		d.Reason = ReasonMalformed
	}
	return d, true
}

// evaluate runs the stages for a flow's first packet (or a flow judged by
// an older policy) and records the judgement in w.st. how says whether the
// packet is judged as a reply and whether the flow existed before (then it
// is no new flow for the new-flow rate); the verdict path never runs dry.
func (w *Worker) evaluate(g *generation, p *packet.Packet, now int64, m Meta, fromA bool, how judging) Decision {
	e := w.e
	e.stats.NewFlows.Add(1)
	// The new judgement starts from nothing: a field left from an older
	// one (a time window's end, a budget slot) would be applied under a
	// rule that never set it.
	w.st.Judgement = flow.Judgement{}
	d, res := w.run(g, p, now, m, how)
	reversed := how&asReply != 0
	// A TCP packet without SYN that opens no flow we know is a flow picked
	// up mid-stream (a capture that started late, a daemon restart). If its
	// reverse direction is allowed it is the reply of an allowed flow.
	// Accepting it opens nothing: a TCP peer only opens on a SYN.
	// A flow judged again keeps its opener: the reverse is tried only for
	// a flow never judged, or a reload could hand a flow to the other side.
	if how == opening && d.Verdict == Drop && d.Layer > LayerIdentify && p.Proto == packet.ProtoTCP && p.TCPFlags&packet.TCPSyn == 0 {
		// The connection exists already, so it is no new flow either.
		if rd, rres := w.run(g, p, now, m, asReply|existingFlow); rd.Verdict != Drop {
			d, res, reversed = rd, rres, true
		}
	}
	if d.Verdict != Drop && d.Layer == LayerPico {
		if trippedOver(&g.policy.Rules[d.Rule], m) {
			// A flow judged afresh (after a restart) that the kernel
			// already caught over its bound.
			d.Verdict, d.Reason, res.Event = Drop, ReasonFlowBytes, EventVolume
		}
	}
	w.record(g, d, p.Length, now, fromA != reversed)
	w.recordSender(g, d, p, now, reversed)
	d.NewFlow = true
	e.stats.Flows[d.Layer][d.Verdict].Add(1)
	ev := noEvent
	if d.Verdict == Drop {
		ev = denial(res.Event)
	}
	return w.finish(d, p, now, ev)
}

// record keeps decision d in w.st as the flow's judgement under g: its
// opener (fromA: the side the flow belongs to), and the budget slot an
// accepted flow's bytes are charged to, charged with this packet's length.
func (w *Worker) record(g *generation, d Decision, length uint16, now int64, fromA bool) {
	st := &w.st
	st.Gen = g.id
	st.Verdict, st.Layer, st.Reason, st.Rule = uint8(d.Verdict), uint8(d.Layer), uint8(d.Reason), d.Rule
	st.FromA = fromA
	st.SrcDevice, st.DstDevice = d.SrcDevice, d.DstDevice
	st.Budget = -1
	if (d.Verdict == Accept || d.Verdict == NeedMore) && d.Layer == LayerPico {
		if r := &g.policy.Rules[d.Rule]; r.MaxDevice > 0 {
			st.Budget = g.budgets.handle(d.Rule, w.ctx.owner)
			if st.Budget >= 0 {
				g.budgets.add(st.Budget, r, uint64(length), now)
			}
		}
	}
}

// run takes a packet through the stages, judged as how says. When w.trace
// is set (explain) every stage's answer is appended to it.
func (w *Worker) run(g *generation, p *packet.Packet, now int64, m Meta, how judging) (Decision, Result) {
	c := w.begin(g, p, now, m, how)
	for _, s := range w.e.stages {
		res := s.Evaluate(c)
		if w.trace != nil {
			*w.trace = append(*w.trace, Step{Stage: s.Name(), Layer: s.Layer(), Result: res})
		}
		if res.Verdict != Continue {
			d := Decision{Verdict: res.Verdict, Layer: s.Layer(), Reason: res.Reason, Rule: res.Rule, SrcDevice: c.Src.Device, DstDevice: c.Dst.Device}
			if d.Verdict != Drop && d.Layer == LayerPico {
				// The class carries the rule's kernel checks.
				d.Class = g.policy.Rules[d.Rule].Class
			}
			return d, res
		}
	}
	// The pico stage always decides; reaching here is a broken pipeline,
	// and a broken pipeline must not let traffic through.
	return Decision{Verdict: Drop, Layer: LayerNone, Rule: policy.None, SrcDevice: c.Src.Device, DstDevice: c.Dst.Device}, Result{}
}

// begin readies the worker's context for the stages to judge p as how
// says.
func (w *Worker) begin(g *generation, p *packet.Packet, now int64, m Meta, how judging) *Context {
	c := &w.ctx
	c.Packet, c.Now, c.Policy, c.gen, c.memo = p, now, g.policy, g, &w.memo
	c.set(how)
	c.InZone, c.OutZone, c.Merged = m.InZone, m.OutZone, m.Merged
	c.InPort = m.InPort
	c.DPort = transportPort(p, c.Reversed)
	c.Rule = policy.None
	c.Flow = &w.st
	c.spa = w.e.spa
	return c
}

// cached answers a packet of a flow already judged by this generation, and
// applies the checks that span the flow's life (picoStage.recheck).
func (w *Worker) cached(g *generation, key flow.Key, p *packet.Packet, now int64, m Meta) Decision {
	st := &w.st
	d := Decision{Verdict: Verdict(st.Verdict), Layer: Layer(st.Layer), Reason: Reason(st.Reason), Rule: st.Rule, Cached: true, SrcDevice: st.SrcDevice, DstDevice: st.DstDevice}
	if d.Verdict == Drop || d.Layer != LayerPico || st.Rule < 0 {
		return w.finish(d, p, now, noEvent)
	}
	r := &g.policy.Rules[st.Rule]
	d.Class = r.Class
	w.countMin(g, r, st, p.Length)
	if !r.Pico {
		return w.finish(d, p, now, noEvent)
	}
	reason, event, moved := picoStage{}.recheck(g, r, st, p.Length, now, m)
	if moved && reason == ReasonNone {
		w.e.flows.Update(key, st)
	}
	if reason != ReasonNone {
		d.Verdict, d.Reason = Drop, reason
		st.Verdict, st.Reason = uint8(Drop), uint8(reason)
		w.e.flows.Update(key, st)
		w.setSides(st, key)
		return w.finish(d, p, now, event)
	}
	if d.Verdict == NeedMore && r.App != nil {
		return w.inspectCached(g, key, r, p, now, d)
	}
	if d.Verdict == NeedMore && st.Packets >= w.e.inspect {
		d.Verdict, d.Reason = Accept, ReasonWithinLimits
		st.Verdict, st.Reason = uint8(Accept), uint8(ReasonWithinLimits)
		w.e.flows.Update(key, st)
	}
	return w.finish(d, p, now, noEvent)
}

// sizeOutside reports whether a packet of length bytes breaks the rule's
// size bounds. A merged packet is several segments: only the lower bound
// says something about them.
func sizeOutside(r *policy.Rule, length uint16, merged bool) bool {
	return length < r.SizeMin || length > r.SizeMax && !merged
}

// setSides fills the context's sides from a cached flow, for its event.
func (w *Worker) setSides(st *flow.State, key flow.Key) {
	a, b := key.Endpoints()
	if !st.FromA {
		a, b = b, a
	}
	w.ctx.Src = policy.Side{Addr: a.Addr(), Device: st.SrcDevice}
	w.ctx.Dst = policy.Side{Addr: b.Addr(), Device: st.DstDevice}
	w.ctx.DPort = b.Port()
}

func (w *Worker) countMin(g *generation, r *policy.Rule, st *flow.State, size uint16) {
	if r.MinDevice == 0 || st.SrcDevice < 0 {
		return
	}
	if c := g.mins[st.Rule].byDevice[st.SrcDevice]; c != nil {
		c.bytes.Add(uint64(size))
	}
}

// finish counts the decision, raises event ev unless it is noEvent, and
// applies monitor mode.
func (w *Worker) finish(d Decision, p *packet.Packet, now int64, ev EventType) Decision {
	e := w.e
	e.stats.Verdicts[d.Layer][d.Verdict].Add(1)
	g := e.cur.Load()
	if ev != noEvent {
		e.raise(w.event(g, d, p, now, ev))
	}
	if d.Verdict == Drop && d.Layer != LayerDecode && g.policy.Mode == config.ModeMonitor {
		d.Verdict, d.WouldDrop = Accept, true
	}
	return d
}

// event describes decision d of packet p for the alert system.
func (w *Worker) event(g *generation, d Decision, p *packet.Packet, now int64, ev EventType) Event {
	var event Event
	if d.Layer == LayerDecode {
		event = Event{Src: p.Src, Dst: p.Dst, Proto: p.Proto, SPort: p.SrcPort, DPort: p.DstPort}
	} else {
		c := &w.ctx
		event = Event{Src: c.Src.Addr, Dst: c.Dst.Addr, Proto: p.Proto, DPort: c.DPort}
		if d.Cached {
			event.Bytes = w.st.Bytes
		}
	}
	event.Type, event.Time, event.Layer, event.Reason = ev, now, d.Layer, d.Reason
	event.Device = g.policy.DeviceName(d.SrcDevice)
	event.Rule = g.ruleName(d.Layer, d.Rule)
	if ev == EventAppMismatch || ev == EventAppDenied || ev == EventAppUnidentified {
		event.App = w.ctx.app
	}
	return event
}

// Sweep runs the checks that need no packet: lower volume bounds whose
// period has ended; it also reclaims idle budgets. Call it periodically with the current time (replay
// calls it as capture time advances).
func (e *Engine) Sweep(now int64) {
	g := e.cur.Load()
	g.budgets.reclaim(now)
	e.spa.grants.Sweep(now)
	e.names.Sweep(now, max(g.policy.DNSGrace(), policy.RunningFlowHorizon))
	for ri := range g.mins {
		r := &g.policy.Rules[ri]
		per := int64(r.MinPer)
		for _, c := range g.mins[ri].ordered {
			start := c.windowStart.Load()
			if start == 0 {
				c.windowStart.Store(now)
				continue
			}
			if per <= 0 || now-start < per {
				continue
			}
			moved := c.bytes.Swap(0)
			c.windowStart.Store(start + (now-start)/per*per)
			if moved < r.MinDevice {
				e.stats.Events.Add(1)
				e.sink.Emit(Event{Type: EventSilent, Time: now, Layer: LayerPico, Reason: ReasonNone,
					Device: g.policy.DeviceName(c.device), Rule: r.Name, Bytes: moved,
					Src: firstAddr(g.policy, c.device)})
			}
		}
	}
}

func firstAddr(pol *policy.Policy, d int32) netip.Addr {
	if a := pol.Devices[d].Addrs; len(a) > 0 {
		return a[0]
	}
	return netip.Addr{}
}
