package daemon

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/queue"
)

// devices feeds the inventory from the flows the engine judges and raises
// new_device once per device never seen before. The identifier follows the
// policy across reloads.
type devices struct {
	inv    *inventory.Inventory
	id     atomic.Pointer[inventory.Identifier]
	raise  func(alert.Alert)
	counts *inventory.Counter
	// record, when set, keeps the flows devices open for learning.
	record func(p *packet.Packet, now time.Time)
	// runs holds each queue's run of sightings.
	runs []sightings
}

func newDevices(inv *inventory.Inventory, id *inventory.Identifier, raise func(alert.Alert), queues int) *devices {
	d := &devices{inv: inv, raise: raise, counts: inventory.NewCounter(inv), runs: make([]sightings, max(queues, 1))}
	d.id.Store(id)
	return d
}

// sightings is one queue's run of new flows from one sender. The inventory
// hears of the run's first flow at once (a new device is reported then)
// and of the others together: when the sender changes, when the run is
// sightingSpan old, and at the daemon's sweep every second. One device's
// burst of flows then costs the inventory's lock and lookups once, not per
// flow. The sender is its address and MAC under one identifier (a reload
// starts a new run).
type sightings struct {
	mu     sync.Mutex
	id     *inventory.Identifier
	addr   netip.Addr
	mac    [6]byte
	hasMAC bool
	since  time.Time
	// obs is the sender as identified, when ok; its Flows and Time are the
	// run's flows not yet told and the latest of them.
	obs inventory.Observation
	ok  bool
	_   [64]byte // keep the runs of different queues on different cache lines
}

// sightingSpan is how long a run of sightings lasts at most: the longest
// a device's flow count and last-seen time lag behind.
const sightingSpan = time.Second

// flowStarted records the sender of a flow's first packet, seen on queue
// q. Bytes are left to the conntrack counters, which see the whole flow.
func (d *devices) flowStarted(q int, p *packet.Packet, now time.Time) {
	id, s := d.id.Load(), &d.runs[q%len(d.runs)]
	s.mu.Lock()
	if s.id == id && s.addr == p.Src && s.mac == p.SrcMAC && s.hasMAC == p.HasMAC && !now.Before(s.since) && now.Sub(s.since) < sightingSpan {
		ok := s.ok
		if ok {
			s.obs.Flows++
			s.obs.Time = now
		}
		s.mu.Unlock()
		if ok && d.record != nil {
			d.record(p, now)
		}
		return
	}
	told := s.take()
	o, ok := id.Identify(p.Src)
	o.MAC, o.HasMAC, o.Time = p.SrcMAC, p.HasMAC, now
	// The run starts with no flow to tell: its first is told now.
	s.id, s.addr, s.mac, s.hasMAC, s.since, s.obs, s.ok = id, p.Src, p.SrcMAC, p.HasMAC, now, o, ok
	s.mu.Unlock()
	if told.Flows > 0 {
		d.observe(told)
	}
	if !ok {
		return
	}
	if d.record != nil {
		d.record(p, now)
	}
	o.Flows = 1
	d.observe(o)
}

// take returns the run's flows not yet told, and forgets them.
func (s *sightings) take() inventory.Observation {
	o := s.obs
	s.obs.Flows = 0
	return o
}

// flush tells the inventory of every queue's flows not yet told.
func (d *devices) flush() {
	for i := range d.runs {
		s := &d.runs[i]
		s.mu.Lock()
		o := s.take()
		s.mu.Unlock()
		if o.Flows > 0 {
			d.observe(o)
		}
	}
}

// observe records sighting o, and raises new_device when it is the
// device's first.
func (d *devices) observe(o inventory.Observation) {
	if !d.inv.Observe(o) {
		return
	}
	name := o.Name
	if name == "" {
		name = o.Addr.String()
	}
	d.raise(alert.Alert{Type: alert.TypeNewDevice, Device: o.Name, Src: o.Addr,
		Message: "new device " + name + " in zone " + o.Zone + groupNote(o.Groups)})
}

// dhcpSeen records what a DHCPv4 client message says of its sender (its
// MUD URL, RFC 8520 option 161, and hostname), for a message the engine
// let through: one it refused (spoofing) teaches nothing. Every such
// message is looked at, not only a flow's first: a client without an
// address sends from 0.0.0.0 to the broadcast address, one flow for every
// client of the link.
func (d *devices) dhcpSeen(p *packet.Packet, ip []byte, inZone int32, now time.Time) {
	req, ok := inventory.ParseDHCPv4IP(ip)
	if !ok {
		return
	}
	o, ok := d.id.Load().DHCPObservation(p, inZone, now)
	if !ok {
		return
	}
	if d.inv.ObserveDHCP(o, req) {
		name := o.Name
		if name == "" {
			name = net.HardwareAddr(o.MAC[:]).String()
		}
		d.raise(alert.Alert{Type: alert.TypeNewDevice, Device: o.Name, Src: o.Addr,
			Message: "new device " + name + " in zone " + o.Zone + groupNote(o.Groups)})
	}
}

func groupNote(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	s := ", group"
	for _, g := range groups {
		s += " " + g
	}
	return s
}

// registerMetrics exposes the daemon's counters in Prometheus form. The
// values are read at scrape time from the counters the daemon keeps anyway.
func registerMetrics(r *metrics.Registry, eng *engine.Engine, adapter *queue.Adapter, alerts *alert.Dispatcher, kernelDrops func() queue.Drops) {
	s := eng.Stats()
	r.Family("picoseg_queue_packets_total", "Packets received from each NFQUEUE queue.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, q := range adapter.Stats() {
			add(float64(q.Received), metrics.L("queue", strconv.Itoa(int(q.Queue))))
		}
	})
	r.Family("picoseg_queue_overflows_total", "Socket overruns (ENOBUFS): packets the kernel could not hand over.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, q := range adapter.Stats() {
			add(float64(q.ENOBUFS), metrics.L("queue", strconv.Itoa(int(q.Queue))))
		}
	})
	r.CounterFunc("picoseg_queue_full_dropped_total", "Packets the kernel dropped because a queue was full (on_queue_full = \"drop\").",
		func() uint64 { return kernelDrops().QueueFull })
	r.Family("picoseg_verdicts_total", "Packets judged, by deciding layer and verdict.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, l := range engine.Layers {
			for _, v := range []engine.Verdict{engine.Accept, engine.Drop, engine.NeedMore} {
				add(float64(s.Verdicts[l][v].Load()), metrics.L("layer", l.String()), metrics.L("verdict", v.String()))
			}
		}
	})
	r.Family("picoseg_flows_judged_total", "New flows judged, by deciding layer, verdict and rule.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, l := range engine.Layers {
			for _, v := range []engine.Verdict{engine.Accept, engine.Drop, engine.NeedMore} {
				add(float64(s.Flows[l][v].Load()), metrics.L("layer", l.String()), metrics.L("verdict", v.String()))
			}
		}
	})
	r.Family("picoseg_flow_rule_total", "Flows in the flow table by deciding rule and verdict.", metrics.Gauge, flowRuleCounts(eng))
	r.GaugeFunc("picoseg_flows_tracked", "Flows in the userspace flow table.", func() float64 { return float64(eng.Flows().Len()) })
	r.CounterFunc("picoseg_flow_evictions_total", "Flows evicted from the full flow table.", eng.Flows().Evictions)
	r.Family("picoseg_alerts_total", "Alerts sent, by type.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, t := range alert.Types() {
			add(float64(alerts.Stats().ByType[t.String()]), metrics.L("type", t.String()))
		}
	})
	r.Family("picoseg_alert_sink_dropped_total", "Alerts a sink could not deliver.", metrics.Counter, func(add func(float64, ...metrics.Label)) {
		for _, k := range alerts.Stats().Sinks {
			add(float64(k.Dropped), metrics.L("sink", k.Name))
		}
	})
	r.CounterFunc("picoseg_events_total", "Engine events (denies, spoofs, bounds tripped).", s.Events.Load)
}
