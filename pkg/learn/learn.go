package learn

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/picoseg/picoseg/internal/lru"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/replay"
)

// Defaults and bounds of Options.
const (
	DefaultMargin     = 0.25
	NoMargin          = -1.0
	DefaultScanPeers  = 100
	DefaultScanPorts  = 100
	DefaultMaxFlows   = 65536
	DefaultMaxDevices = 1024
	DefaultMaxEdges   = 16384
	// rateWindowCap bounds the opening times a (device, peer) pair keeps
	// to measure its new flows per minute; a pair that opens more in a
	// minute gets no rate bound (and is most likely a scan anyway).
	rateWindowCap = 256
	// maxCaptures is how many captures a rule's evidence names one by one.
	maxCaptures = 64
)

// Options configures a Learner. Zero values take the defaults.
type Options struct {
	// Margin widens every observed bound: 0.25 proposes 25% more than was
	// seen (a larger maximum, a smaller minimum). Zero takes
	// DefaultMargin; NoMargin proposes exactly what was seen.
	Margin float64
	// Leases is a dnsmasq leases file for hostnames (device names).
	Leases string
	// ScanPeers and ScanPorts flag a device as a scan: more distinct peers
	// than ScanPeers, or more distinct services to one peer than
	// ScanPorts.
	ScanPeers, ScanPorts int
	// MaxFlows, MaxDevices and MaxEdges bound the learning state: live
	// flows, devices, and (device, peer) pairs.
	MaxFlows, MaxDevices, MaxEdges int
}

func (o *Options) defaults() {
	switch {
	case o.Margin == 0:
		o.Margin = DefaultMargin
	case o.Margin < 0:
		o.Margin = 0
	}
	if o.ScanPeers <= 0 {
		o.ScanPeers = DefaultScanPeers
	}
	if o.ScanPorts <= 0 {
		o.ScanPorts = DefaultScanPorts
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = DefaultMaxFlows
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = DefaultMaxDevices
	}
	if o.MaxEdges <= 0 {
		o.MaxEdges = DefaultMaxEdges
	}
}

// category is what the base policy made of a flow.
type category uint8

const (
	catLearn    category = iota // denied for want of an allow rule: learned
	catAllowed                  // the base policy already accepts it
	catSegment                  // a segment (or its absence) denies it
	catIdentity                 // the base policy calls its source spoofed
	catOutside                  // an existing rule matched; its bounds refused it
	catCount
)

// flowRec is one live flow.
type flowRec struct {
	ends  flowEnds
	dev   *device // the opener, when it is a device of a local zone
	edge  *edge   // set for learned flows that are followed
	bytes uint64
	cat   category // what the base policy made of it
}

// device is what one sender of a local zone did.
type device struct {
	key    string // "mac:..." or "addr:..."
	mac    [6]byte
	hasMAC bool
	addr   netip.Addr // for a device known by its address only
	edges  map[string]*edge
	// flows counts the flows it opened, by what the base policy made of
	// them; notes names the base rules and segments behind them.
	flows     [catCount]uint64
	notes     map[string]uint64
	unfollow  uint64 // learned flows not followed (state bounds)
	scan      string // why it is flagged as a scan, "" when it is not
	peersSeen int
}

// edge is what one device did with one peer, in flows the base policy
// denied for want of a rule.
type edge struct {
	peer          string
	services      map[config.Service]uint64
	flows         uint64
	bytes         uint64
	packets       uint64
	first, last   int64
	minSize       uint16
	maxSize       uint16
	maxFlowBytes  uint64
	hours         uint32 // hours of the day with traffic, policy time zone
	days          uint8  // days of the week with traffic
	captures      uint64 // bit i: seen in capture i
	moreCaptures  bool
	hourIdx       int64 // per-hour bytes, for the device budget
	hourBytes     uint64
	prevBytes     uint64
	maxHourPair   uint64
	opens         []int64 // opening times within the last minute
	maxPerMinute  int
	rateUnbounded bool
	// sizesUnknown is set for flows learned from the daemon's record,
	// which holds no sizes or volumes; fromRecord names the record as a
	// source.
	sizesUnknown, fromRecord bool
	// judged counts the times the engine judged one of its flows as new
	// (a flow's opening, and again after it sat idle past its flow TTL);
	// named counts, by DNS name, the judgements that followed an answer
	// giving the peer's address to the device for that name; unnamed
	// those that followed none (names.go). resolver is set when the
	// device sent DNS to the peer.
	judged   uint64
	named    map[string]uint64
	unnamed  uint64
	resolver bool
}

// Learner collects what devices did from captures replayed against a
// base policy in monitor mode.
type Learner struct {
	opts     Options
	base     *policy.Policy
	cfg      *config.Config
	runner   *replay.Runner
	id       *inventory.Identifier
	inv      *inventory.Inventory
	flows    *lru.Map[flowKey, *flowRec]
	devices  map[string]*device
	routers  map[[6]byte]bool
	edges    int
	captures []string
	capture  int
	first    int64
	last     int64
	// covered is how long the captures watched: the sum of each one's
	// span, which is what bounds over time need (not the years between
	// two captures).
	covered           time.Duration
	capFirst, capLast int64
	// dns is what DNS answers told each device, for peers by name.
	dns *dnsView
	// owners is the MAC each local address was first sent from;
	// contested holds the addresses more than one MAC sent from.
	owners     map[netip.Addr][6]byte
	contested  map[netip.Addr]bool
	ownersFull bool
	// What is not learned, by reason, for the summary.
	fromRecord    bool   // learned from the daemon's record too
	recordRefused uint64 // flows the daemon's record had no room for
	fromOutside   uint64 // flows opened from outside the local zones
	notFollowed   uint64 // flows of devices past MaxDevices
	flowsEvicted  uint64 // live flows forgotten to stay in MaxFlows
}

// New returns a Learner over the base policy base, compiled from cfg. The
// policy is judged in monitor mode whatever it says: learning drops
// nothing.
func New(base *policy.Policy, cfg *config.Config, opts Options) (*Learner, error) {
	opts.defaults()
	pol := *base
	pol.Mode = config.ModeMonitor
	inv, err := inventory.New(inventory.Options{Leases: opts.Leases, MaxDevices: opts.MaxDevices, Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	lr := &Learner{
		opts: opts, base: &pol, cfg: cfg, runner: replay.New(&pol),
		id: inventory.NewIdentifier(&pol), inv: inv,
		flows: lru.NewMap[flowKey, *flowRec](opts.MaxFlows), devices: map[string]*device{}, routers: map[[6]byte]bool{},
		owners: map[netip.Addr][6]byte{}, contested: map[netip.Addr]bool{},
		dns: newDNSView(&pol),
	}
	lr.runner.ObservePackets(lr.packet)
	return lr, nil
}

// File learns from one capture. A damaged capture keeps what was read
// before the damage (Report says so); the error is for a file that cannot
// be opened or recognised.
func (l *Learner) File(path string) error {
	l.capture = len(l.captures)
	l.captures = append(l.captures, path)
	l.capFirst, l.capLast = 0, 0
	err := l.runner.File(path)
	l.covered += time.Duration(l.capLast - l.capFirst)
	return err
}

// Report is the replay report of everything learned from, against the
// base policy in monitor mode.
func (l *Learner) Report() *replay.Report { return l.runner.Report() }

// local reports whether a is an address of a local zone that names a
// device (not the gateway).
func (l *Learner) local(a netip.Addr) bool {
	_, ok := l.id.Identify(a.Unmap())
	return ok
}

func (l *Learner) packet(p *packet.Packet, d engine.Decision, now int64) {
	if l.first == 0 || now < l.first {
		l.first = now
	}
	l.last = max(l.last, now)
	if l.capFirst == 0 || now < l.capFirst {
		l.capFirst = now
	}
	l.capLast = max(l.capLast, now)
	l.sighting(p, now)
	k, fromA, ok := keyOf(p)
	if !ok || d.Related {
		return
	}
	var rec *flowRec
	if r := l.flows.Get(k); r != nil {
		rec = *r
		if e := rec.edge; e != nil && d.NewFlow && strings.HasPrefix(e.peer, "net:") {
			// The engine judges the flow anew (it was idle past its
			// flow TTL, or a SYN reopened it): a "dns:" rule must hold
			// for it now, not only when it first opened.
			l.nameFlow(e, rec.ends.opener, rec.ends.responder, now)
		}
	} else {
		rec = l.newFlow(p, k, fromA, d, now)
	}
	if rec.dev == nil {
		return
	}
	l.observeDNS(p, rec, now)
	if d.NewFlow && rec.edge != nil {
		rec.edge.opened(now)
	}
	rec.bytes += uint64(p.Length)
	if e := rec.edge; e != nil {
		e.count(p.Length, rec.bytes, now, l.base.Location)
		if l.capture < maxCaptures {
			e.captures |= 1 << uint(l.capture)
		} else {
			e.moreCaptures = true
		}
	}
}

// sighting feeds the inventory with a packet from a device of a local
// zone, and marks as a router every MAC that sends from outside them.
func (l *Learner) sighting(p *packet.Packet, now int64) {
	if p.Kind == packet.KindNotIP || p.Kind == packet.KindMalformed {
		return
	}
	src := p.Src.Unmap()
	switch {
	case l.local(src):
		o := inventory.PacketObservation(p, time.Unix(0, now).UTC())
		l.id.Fill(&o)
		l.inv.Observe(o)
		if p.HasMAC {
			// Any hardware address counts, a placeholder too: the
			// engine holds a device's address to its MAC exactly.
			l.claim(src, p.SrcMAC)
		}
	case p.HasMAC && src.IsValid() && !src.IsUnspecified() && !src.IsLinkLocalUnicast() && !src.IsMulticast():
		// Outside the local zones, or the gateway: whoever sends
		// that from its own MAC forwards traffic, or is the gateway.
		l.routers[p.SrcMAC] = true
	}
}

// claim records that mac sent from addr. An address two MACs sent from
// is contested: DHCP gave it to another device, or one of them took it.
// The proposal gives it to neither, since whichever it chose, the other's
// flows would be judged spoofed.
func (l *Learner) claim(addr netip.Addr, mac [6]byte) {
	owner, ok := l.owners[addr]
	switch {
	case !ok && len(l.owners) < l.opts.MaxDevices*inventory.MaxAddrs:
		l.owners[addr] = mac
	case !ok:
		l.ownersFull = true
	case owner != mac:
		l.contested[addr] = true
	}
}

// newFlow starts the record of a flow at its first packet, decided d by
// the base policy, and files it under its opener.
func (l *Learner) newFlow(p *packet.Packet, k flowKey, fromA bool, d engine.Decision, now int64) *flowRec {
	bySender := openedBySender(p, l.local)
	rec := &flowRec{ends: endsOf(k, fromA == bySender)}
	if _, evicted := l.flows.Add(k, rec); evicted != nil {
		l.flowsEvicted++
	}
	var mac [6]byte
	hasMAC := false
	switch {
	case bySender && p.HasMAC && usableMAC(p.SrcMAC):
		mac, hasMAC = p.SrcMAC, true
	case !bySender && p.HasMAC && usableMAC(p.DstMAC):
		mac, hasMAC = p.DstMAC, true
	}
	opener := rec.ends.opener
	// A link-local sender names no zone by its address; its MAC may name
	// a device, as the engine takes it.
	if !l.local(opener) && !(opener.IsLinkLocalUnicast() && hasMAC) {
		l.fromOutside++
		return rec
	}
	dev := l.device(opener, mac, hasMAC)
	if dev == nil {
		l.notFollowed++
		return rec
	}
	rec.dev = dev
	cat, note := classify(l.base, d, bySender)
	if cat == catSegment && opener.IsLinkLocalUnicast() && l.base.DeviceByMAC(mac) == policy.None {
		// The base policy placed a link-local sender by its address,
		// outside every local zone; once the proposal names its MAC,
		// the engine places it in its device's zone.
		cat, note = catLearn, ""
	}
	dev.flows[cat]++
	rec.cat = cat
	if note != "" {
		dev.notes[note]++
	}
	if cat == catLearn {
		peer := l.peerKey(rec.ends.responder)
		rec.edge = l.edgeOf(dev, peer, serviceOf(rec.ends))
		if e := rec.edge; e != nil {
			e.resolver = e.resolver || rec.ends.rport == dnsnames.Port && (rec.ends.proto == packet.ProtoUDP || rec.ends.proto == packet.ProtoTCP)
			if strings.HasPrefix(peer, "net:") {
				l.nameFlow(e, rec.ends.opener, rec.ends.responder, now)
			}
		}
	}
	return rec
}

// usableMAC reports whether m can name one sender: not all zeros (a
// cooked capture's placeholder) and not a group address.
func usableMAC(m [6]byte) bool { return m != [6]byte{} && m[0]&1 == 0 }

// classify reads the base policy's decision on a flow's first packet. A
// flow it accepts is the base's, whichever way it was picked up. A denial
// taken on a reply (the flow's opener was not in the capture's first
// packet) names the responder's view, so it is no evidence of what the
// opener's flow would meet: such flows are learned.
func classify(pol *policy.Policy, d engine.Decision, bySender bool) (category, string) {
	name := d.RuleName(pol)
	switch {
	case !d.WouldDrop:
		if name == "" {
			name = "the " + d.Layer.String() + " layer's default"
		}
		return catAllowed, "already allowed by " + name
	case !bySender:
		return catLearn, ""
	case d.Layer == engine.LayerIdentify:
		return catIdentity, "spoofed source per the base policy: " + d.Reason.String()
	case d.Layer == engine.LayerSegment:
		if name == "" {
			name = "(no segment)"
		}
		return catSegment, "denied by segment " + name + ": " + d.Reason.String()
	case d.Layer == engine.LayerPico && name != "":
		return catOutside, "outside existing rule " + name + ": " + d.Reason.String()
	case d.Layer == engine.LayerMicro && d.Rule == policy.None:
		return catLearn, ""
	}
	return catSegment, "denied at the " + d.Layer.String() + " layer: " + d.Reason.String()
}

// device returns the record of the device that opened a flow from addr,
// with its MAC when the packet showed it, or nil past MaxDevices.
func (l *Learner) device(addr netip.Addr, mac [6]byte, hasMAC bool) *device {
	key := "addr:" + addr.String()
	if hasMAC {
		key = "mac:" + net.HardwareAddr(mac[:]).String()
	}
	if d := l.devices[key]; d != nil {
		return d
	}
	if len(l.devices) >= l.opts.MaxDevices {
		return nil
	}
	d := &device{key: key, mac: mac, hasMAC: hasMAC, addr: addr, edges: map[string]*edge{}, notes: map[string]uint64{}}
	l.devices[key] = d
	return d
}

// peerKey names a learned flow's peer as the engine will see it: the
// sender's own zone for broadcast and multicast ("link"), the gateway, a
// device of the base policy, an address of a local zone (a device this
// proposal may add: resolved in Propose), else the address.
func (l *Learner) peerKey(dst netip.Addr) string {
	dst = dst.Unmap()
	switch {
	case l.base.IsLinkBroadcast(dst):
		return "link"
	case l.base.IsGatewayDst(dst):
		return "gateway"
	case l.base.DeviceByAddr(dst) != policy.None:
		return "device:" + l.base.DeviceName(l.base.DeviceByAddr(dst))
	case l.local(dst):
		return "addr:" + dst.String()
	}
	return "net:" + netip.PrefixFrom(dst, dst.BitLen()).String()
}

// serviceOf is a flow's service as a rule writes it.
func serviceOf(e flowEnds) config.Service {
	switch e.proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		return config.Service{Proto: e.proto, PortLo: e.rport, PortHi: e.rport}
	}
	return config.Service{Proto: e.proto}
}

// edgeOf returns dev's record of peer, counting the service; nil when the
// state bounds or the scan thresholds stop following it.
func (l *Learner) edgeOf(dev *device, peer string, svc config.Service) *edge {
	e := dev.edges[peer]
	if e == nil {
		dev.peersSeen++
		if peer != "link" && dev.peersSeen > l.opts.ScanPeers && dev.scan == "" {
			dev.scan = fmt.Sprintf("opened flows to more than %d peers", l.opts.ScanPeers)
		}
		if dev.scan != "" || l.edges >= l.opts.MaxEdges {
			dev.unfollow++
			return nil
		}
		l.edges++
		e = &edge{peer: peer, services: map[config.Service]uint64{}, minSize: 65535}
		dev.edges[peer] = e
	}
	if _, ok := e.services[svc]; !ok && len(e.services) >= l.opts.ScanPorts {
		if dev.scan == "" {
			dev.scan = fmt.Sprintf("opened flows to more than %d services on %s", l.opts.ScanPorts, peer)
		}
		dev.unfollow++
		return nil
	}
	e.services[svc]++
	e.flows++
	return e
}

// opened records a new flow at now for the new-flow rate: the most
// openings in any minute. Opening times that go back (a capture of an
// earlier time read after a later one) start the window again.
func (e *edge) opened(now int64) {
	if e.rateUnbounded {
		return
	}
	if n := len(e.opens); n > 0 && now < e.opens[n-1] {
		e.opens = e.opens[:0]
	}
	i := 0
	for i < len(e.opens) && e.opens[i] <= now-int64(time.Minute) {
		i++
	}
	e.opens = append(e.opens[:0], e.opens[i:]...)
	if len(e.opens) >= rateWindowCap {
		e.rateUnbounded, e.opens = true, nil
		return
	}
	e.opens = append(e.opens, now)
	e.maxPerMinute = max(e.maxPerMinute, len(e.opens))
}

// count adds one packet of size bytes, of a flow that has moved flowBytes
// so far, at now.
func (e *edge) count(size uint16, flowBytes uint64, now int64, loc *time.Location) {
	if e.packets == 0 || now < e.first {
		e.first = now
	}
	e.last = max(e.last, now)
	e.packets++
	e.bytes += uint64(size)
	e.minSize, e.maxSize = min(e.minSize, size), max(e.maxSize, size)
	e.maxFlowBytes = max(e.maxFlowBytes, flowBytes)
	t := time.Unix(0, now).In(loc)
	e.hours |= 1 << uint(t.Hour())
	e.days |= 1 << uint(t.Weekday())
	// Bytes per hour: the most in two consecutive clock hours bounds
	// what any hour-long period, wherever it starts, can hold.
	hour := now / int64(time.Hour)
	switch hour {
	case e.hourIdx:
		e.hourBytes += uint64(size)
	case e.hourIdx + 1:
		e.prevBytes, e.hourBytes = e.hourBytes, uint64(size)
	default:
		e.prevBytes, e.hourBytes = 0, uint64(size)
	}
	e.hourIdx = hour
	e.maxHourPair = max(e.maxHourPair, e.prevBytes+e.hourBytes)
}
