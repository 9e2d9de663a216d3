//go:build linux

package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// startParts starts the inventory, the queues, the metrics endpoint and the
// status server.
func (d *Daemon) startParts(ctx context.Context) (err error) {
	if d.inv, err = openInventory(d.cur, d.opts.InventoryState, d.log); err != nil {
		return err
	}
	d.atStop(func() {
		d.devs.flush()
		if err := d.inv.Save(); err != nil {
			d.log.Warn("saving the device inventory", "err", err)
		}
	})
	d.devs = newDevices(d.inv, inventory.NewIdentifier(d.cur.Policy), d.alerts.Raise, d.cfg.Queues)
	d.devs.counts.Sent = func(f *conntrack.Flow, addr netip.Addr, now time.Time) {
		// Bytes of an accepted flow keep its sender's port binding fresh.
		if state, _ := d.marks.Decode(f.Mark); state == nft.StateAccepted {
			d.eng.DeviceSent(addr, now.UnixNano())
		}
	}
	d.reg = metrics.NewRegistry()
	h := newHandler(d.eng, d.marks, d.cfg.QueueBase, d.cfg.Queues, newIfaceZones(interfaceNames), d.opts.Now)
	h.flowStarted = d.devs.flowStarted
	h.dhcpSeen = d.devs.dhcpSeen
	h.failOpen, h.raise = d.cfg.OnDaemonDown != "closed", d.alerts.Raise
	h.latency = d.reg.Histogram("picoseg_verdict_seconds", "Time from reading a queued packet to its verdict (judging the packets read before it in the same read included).", metrics.LatencyBuckets())
	d.startRecord()
	if err := d.startQueue(ctx, h); err != nil {
		return err
	}
	d.clearStaleMarks()
	d.sweeps.init(d)
	registerMetrics(d.reg, d.eng, d.adapter, d.alerts, d.kernelDrops)
	if err := d.startMetrics(ctx); err != nil {
		return err
	}
	return d.startStatus(ctx)
}

// kernelDrops is the last reading of the kernel's queue drop counters.
func (d *Daemon) kernelDrops() queue.Drops {
	kd, _ := d.queueDrops.Load().(queue.Drops)
	return kd
}

// startMetrics opens the Prometheus endpoint, if the policy has one. An
// address that cannot be listened on fails the start; a failure later is
// reported to the main loop, which keeps judging.
func (d *Daemon) startMetrics(ctx context.Context) error {
	l := d.cur.Config.Metrics.Listen
	if l == "" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l)
	if err != nil {
		return err
	}
	d.goPart(func() {
		if err := metrics.ServeListener(ctx, ln, d.reg); err != nil && ctx.Err() == nil {
			d.fail("metrics", err, false)
		}
	})
	d.log.Info("metrics", "listen", l)
	return nil
}

// startStatus serves the status socket.
func (d *Daemon) startStatus(ctx context.Context) error {
	d.socket = d.cfg.Socket
	if d.opts.Socket != "" {
		d.socket = d.opts.Socket
	}
	stop, err := serveStatus(ctx, d.socket, handlers{
		"status":  func(string) any { return d.status() },
		"flows":   func(device string) any { return flowViews(d.eng, d.opts.Now(), device, 500) },
		"alerts":  func(string) any { return d.alerts.Recent(100) },
		"devices": func(string) any { return d.inv.Devices() },
		"grants":  func(string) any { return grantViews(d.eng, d.opts.Now()) },
	}, func(err error) { d.fail("status socket", err, false) })
	if err != nil {
		return err
	}
	d.atStop(stop)
	return nil
}

// status is what `picoseg status` shows.
func (d *Daemon) status() Status {
	pol, s := d.eng.Policy(), d.eng.Stats()
	c := d.cfg
	st := Status{
		Version: d.opts.Version, PID: os.Getpid(), StartedAt: d.started, Uptime: d.opts.Now().Sub(d.started).Seconds(),
		PolicyFile: d.opts.ConfigPath, PolicyHash: pol.Hash, Generation: d.eng.Generation(), Mode: pol.Mode.String(),
		QueueMethod: d.method.String(), OnDown: c.OnDaemonDown, OnQueueFull: c.OnQueueFull, BridgeFilter: d.bridgeFilterZones(),
		Packets: s.Packets.Load(), CacheHits: s.CacheHits.Load(), NewFlows: s.NewFlows.Load(), Undecodable: s.Undecodable.Load(),
		FlowsTracked: d.eng.Flows().Len(), FlowEvictions: d.eng.Flows().Evictions(), Events: s.Events.Load(),
		Alerts:  d.alerts.Stats(),
		Reloads: d.reloads.Load(), ReloadFailures: d.reloadFailures.Load(), RulesetRestores: d.restores.Load(),
		IfaceChanges: d.ifaceChanges.Load(),
		SPA:          spaCounts(d.eng),
	}
	st.Verdicts, st.Flows = statusOf(s)
	st.Privileges = currentPrivileges()
	if pol.UsesDNS() {
		devices, addrs, queries := d.eng.NamesLen()
		st.DNSNames = &DNSNamesStatus{Devices: devices, Addresses: addrs, Queries: queries}
	}
	for _, q := range d.adapter.Stats() {
		st.Queues = append(st.Queues, QueueStatus{Queue: q.Queue, Received: q.Received, Accepted: q.Accepted, Dropped: q.Dropped, ENOBUFS: q.ENOBUFS, Reopens: q.Reopens})
	}
	if k, err := d.rs.Load().Counters(); err == nil {
		st.Kernel = map[string]uint64{"fast_path": k.FastPath.Packets, "queued": k.Queued.Packets,
			"guard_dropped": k.GuardDropped.Packets, "flow_dropped": k.FlowDropped.Packets, "verdict_dropped": k.VerdictDropped.Packets,
			"tripped": k.Tripped.Packets, "guard_full": k.GuardFull.Packets, "global_dropped": k.GlobalDropped.Packets,
			"invalid_dropped": k.InvalidDropped.Packets, "rpf_dropped": k.ReversePathDropped.Packets,
			"arp_spoof": k.ARPSpoof.Packets, "arp_flood": k.ARPFlood.Packets, "nd_spoof": k.NDSpoof.Packets, "nd_flood": k.NDFlood.Packets,
			"rogue_router": k.RogueRouter.Packets, "rogue_dhcp": k.RogueDHCP.Packets,
			"class_window_dropped": k.ClassWindow.Packets, "class_size_dropped": k.ClassSize.Packets, "class_rate_dropped": k.ClassRate.Packets}
		if kd, ok := d.queueDrops.Load().(queue.Drops); ok {
			st.Kernel["queue_full_dropped"], st.Kernel["queue_undelivered"] = kd.QueueFull, kd.Undelivered
		}
	}
	return st
}
