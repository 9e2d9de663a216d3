package engine

import (
	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Application identity.
//
// A flow whose rule names an application (policy.Rule.App) is accepted
// packet by packet (NeedMore: no mark, so the kernel keeps queueing it)
// while its checker reads the client's first bytes. The checker's answer
// decides the flow: Pass accepts it onto the fast path, Mismatch and Deny
// drop it with an event, and a flow not identified within the budget (a
// few packets, InspectBytes of client bytes) gets the rule's unidentified
// choice, deny unless it says allow. A lifelong checker (Modbus) is never
// done: its flows stay in userspace and every request is judged.
//
// The client's bytes are reassembled in order from the SYN (streamSlot):
// the checker sees exactly the bytes the server reads. A flow picked up
// mid-stream, or from its reply, has no start to read from: unidentified.
// The server's packets pass while the client's are read.

// tcpUrg is the TCP URG flag.
const tcpUrg = 0x20

// EventApp describes the application behind an event: the protocol, the
// name the checker found (server name, host), the number it reported (a
// Modbus function code, -1 for none) and its reason.
type EventApp struct {
	Proto  appid.Proto
	Code   int
	Detail string // the checker's constant reason ("write function")
	// name is a copy: the checker's bytes are gone after the verdict.
	nameLen uint8
	name    [appNameMax]byte
}

// Name returns the identity the checker found, "" when none.
func (a *EventApp) Name() string { return string(a.name[:a.nameLen]) }

func (a *EventApp) set(proto appid.Proto, v *appid.Verdict) {
	a.Proto, a.Code, a.Detail = proto, v.Code, v.Reason
	a.nameLen = uint8(copy(a.name[:], v.Name))
}

// appState is the engine's application state, shared by its generations:
// a reload keeps the flows under inspection and their bytes.
type appState struct {
	streams *inspectTable
	names   *appNames
	packets uint32 // the per-flow packet budget
}

func newAppState(o *Options) *appState {
	packets := o.AppPackets
	if packets == 0 {
		packets = DefaultAppPackets
	}
	return &appState{streams: newInspectTable(o.InspectFlows), names: &appNames{size: DefaultAppNames}, packets: packets}
}

// AppOf returns the application and name identified for a flow, while the
// engine remembers it (for status and replay; it allocates).
func (e *Engine) AppOf(k flow.Key) (proto appid.Proto, name string, ok bool) {
	return e.apps.names.get(k)
}

// appStage judges the first packet of a flow (or of a flow judged again
// after a reload) under a rule with an application.
func appStage(c *Context, r *policy.Rule) Result {
	if c.DryRun {
		return Result{Verdict: NeedMore, Rule: c.Rule, Reason: ReasonAppInspecting}
	}
	chk, p := r.App, c.Packet
	if chk.Stream() != (p.Proto == packet.ProtoTCP) {
		v := appid.Verdict{Outcome: appid.Mismatch, Reason: "not the transport of this protocol", Code: -1}
		return appResult(c, r, &v)
	}
	if c.Reversed {
		// Picked up from its reply: the client's first bytes went by.
		return unidentified(c, r)
	}
	if !chk.Stream() {
		return appDatagram(c, r, c.gen.apps)
	}
	apps := c.gen.apps
	key, _ := flow.KeyOf(p)
	apps.streams.mu.Lock()
	defer apps.streams.mu.Unlock()
	s := apps.streams.find(&key)
	if c.Existing {
		// Judged again after a reload: go on where the flow was, or keep
		// an identified flow's identity; anything else has no start.
		if s != nil {
			return appSegment(c, r, apps, s, &key)
		}
		if c.Flow.App == uint8(chk.Proto()) && !chk.Lifelong() {
			return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonAppIdentified}
		}
		return unidentified(c, r)
	}
	if p.TCPFlags&(packet.TCPSyn|packet.TCPAck) != packet.TCPSyn {
		if !chk.Lifelong() {
			// Picked up mid-stream: its first bytes went by unread.
			return unidentified(c, r)
		}
		// A lifelong checker judges every message from here on: picked
		// up mid-stream (a daemon restart), the flow is read from this
		// segment, which must start a message or the checker refuses it.
		// (Not so for a flow whose slot was evicted: its pending bytes
		// may hold the start of a message the server has, and a segment
		// read as a new message would then be read two ways.)
		s = apps.streams.take(&key)
		s.base = p.Seq
		return appSegment(c, r, apps, s, &key)
	}
	if p.PayloadLen > 0 {
		// Data on a SYN (TCP Fast Open) is read by a server that takes
		// the client's cookie and dropped by one that does not, which
		// then reads whatever the client sends at those numbers next:
		// the checker cannot know which bytes the server has.
		v := appid.Verdict{Outcome: appid.Mismatch, Reason: "data on a SYN", Code: -1}
		return appResult(c, r, &v)
	}
	s = apps.streams.take(&key)
	s.base = p.Seq + 1
	return appSegment(c, r, apps, s, &key)
}

// appSegment takes a client segment into s and judges the stream. Call
// with the table locked.
func appSegment(c *Context, r *policy.Rule, apps *appState, s *streamSlot, key *flow.Key) Result {
	p := c.Packet
	seq := p.Seq
	if p.TCPFlags&packet.TCPSyn != 0 {
		seq++
	}
	if p.PayloadLen > 0 && p.TCPFlags&tcpUrg != 0 {
		// The urgent byte leaves the stream the server reads (unless it
		// set SO_OOBINLINE): the checker and the server would read two
		// streams. No protocol judged here uses urgent data.
		apps.streams.release(s)
		v := appid.Verdict{Outcome: appid.Mismatch, Reason: "urgent data", Code: -1}
		return appResult(c, r, &v)
	}
	if p.PayloadLen > 0 {
		switch s.add(seq, p.Payload, p.PayloadLen) {
		case segAhead, segTooOld:
			// Only the cached path can drop a packet alone; here (a
			// reload met a reordering) the flow is dropped: never let the
			// server read bytes the checker has not.
			return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonAppOutOfOrder}
		case segDiffers:
			v := appid.Verdict{Outcome: appid.Mismatch, Reason: "bytes sent again differ from the ones judged", Code: -1}
			apps.streams.release(s)
			return appResult(c, r, &v)
		case segFull:
			apps.streams.release(s)
			return unidentified(c, r)
		}
	}
	return judgeSlot(c, r, apps, s, key)
}

// judgeSlot runs the checker over the slot's bytes and turns its answer
// into the flow's verdict. Call with the table locked.
func judgeSlot(c *Context, r *policy.Rule, apps *appState, s *streamSlot, key *flow.Key) Result {
	chk := r.App
	if s.off == s.n && !s.lost {
		// Nothing new to judge (a SYN, a bare ACK): the budget alone.
		if !s.passed && c.Flow.Packets >= apps.packets {
			apps.streams.release(s)
			return unidentified(c, r)
		}
		return Result{Verdict: NeedMore, Rule: c.Rule, Reason: inspecting(s)}
	}
	v, identified := runChecker(chk, s)
	switch {
	case v.Outcome == appid.Pass:
		c.Flow.App = uint8(chk.Proto())
		apps.names.put(key, chk.Proto(), v.Name)
		apps.streams.release(s)
		return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonAppIdentified}
	case v.Outcome != appid.More:
		apps.streams.release(s)
		return appResult(c, r, &v)
	case identified:
		// A lifelong flow's first message passed: it is identified.
		c.Flow.App = uint8(chk.Proto())
		apps.names.put(key, chk.Proto(), v.Name)
	}
	if s.lost || (!s.passed && (s.n >= len(s.buf) || c.Flow.Packets >= apps.packets)) {
		apps.streams.release(s)
		return unidentified(c, r)
	}
	return Result{Verdict: NeedMore, Rule: c.Rule, Reason: inspecting(s)}
}

// inspecting is the reason of a flow kept under inspection: identified (a
// lifelong flow whose messages so far passed) or not yet.
func inspecting(s *streamSlot) Reason {
	if s.passed {
		return ReasonAppIdentified
	}
	return ReasonAppInspecting
}

// runChecker judges the slot's bytes. A checker that decides once reads
// them from the stream's start; a lifelong one judges message after
// message and consumes each, and its More means "all judged so far
// passed"; identified is set when this call passed the flow's first
// message (the verdict then has its Name). Pass is only returned by a
// checker that decides once.
func runChecker(chk appid.Checker, s *streamSlot) (v appid.Verdict, identified bool) {
	if !chk.Lifelong() {
		return chk.Check(s.buf[:s.n]), false
	}
	out := appid.Verdict{Outcome: appid.More, Code: -1}
	first := !s.passed
	opener, _ := chk.(appid.Opener)
	for s.off < s.n {
		var v appid.Verdict
		if opener != nil && !s.passed && s.off == 0 {
			// Nothing of the flow judged yet: its opening message.
			v = opener.CheckFirst(s.buf[:s.n])
		} else {
			v = chk.Check(s.buf[s.off:s.n])
		}
		if v.Outcome != appid.Pass {
			if v.Outcome == appid.More {
				break
			}
			return v, false
		}
		if v.Used <= 0 || v.Used > s.n-s.off {
			// A checker that consumes nothing would loop, one that
			// consumes more than it had would skip bytes unjudged.
			return appid.Verdict{Outcome: appid.Mismatch, Reason: "checker used no whole message", Code: v.Code}, false
		}
		if first && !s.passed {
			out.Name, out.Code = v.Name, v.Code
		}
		s.off += v.Used
		s.passed = true
	}
	return out, first && s.passed
}

// appDatagram judges a datagram of a flow under a datagram protocol's
// checker: each client datagram on its own.
func appDatagram(c *Context, r *policy.Rule, apps *appState) Result {
	p, chk := c.Packet, r.App
	if len(p.Payload) < p.PayloadLen {
		// A datagram cut short cannot be judged whole.
		return unidentified(c, r)
	}
	v := chk.Check(p.Payload)
	key, _ := flow.KeyOf(p)
	switch v.Outcome {
	case appid.Pass:
		c.Flow.App = uint8(chk.Proto())
		if c.Flow.Verdict != uint8(NeedMore) || !chk.Lifelong() {
			apps.names.put(&key, chk.Proto(), v.Name)
		}
		if chk.Lifelong() {
			return Result{Verdict: NeedMore, Rule: c.Rule, Reason: ReasonAppIdentified}
		}
		return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonAppIdentified}
	case appid.More:
		if c.Flow.Packets >= apps.packets {
			return unidentified(c, r)
		}
		return Result{Verdict: NeedMore, Rule: c.Rule, Reason: ReasonAppInspecting}
	}
	return appResult(c, r, &v)
}

// appResult drops a flow for a checker's Mismatch or Deny, with the event
// that names what the checker found.
func appResult(c *Context, r *policy.Rule, v *appid.Verdict) Result {
	c.app.set(r.App.Proto(), v)
	if v.Outcome == appid.Deny {
		return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonAppDenied, Event: EventAppDenied}
	}
	return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonAppMismatch, Event: EventAppMismatch}
}

// unidentified applies the rule's choice to a flow whose application was
// not identified. A constraint that checks every message (Lifelong: Modbus
// writes, MQTT topics, CoAP methods, DNS queries) is never let onto the
// fast path unread, whatever the rule's choice: a flow that fell out of
// inspection (evicted by newer flows, a message larger than the buffer, a
// datagram cut short) would carry every later message unchecked.
func unidentified(c *Context, r *policy.Rule) Result {
	if r.AppAllowUnidentified && !r.App.Lifelong() {
		return Result{Verdict: Accept, Rule: c.Rule, Reason: ReasonAppUnidentified}
	}
	c.app = EventApp{Proto: r.App.Proto(), Code: -1}
	return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonAppUnidentified, Event: EventAppUnidentified}
}

// inspectCached judges a packet of a flow under inspection (the cached
// path: its verdict so far is NeedMore under a rule with an application).
func (w *Worker) inspectCached(g *generation, key flow.Key, r *policy.Rule, p *packet.Packet, now int64, d Decision) Decision {
	st := &w.st
	_, fromA := flow.KeyOf(p)
	c := &w.ctx
	c.Packet, c.Policy, c.gen, c.memo, c.Rule, c.Flow, c.Now = p, g.policy, g, &w.memo, st.Rule, st, now
	c.Reversed, c.Existing, c.DryRun = false, true, false
	var res Result
	switch {
	case fromA != st.FromA:
		// The server's packets pass while the client's are read, within
		// the packet budget.
		res = w.serverPacket(g, &key, r)
	case !r.App.Stream():
		res = appDatagram(c, r, g.apps)
	default:
		res = w.clientSegment(g, &key, r)
	}
	if res.Verdict == Drop && res.Reason == ReasonAppOutOfOrder {
		d.Verdict, d.Reason, d.PacketOnly = Drop, res.Reason, true
		return w.finish(d, p, now, noEvent)
	}
	d.Verdict, d.Reason = res.Verdict, res.Reason
	if Verdict(st.Verdict) != res.Verdict || Reason(st.Reason) != res.Reason {
		st.Verdict, st.Reason = uint8(res.Verdict), uint8(res.Reason)
		w.e.flows.Update(key, st)
	}
	if res.Verdict != Drop {
		return w.finish(d, p, now, noEvent)
	}
	w.setSides(st, key)
	return w.finish(d, p, now, denial(res.Event))
}

func (w *Worker) serverPacket(g *generation, key *flow.Key, r *policy.Rule) Result {
	c, apps := &w.ctx, g.apps
	if !r.App.Stream() {
		return Result{Verdict: NeedMore, Rule: c.Rule, Reason: Reason(w.st.Reason)}
	}
	apps.streams.mu.Lock()
	defer apps.streams.mu.Unlock()
	s := apps.streams.find(key)
	switch {
	case s == nil:
		return unidentified(c, r)
	case !s.passed && w.st.Packets >= apps.packets:
		apps.streams.release(s)
		return unidentified(c, r)
	}
	return Result{Verdict: NeedMore, Rule: c.Rule, Reason: Reason(w.st.Reason)}
}

func (w *Worker) clientSegment(g *generation, key *flow.Key, r *policy.Rule) Result {
	c, apps := &w.ctx, g.apps
	apps.streams.mu.Lock()
	defer apps.streams.mu.Unlock()
	s := apps.streams.find(key)
	if s == nil {
		// Evicted by newer flows, or never had a start: unidentified.
		return unidentified(c, r)
	}
	p := c.Packet
	if p.TCPFlags&(packet.TCPSyn|packet.TCPAck) == packet.TCPSyn && s.n == 0 {
		s.base = p.Seq + 1 // the SYN sent again
	}
	return appSegment(c, r, apps, s, key)
}
