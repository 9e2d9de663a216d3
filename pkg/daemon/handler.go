package daemon

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/queue"
)

// handler judges queued packets. It keeps one engine Worker and one decoder
// per queue, because each queue is served by one goroutine.
type handler struct {
	eng       *engine.Engine
	marks     nft.Marks
	queueBase uint16
	queues    []queueState
	zones     *ifaceZones
	now       func() time.Time
	// flowStarted, when set, hears of every flow's first packet and the
	// queue (from 0) it came on (the device inventory).
	flowStarted func(q int, p *packet.Packet, now time.Time)
	// dhcpSeen, when set, hears of every DHCPv4 client message the engine
	// let through (the inventory's MUD URLs); ip is the packet from its
	// IP header.
	dhcpSeen func(p *packet.Packet, ip []byte, inZone int32, now time.Time)
	// latency, when set, times each verdict from the read that brought
	// its packet.
	latency *metrics.Histogram
	// failOpen is on_daemon_down = "open": the verdict for a packet the
	// handler could not judge because of a bug.
	failOpen bool
	// raise, when set, receives the alert for such a packet.
	raise func(alert.Alert)
	// internalErrors counts packets that hit a bug.
	internalErrors atomic.Uint64
}

var _ queue.Handler = (*handler)(nil)

// queueState is what the handler keeps for one queue.
type queueState struct {
	w     *engine.Worker
	dec   *packet.Decoder
	pkt   packet.Packet
	zones zoneCache
	_     [64]byte // keep the states of different queues on different cache lines
}

func newHandler(eng *engine.Engine, marks nft.Marks, queueBase uint16, queues int, zones *ifaceZones, now func() time.Time) *handler {
	h := &handler{eng: eng, marks: marks, queueBase: queueBase, queues: make([]queueState, queues), zones: zones, now: now}
	for i := range h.queues {
		dec := packet.NewDecoder()
		// The queue copies only the first bytes of each packet, and the
		// kernel has already checked every IP length against the real
		// packet before the forward hook.
		dec.Snapped = true
		h.queues[i] = queueState{w: eng.NewWorker(), dec: dec}
	}
	return h
}

// Judge implements queue.Handler. A bug met while judging (a panic) must
// not end the process: with the default on_daemon_down = "open" a dead
// daemon lets every new flow through unjudged, so one crafted packet would
// switch the firewall off. The packet gets the fail-mode verdict instead,
// an alert is raised, and the queue goes on with the next packet.
func (h *handler) Judge(qp *queue.Packet) (accept bool, mark uint32) {
	defer func() {
		if v := recover(); v != nil {
			accept, mark = h.failed(qp, v)
		}
	}()
	return h.judge(qp)
}

// failed answers a packet whose judgement hit a bug. Neither answer
// carries a mark: nothing is recorded in the flow's conntrack entry, so its
// next packet is judged afresh.
func (h *handler) failed(qp *queue.Packet, v any) (bool, uint32) {
	n := h.internalErrors.Add(1)
	if h.raise != nil {
		verdict := "dropped (on_daemon_down = closed)"
		if h.failOpen {
			verdict = "accepted unjudged (on_daemon_down = open)"
		}
		h.raise(alert.Alert{Type: alert.TypeInternalError, Time: h.now(),
			Message: fmt.Sprintf("bug while judging a packet of queue %d (%d so far): %v; the packet was %s, judging goes on", qp.Queue, n, v, verdict)})
	}
	return h.failOpen, 0
}

func (h *handler) judge(qp *queue.Packet) (bool, uint32) {
	q := int(qp.Queue-h.queueBase) % len(h.queues)
	qs := &h.queues[q]
	qs.dec.DecodeIP(qp.Payload, &qs.pkt)
	if len(qp.HwAddr) == 6 {
		// The frame's source MAC: what identity and spoof checks go by.
		qs.pkt.HasMAC = true
		copy(qs.pkt.SrcMAC[:], qp.HwAddr)
	}
	pol := h.eng.Policy()
	tripped, _ := h.marks.Decode(qp.Mark)
	m := engine.Meta{InZone: h.zones.cachedZone(&qs.zones.in, pol, qp.InIfindex), OutZone: h.zones.cachedZone(&qs.zones.out, pol, qp.OutIfindex),
		Merged: qp.GSO, Tripped: tripped == nft.StateTripped, InPort: qp.PhysInIfindex, IP: qp.Payload}
	if qp.OutIfindex == 0 {
		// Only the input hook queues packets without an egress interface:
		// the packet is for the gateway itself.
		m.OutZone = policy.Gateway
	}
	// The queue reads the clock once per read; a packet handed over
	// without a time (a test) reads it here.
	now := qp.Time
	if now.IsZero() {
		now = h.now()
	}
	d := qs.w.Judge(&qs.pkt, now.UnixNano(), m)
	if h.latency != nil {
		h.latency.ObserveDuration(time.Since(now))
	}
	// The inventory hears of a flow from the side that opened it; a
	// flow picked up from its reply is not its sender's.
	if d.NewFlow && !d.Reply && h.flowStarted != nil {
		h.flowStarted(q, &qs.pkt, now)
	}
	if h.dhcpSeen != nil && qs.pkt.DstPort == 67 && qs.pkt.SrcPort == 68 && qs.pkt.Proto == packet.ProtoUDP && d.Verdict == engine.Accept && !d.WouldDrop {
		h.dhcpSeen(&qs.pkt, qp.Payload, m.InZone, now)
	}
	return h.verdict(d)
}

// verdict turns a decision into a queue verdict and mark.
func (h *handler) verdict(d engine.Decision) (bool, uint32) {
	if d.Related || d.PacketOnly {
		// An ICMP error shares the conntrack entry of the flow it quotes,
		// and a SYN on an established tuple shares that connection's: a
		// mark would be written into that entry, and a forged packet
		// could then cut (or re-class) a flow it does not belong to.
		// Plain verdicts only.
		return d.Verdict != engine.Drop, 0
	}
	switch d.Verdict {
	case engine.Accept:
		// Monitor mode lands here with WouldDrop set: the flow is
		// fast-pathed like an accepted one, its event already raised.
		// The class carries the flow's kernel checks.
		return true, h.marks.Accepted(d.Class)
	case engine.NeedMore:
		if h.inspecting(d) {
			return true, h.marks.Inspecting()
		}
		// No mark: the flow's next packet is queued and judged again.
		return true, 0
	}
	// Drops go back as "accept with the DROPPED mark": the ruleset's
	// verdict chain records the mark in the conntrack entry and drops the
	// packet, so a flow cut mid-way (a limit, a reload) stays dropped in
	// the kernel. For a flow's first packet the entry is unconfirmed and
	// vanishes with the packet, which is what a plain drop does too.
	return true, h.marks.Dropped()
}

// inspecting reports whether a NeedMore decision may mark its flow
// Inspecting, so that the kernel passes what no checker reads (the
// responder's packets, the opener's segments without payload) and queues
// the rest. Only an application's checker is that narrow, and only the
// opener's packet may mark the flow: the kernel's passing direction is
// conntrack's reply direction, and its verdict chain records the mark only
// from a packet in the original one. A rule with packet-size bounds wants
// every packet of its first ones, both ways: it keeps no mark.
func (h *handler) inspecting(d engine.Decision) bool {
	if d.Reply || (d.Reason != engine.ReasonAppInspecting && d.Reason != engine.ReasonAppIdentified) {
		return false
	}
	rules := h.eng.Policy().Rules
	return d.Layer == engine.LayerPico && d.Rule >= 0 && int(d.Rule) < len(rules) && !rules[d.Rule].HasSize
}

// ifaceZones maps interface indexes to zones. The map is rebuilt when an
// unknown index shows up (an interface came up after start), at most once a
// second so that a burst of packets cannot make it spin.
type ifaceZones struct {
	lookup  func() (map[uint32]string, error)
	names   atomic.Pointer[map[uint32]string]
	mu      sync.Mutex
	refresh time.Time
}

func newIfaceZones(lookup func() (map[uint32]string, error)) *ifaceZones {
	z := &ifaceZones{lookup: lookup}
	m, _ := lookup()
	if m == nil {
		m = map[uint32]string{}
	}
	z.names.Store(&m)
	return z
}

// zoneCache is one queue's last answers of ifaceZones, for the in and
// the out interface: a queue's packets mostly come in and go out on the
// same few interfaces, and the answer costs two map lookups, one of them
// hashing the interface name.
type zoneCache struct{ in, out zoneAnswer }

// zoneAnswer is the zone of interface index under pol, as the names map
// names said. Holding the policy and the map keeps them alive, so a later
// policy or map can never have the same address as the one remembered.
type zoneAnswer struct {
	pol   *policy.Policy
	names *map[uint32]string
	index uint32
	zone  int32
}

// cachedZone is zone, remembered in c: it answers from c while the policy,
// the names map and the interface are the ones c was filled for. An index
// the map does not know is never remembered, so that it goes on asking for
// the map to be reloaded.
func (z *ifaceZones) cachedZone(c *zoneAnswer, pol *policy.Policy, index uint32) int32 {
	names := z.names.Load()
	if c.pol == pol && c.names == names && c.index == index && index != 0 {
		return c.zone
	}
	if index == 0 {
		return policy.None
	}
	name, ok := (*names)[index]
	if !ok {
		return z.zone(pol, index)
	}
	*c = zoneAnswer{pol: pol, names: names, index: index, zone: pol.ZoneOfInterface(name)}
	return c.zone
}

func (z *ifaceZones) zone(pol *policy.Policy, index uint32) int32 {
	if index == 0 {
		return policy.None
	}
	names := *z.names.Load()
	name, ok := names[index]
	if !ok {
		name, ok = z.reload(index)
		if !ok {
			return policy.None
		}
	}
	return pol.ZoneOfInterface(name)
}

func (z *ifaceZones) reload(index uint32) (string, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if time.Since(z.refresh) < time.Second {
		name, ok := (*z.names.Load())[index]
		return name, ok
	}
	z.refresh = time.Now()
	m, err := z.lookup()
	if err != nil {
		return "", false
	}
	z.names.Store(&m)
	name, ok := m[index]
	return name, ok
}
