//go:build linux

package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// reload loads the policy file again and swaps it in; a policy with errors
// is refused whole and the running one kept. The interfaces are read again
// too, as at start.
func (d *Daemon) reload(ctx context.Context) {
	start := time.Now()
	d.reloads.Add(1)
	ifs, err := readIfaces()
	var next *Loaded
	if err == nil {
		next, err = load(&d.opts, d.log, ifs.all())
	}
	if err != nil {
		d.reloadFailures.Add(1)
		// Every problem, each as FILE:LINE:COL: message, on its own log
		// line; the running policy stays.
		d.log.Error("policy reload failed: keeping the running policy", "policy", d.opts.ConfigPath, "errors", err.Error())
		d.alerts.Raise(alert.Alert{Type: alert.TypePolicyReloadFailed, Reason: err.Error(),
			Message: "policy reload failed, the running policy stays: " + firstLine(err.Error())})
		return
	}
	if n := next.Config.Daemon; n.Queues != d.cfg.Queues || n.QueueBase != d.cfg.QueueBase || n.MarkMask != d.cfg.MarkMask {
		d.log.Warn("queues, queue_base and mark_mask take effect at the next start, not on reload")
	}
	o := withPolicy(d.applied.base, next.Policy, ifs, d.opts.Now())
	if err := d.installKernelPath(o, ifs.portsOf(o.Bridges)); err != nil {
		d.reloadFailures.Add(1)
		d.log.Error("policy reload failed: its kernel checks do not install; keeping the running policy", "err", err)
		d.alerts.Raise(alert.Alert{Type: alert.TypePolicyReloadFailed, Reason: err.Error(), Message: "policy reload failed: " + err.Error()})
		return
	}
	res := d.swapPolicy(ctx, next)
	d.log.Info("policy reloaded", "hash", next.Policy.Hash, "generation", d.eng.Generation(), "flows_checked", res.Checked, "flows_cut", res.Cut, "flows_requeued", res.Cleared, "flows_reclassed", res.Reclassed, "took", time.Since(start))
}

// installKernelPath replaces the table when o or the bridge ports differ
// from the installed ones: new class checks, devices, interfaces, ports or
// gateway addresses. The table is replaced in one transaction (conntrack
// marks are untouched); nothing is done when nothing differs.
func (d *Daemon) installKernelPath(o nft.Options, ports []string) error {
	a := &d.applied
	if sameKernelPath(o, a.opts) && slices.Equal(ports, a.ports) {
		return nil
	}
	r, err := nft.Install(d.conn, o, d.method)
	if err != nil {
		return err
	}
	d.rs.Store(r)
	a.opts, a.ports = o, ports
	if err := d.watch.installed(); err != nil {
		d.log.Warn("reading the table just installed", "err", err)
	}
	return nil
}

// swapPolicy puts next in force in the engine and the inventory, keeping
// the flows: the tracked ones are judged again under it (moved to their
// new classes, cut when now denied).
func (d *Daemon) swapPolicy(ctx context.Context, next *Loaded) rejudgeResult {
	d.eng.Swap(next.Policy, d.opts.Now().UnixNano())
	if err := d.rs.Load().ForgetOpenings(); err != nil {
		d.log.Warn("forgetting the openings the old policy accepted", "err", err)
	}
	d.devs.id.Store(inventory.NewIdentifier(next.Policy))
	d.applied.running = next
	res, err := rejudge(ctx, d.ct, d.eng, d.marks, d.opts.Now())
	if err != nil {
		d.log.Error("judging tracked flows again", "err", err)
	}
	return res
}

// sweepState is what the periodic work remembers between ticks.
type sweepState struct {
	lastPass, lastSave time.Time
	// overflows is the kernel's count of packets it could not hand over,
	// as last alerted.
	overflows uint64
	vols      *volumes
	queues    *queueWatch
	// kernelDrops raises alerts for what the kernel dropped on its own
	// (spoofed ARP and ND, floods, reverse-path failures).
	kernelDrops kernelDropWatch
}

func (s *sweepState) init(d *Daemon) {
	s.lastPass, s.lastSave = d.opts.Now(), d.opts.Now()
	s.vols = newVolumes()
	s.queues = newQueueWatch()
	if kd, err := queue.KernelDrops(d.cfg.QueueBase, d.cfg.Queues); err == nil {
		// Counts from before this start are not this run's news.
		s.overflows = kd.QueueFull + kd.Undelivered
	}
}

// sweep is the work of every second: expire flows, tell the inventory of
// the flows it has not heard of yet, count queue overflows,
// and every 10 s pass over conntrack; every minute save the inventory.
func (d *Daemon) sweep(ctx context.Context, now time.Time) {
	d.eng.Sweep(now.UnixNano())
	d.devs.flush()
	d.countOverflows()
	s := &d.sweeps
	if c, err := d.rs.Load().Counters(); err == nil {
		s.kernelDrops.check(c, d.alerts.Raise)
	}
	if err := s.queues.observe(now, d.adapter.Stats()); err != nil {
		d.fail("queue", err, true)
	}
	if now.Sub(s.lastPass) >= 10*time.Second {
		s.lastPass = now
		d.refreshClasses(now)
		d.conntrackPass(ctx, now)
	}
	if now.Sub(s.lastSave) >= time.Minute {
		s.lastSave = now
		if err := d.inv.Save(); err != nil {
			d.log.Warn("saving the device inventory", "err", err)
		}
		d.saveRecord()
	}
}

// countOverflows alerts packets the kernel could not hand over: a full
// queue (dropped when on_queue_full = "drop"; with "open" the kernel lets
// them through uncounted) or a full socket buffer (ENOBUFS).
func (d *Daemon) countOverflows() {
	var n uint64
	for _, q := range d.adapter.Stats() {
		n += q.ENOBUFS
	}
	if kd, err := queue.KernelDrops(d.cfg.QueueBase, d.cfg.Queues); err == nil {
		n += kd.QueueFull + kd.Undelivered
		d.queueDrops.Store(kd)
	}
	if s := &d.sweeps; n > s.overflows {
		d.alerts.Raise(alert.Alert{Type: alert.TypeQueueOverflow, Count: int(n - s.overflows),
			Message: fmt.Sprintf("queue overflow: %d packets the kernel could not hand to picoseg (on_queue_full = %s)", n-s.overflows, d.cfg.OnQueueFull)})
		s.overflows = n
	}
}

// conntrackPass takes the conntrack table a flow at a time (a gateway with
// a hundred thousand flows never holds them all at once): device byte
// counts and budgets come from conntrack, which sees every packet, and a
// closing time window must reach fast-pathed flows too.
func (d *Daemon) conntrackPass(ctx context.Context, now time.Time) {
	pol, vols := d.eng.Policy(), d.sweeps.vols
	budgets, windows := vols.needed(pol), hasWindows(pol)
	identify := d.devs.id.Load().Identify
	var judged rejudgeResult
	d.devs.counts.Begin()
	if budgets {
		vols.begin()
	}
	err := d.ct.Each(ctx, func(f conntrack.Flow) error {
		d.devs.counts.Flow(&f, now, identify)
		if budgets {
			vols.flow(&f, d.eng, d.marks, d.ct, now)
		}
		if windows {
			return rejudgeFlow(f, d.ct, d.eng, d.marks, now, &judged)
		}
		return nil
	})
	d.devs.counts.End()
	if budgets {
		if n, verr := vols.end(); verr != nil {
			d.log.Warn("holding fast-pathed flows to their device budgets", "err", verr)
		} else if n > 0 {
			d.log.Info("flows cut by their device budgets", "flows", n)
		}
	}
	if judged.Cut > 0 {
		d.log.Info("flows cut by their time window", "flows", judged.Cut)
	}
	if err != nil {
		d.log.Warn("reading conntrack", "err", err)
	}
}
