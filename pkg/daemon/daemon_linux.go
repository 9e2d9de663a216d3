//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// Run is `picoseg run`: it serves until ctx is done or SIGTERM/SIGINT, and
// reloads the policy on SIGHUP.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	started := opts.Now()
	if os.Getenv("GOGC") == "" {
		// Most of the heap is the flow table, allocated once and kept:
		// the default GOGC=100 would let garbage grow as large again
		// before collecting, which a 128 MB router cannot spare.
		debug.SetGCPercent(50)
	}

	cur, err := load(&opts, log)
	if err != nil {
		return err
	}
	cfg := cur.Config
	d := cfg.Daemon
	marks, err := nft.NewMarks(d.MarkMask)
	if err != nil {
		return err
	}
	socket := d.Socket
	if opts.Socket != "" {
		socket = opts.Socket
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	alerts, err := openAlerts(cur, opts.Now, log)
	if err != nil {
		return err
	}
	defer alerts.Close()
	eng := engine.New(cur.Policy, engine.Options{FlowCapacity: d.FlowTableSize, Sink: alerts})

	conn, err := nft.Dial(0)
	if err != nil {
		return err
	}
	method, err := nft.Probe(conn)
	if err != nil {
		return err
	}
	log.Info("queue path", "method", method.String(), "why", map[nft.QueueMethod]string{
		nft.QueueNative:  "the kernel has nft_queue",
		nft.QueueXtables: "no nft_queue in this kernel: using the xtables NFQUEUE target through nft_compat",
	}[method])

	bridged := enableBridgeFilter(cur, log)

	failClosed := d.OnDaemonDown == "closed"
	nftOpts := nft.Options{
		QueueBase: d.QueueBase, Queues: d.Queues, Marks: marks, FailClosed: failClosed,
		NewFlowRate: perSecond(d.NewFlowRate), NewFlowBurst: 2 * perSecond(d.NewFlowRate),
		ClassBytes: cur.Policy.ClassBytes,
	}
	installed, err := nft.Install(conn, nftOpts, method)
	if err != nil {
		return err
	}
	// The ruleset is replaced when a reload brings new class checks; status
	// reads it from another goroutine.
	var rs atomic.Pointer[nft.Ruleset]
	rs.Store(installed)
	removeTable := func() {
		if failClosed {
			log.Info("table inet picoseg kept (on_daemon_down = closed): new flows are dropped until picoseg runs again; accepted flows keep flowing")
			return
		}
		if err := rs.Load().Remove(); err != nil {
			log.Error("removing table inet picoseg", "err", err)
		}
	}

	ct, err := conntrack.Open()
	if err != nil {
		removeTable()
		return err
	}
	defer ct.Close()
	if n, err := ct.ClearMarks(marks.Mask); err != nil {
		log.Warn("clearing stale conntrack marks", "err", err)
	} else if n > 0 {
		log.Info("cleared stale picoseg marks: those flows are judged again", "flows", n)
	}

	inv, err := openInventory(cur, opts.InventoryState, log)
	if err != nil {
		removeTable()
		return err
	}
	devs := newDevices(inv, inventory.NewIdentifier(cur.Policy), alerts.Raise)
	if err := conntrack.EnableAccounting(); err != nil {
		log.Warn("conntrack accounting is off: device byte counts only cover what picoseg judged", "err", err)
	}
	reg := metrics.NewRegistry()
	h := newHandler(eng, marks, d.QueueBase, d.Queues, newIfaceZones(interfaceNames), opts.Now)
	h.flowStarted = devs.flowStarted
	h.failOpen, h.raise = !failClosed, alerts.Raise
	h.latency = reg.Histogram("picoseg_verdict_seconds", "Time to judge one queued packet.", metrics.LatencyBuckets())
	adapter, err := queue.New(queue.Options{
		QueueBase: d.QueueBase, Queues: d.Queues, FailOpen: d.OnQueueFull == "open",
		MarkMask: marks.Mask, Logger: log,
	}, h)
	if err != nil {
		removeTable()
		return err
	}
	var queueDrops atomic.Value // queue.Drops, refreshed every second
	registerMetrics(reg, eng, adapter, alerts, func() queue.Drops {
		d, _ := queueDrops.Load().(queue.Drops)
		return d
	})
	if l := cur.Config.Metrics.Listen; l != "" {
		go func() {
			if err := metrics.Serve(ctx, l, reg); err != nil {
				log.Error("metrics endpoint", "listen", l, "err", err)
			}
		}()
		log.Info("metrics", "listen", l)
	}
	defer func() {
		if err := inv.Save(); err != nil {
			log.Warn("saving the device inventory", "err", err)
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	var queueErr error
	go func() {
		defer wg.Done()
		queueErr = adapter.Run(ctx)
	}()

	var reloads, reloadFailures atomic.Uint64
	var policyFile = opts.ConfigPath
	status := func() Status {
		pol := eng.Policy()
		s := eng.Stats()
		st := Status{
			Version: opts.Version, PID: os.Getpid(), StartedAt: started, Uptime: opts.Now().Sub(started).Seconds(),
			PolicyFile: policyFile, PolicyHash: pol.Hash, Generation: eng.Generation(), Mode: pol.Mode.String(),
			QueueMethod: method.String(), OnDown: d.OnDaemonDown, OnQueueFull: d.OnQueueFull, BridgeFilter: bridged,
			Packets: s.Packets.Load(), CacheHits: s.CacheHits.Load(), NewFlows: s.NewFlows.Load(), Undecodable: s.Undecodable.Load(),
			FlowsTracked: eng.Flows().Len(), FlowEvictions: eng.Flows().Evictions(), Events: s.Events.Load(),
			Alerts:  alerts.Stats(),
			Reloads: reloads.Load(), ReloadFailures: reloadFailures.Load(),
		}
		st.Verdicts, st.Flows = statusOf(s)
		for _, q := range adapter.Stats() {
			st.Queues = append(st.Queues, QueueStatus{Queue: q.Queue, Received: q.Received, Accepted: q.Accepted, Dropped: q.Dropped, ENOBUFS: q.ENOBUFS, Reopens: q.Reopens})
		}
		if c, err := rs.Load().Counters(); err == nil {
			st.Kernel = map[string]uint64{"fast_path": c.FastPath.Packets, "queued": c.Queued.Packets,
				"guard_dropped": c.GuardDropped.Packets, "flow_dropped": c.FlowDropped.Packets, "verdict_dropped": c.VerdictDropped.Packets,
				"tripped": c.Tripped.Packets}
			if kd, ok := queueDrops.Load().(queue.Drops); ok {
				st.Kernel["queue_full_dropped"], st.Kernel["queue_undelivered"] = kd.QueueFull, kd.Undelivered
			}
		}
		return st
	}
	stopStatus, err := serveStatus(ctx, socket, handlers{
		"status":  func(string) any { return status() },
		"flows":   func(device string) any { return flowViews(eng, opts.Now(), device, 500) },
		"alerts":  func(string) any { return alerts.Recent(100) },
		"devices": func(string) any { return inv.Devices() },
	})
	if err != nil {
		cancel()
		wg.Wait()
		removeTable()
		return err
	}
	defer stopStatus()

	select {
	case <-adapter.Ready():
	case <-time.After(5 * time.Second):
		log.Warn("queues not bound after 5 s")
	}
	log.Info("picoseg running", "policy", opts.ConfigPath, "hash", cur.Policy.Hash, "mode", cur.Policy.Mode.String(),
		"queues", d.Queues, "queue_base", d.QueueBase, "on_daemon_down", d.OnDaemonDown, "on_queue_full", d.OnQueueFull,
		"zones", len(cur.Policy.Zones), "devices", len(cur.Policy.Devices), "rules", len(cur.Policy.Rules), "socket", socket)

	alerts.Raise(alert.Alert{Type: alert.TypeDaemonStarted, Reason: "policy " + opts.ConfigPath + " (" + cur.Policy.Hash + ")",
		Message: "picoseg started: " + cur.Policy.Mode.String() + " mode, queue path " + method.String()})
	var overflows uint64
	if kd, err := queue.KernelDrops(d.QueueBase, d.Queues); err == nil {
		// Counts from before this start are not this run's news.
		overflows = kd.QueueFull + kd.Undelivered
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	lastPass, lastSave := opts.Now(), opts.Now()
	vols := newVolumes()

	reload := func() {
		start := time.Now()
		reloads.Add(1)
		next, err := load(&opts, log)
		if err != nil {
			reloadFailures.Add(1)
			// Every problem, each as FILE:LINE:COL: message, on its own
			// log line; the running policy stays.
			log.Error("policy reload failed: keeping the running policy", "policy", opts.ConfigPath, "errors", err.Error())
			alerts.Raise(alert.Alert{Type: alert.TypePolicyReloadFailed, Reason: err.Error(),
				Message: "policy reload failed, the running policy stays: " + firstLine(err.Error())})
			return
		}
		if next.Config.Daemon.Queues != d.Queues || next.Config.Daemon.QueueBase != d.QueueBase || next.Config.Daemon.MarkMask != d.MarkMask {
			log.Warn("queues, queue_base and mark_mask take effect at the next start, not on reload")
		}
		if !slices.Equal(next.Policy.ClassBytes, nftOpts.ClassBytes) {
			// New class checks: the table is replaced in one transaction
			// (conntrack marks are untouched); flows are moved to their
			// new classes below.
			o := nftOpts
			o.ClassBytes = next.Policy.ClassBytes
			r, err := nft.Install(conn, o, method)
			if err != nil {
				reloadFailures.Add(1)
				log.Error("policy reload failed: its kernel checks do not install; keeping the running policy", "err", err)
				alerts.Raise(alert.Alert{Type: alert.TypePolicyReloadFailed, Reason: err.Error(), Message: "policy reload failed: " + err.Error()})
				return
			}
			rs.Store(r)
			nftOpts = o
		}
		gen := eng.Swap(next.Policy, opts.Now().UnixNano())
		devs.id.Store(inventory.NewIdentifier(next.Policy))
		res, err := rejudge(ctx, ct, eng, marks, opts.Now())
		if err != nil {
			log.Error("judging tracked flows again after reload", "err", err)
		}
		log.Info("policy reloaded", "hash", next.Policy.Hash, "generation", gen, "flows_checked", res.Checked, "flows_cut", res.Cut, "flows_requeued", res.Cleared, "flows_reclassed", res.Reclassed, "took", time.Since(start))
	}

	for {
		select {
		case <-ctx.Done():
			return shutdown(cancel, &wg, removeTable, log, queueErr)
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload()
				continue
			}
			log.Info("stopping", "signal", s.String())
			alerts.Raise(alert.Alert{Type: alert.TypeDaemonStopped, Reason: s.String(), Message: "picoseg stopping on " + s.String() + ", on_daemon_down = " + d.OnDaemonDown})
			return shutdown(cancel, &wg, removeTable, log, queueErr)
		case now := <-sweep.C:
			eng.Sweep(now.UnixNano())
			// Packets the kernel could not hand over: a full queue (dropped
			// when on_queue_full = "drop"; with "open" the kernel lets them
			// through uncounted) or a full socket buffer (ENOBUFS).
			var n uint64
			for _, q := range adapter.Stats() {
				n += q.ENOBUFS
			}
			if kd, err := queue.KernelDrops(d.QueueBase, d.Queues); err == nil {
				n += kd.QueueFull + kd.Undelivered
				queueDrops.Store(kd)
			}
			if n > overflows {
				alerts.Raise(alert.Alert{Type: alert.TypeQueueOverflow, Count: int(n - overflows),
					Message: fmt.Sprintf("queue overflow: %d packets the kernel could not hand to picoseg (on_queue_full = %s)", n-overflows, d.OnQueueFull)})
				overflows = n
			}
			// Every 10 s, one pass over the conntrack table, a flow at a
			// time (a gateway with a hundred thousand flows never holds
			// them all at once): device byte counts and budgets come from
			// conntrack, which sees every packet, and a closing time window
			// must reach fast-pathed flows too.
			if now.Sub(lastPass) >= 10*time.Second {
				lastPass = now
				pol := eng.Policy()
				budgets, windows := vols.needed(pol), hasWindows(pol)
				identify := devs.id.Load().Identify
				var judged rejudgeResult
				devs.counts.Begin()
				if budgets {
					vols.begin()
				}
				err := ct.Each(ctx, func(f conntrack.Flow) error {
					devs.counts.Flow(&f, now, identify)
					if budgets {
						vols.flow(&f, eng, marks, ct, now)
					}
					if windows {
						return rejudgeFlow(f, ct, eng, marks, now, &judged)
					}
					return nil
				})
				devs.counts.End()
				if budgets {
					if n, verr := vols.end(); verr != nil {
						log.Warn("holding fast-pathed flows to their device budgets", "err", verr)
					} else if n > 0 {
						log.Info("flows cut by their device budgets", "flows", n)
					}
				}
				if judged.Cut > 0 {
					log.Info("flows cut by their time window", "flows", judged.Cut)
				}
				if err != nil {
					log.Warn("reading conntrack", "err", err)
				}
			}
			if now.Sub(lastSave) >= time.Minute {
				lastSave = now
				if err := inv.Save(); err != nil {
					log.Warn("saving the device inventory", "err", err)
				}
			}
		}
	}
}

func shutdown(cancel func(), wg *sync.WaitGroup, removeTable func(), log *slog.Logger, queueErr error) error {
	cancel()
	wg.Wait()
	removeTable()
	if queueErr != nil && !errors.Is(queueErr, context.Canceled) {
		return queueErr
	}
	log.Info("picoseg stopped")
	return nil
}

// enableBridgeFilter turns on br_netfilter for zones that ask for it, so
// that traffic between two ports of one bridge passes the forward hook, and
// warns about bridged zones that did not ask. It returns the zones it
// covered.
func enableBridgeFilter(cur *Loaded, log *slog.Logger) []string {
	var zones []string
	for _, z := range cur.Policy.Zones {
		if !z.BridgeFilter {
			continue
		}
		zones = append(zones, z.Name)
	}
	if len(zones) == 0 {
		return nil
	}
	const v4, v6 = "/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
	if _, err := os.Stat(v4); err != nil {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			log.Error("bridge_filter: cannot load br_netfilter: same-bridge traffic is NOT judged", "zones", zones, "err", err, "output", string(out))
			return nil
		}
	}
	for _, f := range []string{v4, v6} {
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			log.Error("bridge_filter: same-bridge traffic is NOT judged", "zones", zones, "err", err)
			return nil
		}
	}
	log.Info("bridge_filter on: traffic between devices on the same bridge is judged", "zones", zones)
	return zones
}
