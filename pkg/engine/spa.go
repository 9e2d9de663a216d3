package engine

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/spa"
)

// SPAOptions configures single packet authorization.
type SPAOptions struct {
	// Replay is the replay cache (nil: one in memory, forgotten at exit).
	Replay *spa.ReplayCache
	// Limiter bounds failed attempts (nil: spa.DefaultLimiterOptions).
	Limiter *spa.Limiter
	// Grants bounds the grant table (0: spa.DefaultGrantCapacity).
	Grants int
}

// spaState is the engine's SPA state. It belongs to the engine, not to a
// generation: a grant outlives a reload for as long as its rule's name
// does, and the replay cache never forgets early.
type spaState struct {
	gate   *spa.Gate
	grants *spa.Grants
	stats  SPAStats
}

// SPAStats counts SPA packets by outcome.
type SPAStats struct {
	Granted, Rejected, Limited atomic.Uint64
}

func newSPAState(o SPAOptions) *spaState {
	return &spaState{gate: spa.NewGate(o.Replay, o.Limiter), grants: spa.NewGrants(o.Grants)}
}

// SPAGrants returns the grants open at now.
func (e *Engine) SPAGrants(now int64) []spa.Grant { return e.spa.grants.List(now) }

// SPAStats returns the SPA counters.
func (e *Engine) SPAStats() *SPAStats { return &e.spa.stats }

// knock judges an SPA packet: a UDP packet to the gateway's SPA port
// while the policy has SPA keys. It reports false for every other packet,
// at the cost of two comparisons. A knock never reaches the flow table and
// is always dropped, alone (PacketOnly): nothing is cached for its tuple,
// in userspace or in the conntrack mark, so the next knock from the same
// port is judged too, and no socket or reply ever tells a scanner the port
// is there.
func (w *Worker) knock(g *generation, p *packet.Packet, now int64, m Meta) (Decision, bool) {
	pol := g.policy
	if p.Proto != packet.ProtoUDP || p.DstPort != pol.SPA.Port || !pol.SPA.Enabled() {
		return Decision{}, false
	}
	if m.OutZone != policy.Gateway && !(m.OutZone == policy.None && pol.IsGatewayDst(p.Dst)) {
		return Decision{}, false
	}
	c := w.begin(g, p, now, m, opening)
	// The grant goes to the packet's source: it must be one the source
	// could send from (the identify stage's spoofing checks).
	if res := (identifyStage{}).Evaluate(c); res.Verdict == Drop {
		return w.knocked(g, p, now, Decision{Layer: LayerIdentify, Reason: res.Reason}, res.Event), true
	}
	reason, rule, svc := w.authenticate(g, c, udpPayload(m.IP), now)
	d := Decision{Layer: LayerPico, Reason: reason, Rule: rule}
	ev := EventSPARejected
	switch reason {
	case ReasonSPAGranted:
		ev = EventSPAGranted
		w.e.spa.stats.Granted.Add(1)
		c.DPort = svc.Port
		p = w.knockPacket(p, svc.Proto)
	case ReasonSPARateLimited:
		w.e.spa.stats.Limited.Add(1)
	default:
		w.e.spa.stats.Rejected.Add(1)
	}
	return w.knocked(g, p, now, d, ev), true
}

// knockPacket is p with proto, for the granted event to name the service
// it opened; p itself is the caller's and is left alone.
func (w *Worker) knockPacket(p *packet.Packet, proto uint8) *packet.Packet {
	w.quoted = *p
	w.quoted.Proto = proto
	return &w.quoted
}

// knocked finishes a knock's decision: always a drop of this packet
// alone, monitor mode or not (an SPA packet let through would meet a
// closed port, whose ICMP answer shows a scanner the port).
func (w *Worker) knocked(g *generation, p *packet.Packet, now int64, d Decision, ev EventType) Decision {
	d.Verdict, d.PacketOnly = Drop, true
	if d.Layer != LayerPico || d.Reason != ReasonSPAGranted {
		d.Rule = policy.None
	}
	d.SrcDevice, d.DstDevice = w.ctx.Src.Device, w.ctx.Dst.Device
	w.e.stats.Verdicts[d.Layer][d.Verdict].Add(1)
	if ev != noEvent {
		w.e.raise(w.event(g, d, p, now, ev))
	}
	return d
}

// authenticate checks the knock's payload with the keys its source may
// use, and opens what it asks for that a rule with its key allows. It
// returns the reason, and for a grant the first rule and service opened.
func (w *Worker) authenticate(g *generation, c *Context, payload []byte, now int64) (Reason, int32, spa.Service) {
	pol, st := g.policy, w.e.spa
	// Room for a few keys and rules on the stack: a flood of junk knocks
	// costs no garbage.
	var idBuf [8]int32
	var keyBuf [8]*spa.Key
	var ruleBuf [8]int32
	ids := pol.SPAKeysFor(&c.Src, &c.scratch, idBuf[:0])
	keys := keyBuf[:0]
	for _, id := range ids {
		keys = append(keys, pol.SPA.Keys[id].Key)
	}
	var msg spa.Message
	ki, err := st.gate.Check(c.Src.Addr, payload, keys, now, &msg)
	if err != nil {
		return spaReason(err, len(keys)), policy.None, spa.Service{}
	}
	src := c.Src.Addr.Unmap()
	// The address asked for must be the packet's own (0.0.0.0 is the
	// client's "my source address", fwknop -s): a knock never opens a
	// service for a third party, whose address a key holder could name.
	if msg.Addr != src && !(msg.Addr.Is4() && msg.Addr.IsUnspecified()) {
		return ReasonSPANotAllowed, policy.None, spa.Service{}
	}
	first, firstSvc := policy.None, spa.Service{}
	for _, svc := range msg.Services {
		for _, ri := range pol.SPARules(&c.Src, ids[ki], svc.Proto, svc.Port, &c.scratch, ruleBuf[:0]) {
			r := &pol.Rules[ri]
			window := r.Auth.Window
			// The client may ask for less time, never for more.
			if t := time.Duration(msg.ClientTimeout) * time.Second; t > 0 && t < window {
				window = t
			}
			grant := spa.Grant{Src: src, Rule: r.Name, Proto: svc.Proto, Port: svc.Port,
				Key: keys[ki].Name, User: msg.User, Until: now + int64(window)}
			if st.grants.Open(grant, now) && first == policy.None {
				first, firstSvc = ri, svc
			}
		}
	}
	if first == policy.None {
		return ReasonSPANotAllowed, policy.None, spa.Service{}
	}
	return ReasonSPAGranted, first, firstSvc
}

// malformed are the decoder's errors of a packet that is no valid knock.
var malformed = []error{spa.ErrTooShort, spa.ErrTooLong, spa.ErrNotBase64, spa.ErrSaltPrefix, spa.ErrDecrypt,
	spa.ErrDigest, spa.ErrMalformed, spa.ErrVersion, spa.ErrMessageType}

// spaReason is the reason of a knock the gate refused.
func spaReason(err error, keys int) Reason {
	switch {
	case errors.Is(err, spa.ErrRateLimited):
		return ReasonSPARateLimited
	case errors.Is(err, spa.ErrBadHMAC) && keys == 0:
		return ReasonSPAUnknownKey
	case errors.Is(err, spa.ErrBadHMAC):
		return ReasonSPABadHMAC
	case errors.Is(err, spa.ErrReplay):
		return ReasonSPAReplay
	case errors.Is(err, spa.ErrStale), errors.Is(err, spa.ErrFuture):
		return ReasonSPAStale
	}
	for _, e := range malformed {
		if errors.Is(err, e) {
			return ReasonSPAMalformed
		}
	}
	// Not the packet's fault: a full replay cache, or its file failing.
	return ReasonSPAReplayCache
}

// checkAuth admits a flow under a rule with auth only from a source that
// holds an open grant for the rule and the flow's service. A flow judged
// again (a reload, a conntrack entry) was opened earlier: it passes if the
// grant was given, even if its window has closed since, because a
// connection opened in the window lives on. Without a grant the flow is
// dropped: the service looks closed, not refused. A grant counts only
// while the rule still accepts the key that won it: a reload that takes a
// key off a rule revokes what it opened.
func checkAuth(c *Context, r *policy.Rule) Result {
	if r.Auth == nil {
		return Result{}
	}
	g, ok := c.spa.grants.Lookup(c.Src.Addr, r.Name, c.Packet.Proto, c.DPort)
	if ok && (c.Now < g.Until || c.Existing) && acceptsKey(c.Policy, r, g.Key) {
		return Result{}
	}
	return Result{Verdict: Drop, Rule: c.Rule, Reason: ReasonSPANoGrant}
}

// acceptsKey reports whether rule r accepts the key named name.
func acceptsKey(pol *policy.Policy, r *policy.Rule, name string) bool {
	for _, id := range r.Auth.Keys {
		if pol.SPA.Keys[id].Key.Name == name {
			return true
		}
	}
	return false
}

// awaitsGrant reports whether a flow's cached verdict is a drop for want
// of a grant: such a flow is judged afresh, so that a retransmitted
// opening after a knock is admitted rather than held to the old drop.
func awaitsGrant(st *flow.State) bool {
	return st.Verdict == uint8(Drop) && Reason(st.Reason) == ReasonSPANoGrant
}

// udpPayload returns the UDP payload of the IP packet ip, nil when it is
// not a whole UDP datagram without IPv6 extension headers.
func udpPayload(ip []byte) []byte {
	if len(ip) < 1 {
		return nil
	}
	var off, end int
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 || ip[9] != packet.ProtoUDP {
			return nil
		}
		off, end = int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
	case 6:
		if len(ip) < 40 || ip[6] != packet.ProtoUDP {
			return nil
		}
		off, end = 40, 40+int(binary.BigEndian.Uint16(ip[4:6]))
	default:
		return nil
	}
	if off < 20 || end > len(ip) || off+8 > end {
		// Cut short (the queue's copy range): a part of a knock is no
		// knock.
		return nil
	}
	ulen := int(binary.BigEndian.Uint16(ip[off+4 : off+6]))
	if ulen < 8 || off+ulen > end {
		return nil
	}
	return ip[off+8 : off+ulen]
}
