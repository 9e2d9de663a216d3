//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/learn"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// Daemon is one run of `picoseg run`: the parts that join the engine to the
// kernel, and the main loop that reloads, sweeps and stops them. Only the
// main loop changes the kernel after start; status reads from any
// goroutine.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	cur     *Loaded       // the policy of the start
	cfg     config.Daemon // the start's [daemon] settings; reloads keep them
	marks   nft.Marks
	socket  string

	lock   *os.File
	conn   *nft.Conn
	method nft.QueueMethod
	// applied is what is in force from the policy and the interfaces;
	// the main loop's only.
	applied applied
	// The ruleset is replaced when a reload brings new class checks or
	// the table is restored; status reads it from another goroutine.
	rs    atomic.Pointer[nft.Ruleset]
	watch *tableWatch
	// bridged lists the zones whose same-bridge traffic is judged, for
	// status.
	bridged atomic.Pointer[[]string]

	alerts  *alert.Dispatcher
	eng     *engine.Engine
	ct      *conntrack.Conn
	inv     *inventory.Inventory
	devs    *devices
	record  *learn.Recorder
	reg     *metrics.Registry
	adapter *queue.Adapter
	// queueDrops holds the kernel's queue.Drops, refreshed every second.
	queueDrops atomic.Value

	reloads, reloadFailures, restores atomic.Uint64
	// ifaceChanges counts the interface changes put in force.
	ifaceChanges atomic.Uint64

	// The sweep's state; the main loop's only.
	sweeps sweepState

	// tableEvents wakes the main loop when nftables changed, and
	// ifaceEvents when the interfaces may have.
	tableEvents, ifaceEvents chan struct{}
	// errs carries the parts' errors (queue, status server, metrics) to
	// the main loop.
	errs chan partError
	// fatal holds the first fatal error of a part.
	fatal  chan partError
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// undo holds what start did that stop must undo, in the order done.
	undo []func()
}

// partError is an error of one of the daemon's parts. A fatal one ends the
// run: the supervisor restarts the daemon.
type partError struct {
	part  string
	err   error
	fatal bool
}

func (e partError) Error() string { return e.part + ": " + e.err.Error() }

func (e partError) Unwrap() error { return e.err }

// Run is `picoseg run`: it serves until ctx is done, a stop signal arrives
// on opts.Signals, or a part fails; SIGHUP on opts.Signals reloads the
// policy. It returns the first fatal error of the daemon's parts.
func Run(ctx context.Context, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := start(ctx, cancel, opts)
	if err != nil {
		return err
	}
	err = d.loop(ctx)
	return d.stop(err)
}

// start brings every part up. On failure it undoes what it did (the table
// is left as on_daemon_down says) and returns the error.
func start(ctx context.Context, cancel context.CancelFunc, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Daemon{opts: opts, log: opts.Logger, started: opts.Now(), errs: make(chan partError, 8), fatal: make(chan partError, 1), cancel: cancel,
		tableEvents: make(chan struct{}, 1), ifaceEvents: make(chan struct{}, 1)}
	if err := d.startAll(ctx); err != nil {
		d.halt()
		return nil, err
	}
	d.announce()
	return d, nil
}

func (d *Daemon) startAll(ctx context.Context) (err error) {
	ifs, err := readIfaces()
	if err != nil {
		return err
	}
	if d.cur, err = load(&d.opts, d.log, ifs.all()); err != nil {
		return err
	}
	d.cfg = d.cur.Config.Daemon
	if d.marks, err = nft.NewMarks(d.cfg.MarkMask); err != nil {
		return err
	}
	// Nothing touches nftables or conntrack before the lock is held: a
	// second daemon must leave the first one's table and marks alone.
	if err := d.takeLock(); err != nil {
		return err
	}
	if err := d.startKernel(ifs); err != nil {
		return err
	}
	if err := d.listenTableEvents(ctx); err != nil {
		return err
	}
	if err := d.watchLinks(ctx); err != nil {
		return err
	}
	if err := d.startParts(ctx); err != nil {
		return err
	}
	return d.dropPrivileges()
}

// startKernel installs the table, for the interfaces ifs, and opens
// conntrack.
func (d *Daemon) startKernel(ifs ifaces) (err error) {
	if d.alerts, err = openAlerts(d.cur, d.opts.Now, d.log); err != nil {
		return err
	}
	d.atStop(func() { d.alerts.Close() })
	spaOpts, err := spaOptions(d.cur.Policy, d.opts.Now())
	if err != nil {
		return err
	}
	d.eng = engine.New(d.cur.Policy, engine.Options{FlowCapacity: d.cfg.FlowTableSize, Sink: d.alerts, SPA: spaOpts})
	if d.conn, err = nft.Dial(0); err != nil {
		return err
	}
	if d.method, err = nft.Probe(d.conn); err != nil {
		return err
	}
	d.log.Info("queue path", "method", d.method.String(), "why", map[nft.QueueMethod]string{
		nft.QueueNative:  "the kernel has nft_queue",
		nft.QueueXtables: "no nft_queue in this kernel: using the xtables NFQUEUE target through nft_compat",
	}[d.method])
	d.applied = applied{base: baseOptions(d.cfg, d.marks), running: d.cur}
	d.enableBridgeFilter(ifs)
	d.applied.opts = withPolicy(d.applied.base, d.cur.Policy, ifs, d.opts.Now())
	d.applied.ports = ifs.portsOf(d.applied.opts.Bridges)
	installed, err := nft.Install(d.conn, d.applied.opts, d.method)
	if err != nil {
		return err
	}
	d.rs.Store(installed)
	d.atStop(d.removeTable)
	if d.watch, err = newTableWatch(); err != nil {
		return err
	}
	d.atStop(d.watch.close)
	if err := d.watch.installed(); err != nil {
		return err
	}
	if d.ct, err = conntrack.Open(); err != nil {
		return err
	}
	d.atStop(func() { d.ct.Close() })
	if err := conntrack.EnableAccounting(); err != nil {
		d.log.Warn("conntrack accounting is off: device byte counts only cover what picoseg judged", "err", err)
	}
	return nil
}

// clearStaleMarks makes every flow marked by an earlier run judged again.
// It runs once the queues are bound: a flow cleared before, under
// on_daemon_down = "closed", would lose packets until they were.
func (d *Daemon) clearStaleMarks() {
	if n, err := d.ct.ClearMarks(d.marks.Mask); err != nil {
		d.log.Warn("clearing stale conntrack marks", "err", err)
	} else if n > 0 {
		d.log.Info("cleared stale picoseg marks: those flows are judged again", "flows", n)
	}
}

// baseOptions are the ruleset options that come from the [daemon] section
// alone.
func baseOptions(d config.Daemon, marks nft.Marks) nft.Options {
	return nft.Options{
		QueueBase: d.QueueBase, Queues: d.Queues, Marks: marks, FailClosed: d.OnDaemonDown == "closed",
		NewFlowRate: perSecond(d.NewFlowRate), NewFlowBurst: 2 * perSecond(d.NewFlowRate),
		GlobalNewFlowRate: globalNewFlowFactor * perSecond(d.NewFlowRate), GlobalNewFlowBurst: 2 * globalNewFlowFactor * perSecond(d.NewFlowRate),
	}
}

// atStop registers what stop must undo.
func (d *Daemon) atStop(f func()) { d.undo = append(d.undo, f) }

// removeTable leaves the table as on_daemon_down says.
func (d *Daemon) removeTable() {
	if d.cfg.OnDaemonDown == "closed" {
		d.log.Info("table inet picoseg kept (on_daemon_down = closed): new flows are dropped until picoseg runs again; accepted flows keep flowing")
		return
	}
	if err := d.rs.Load().Remove(); err != nil {
		d.log.Error("removing table inet picoseg", "err", err)
	}
}

// fail hands a part's error to the main loop. It never blocks: past the
// first few errors, the main loop has enough to act on.
func (d *Daemon) fail(part string, err error, fatal bool) {
	e := partError{part: part, err: err, fatal: fatal}
	if fatal {
		// The first fatal error ends the run. It has a slot of its own, so
		// that a burst of non-fatal ones cannot crowd it out and leave a
		// daemon that looks healthy.
		select {
		case d.fatal <- e:
		default:
		}
		return
	}
	select {
	case d.errs <- e:
	default:
	}
}

// announce logs and alerts that the daemon is judging packets.
func (d *Daemon) announce() {
	c, p := d.cfg, d.cur.Policy
	d.log.Info("picoseg running", "policy", d.opts.ConfigPath, "hash", p.Hash, "mode", p.Mode.String(),
		"queues", c.Queues, "queue_base", c.QueueBase, "on_daemon_down", c.OnDaemonDown, "on_queue_full", c.OnQueueFull,
		"zones", len(p.Zones), "devices", len(p.Devices), "rules", len(p.Rules), "socket", d.socket)
	d.alerts.Raise(alert.Alert{Type: alert.TypeDaemonStarted, Reason: "policy " + d.opts.ConfigPath + " (" + p.Hash + ")",
		Message: "picoseg started: " + p.Mode.String() + " mode, queue path " + d.method.String()})
}

// loop serves signals, ticks and the parts' errors until the run ends; it
// returns the first fatal error.
func (d *Daemon) loop(ctx context.Context) error {
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	// A look at the table at every nftables event, and every half second
	// in case an event was missed: a lost table is restored within a
	// second at worst.
	check := time.NewTicker(500 * time.Millisecond)
	defer check.Stop()
	var lastCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-d.opts.Signals:
			if s == syscall.SIGHUP {
				d.reload(ctx)
				continue
			}
			d.log.Info("stopping", "signal", s.String())
			d.alerts.Raise(alert.Alert{Type: alert.TypeDaemonStopped, Reason: s.String(), Message: "picoseg stopping on " + s.String() + ", on_daemon_down = " + d.cfg.OnDaemonDown})
			return nil
		case e := <-d.fatal:
			return e
		case e := <-d.errs:
			d.log.Error("part failed; picoseg keeps judging", "part", e.part, "err", e.err)
		case <-check.C:
			d.checkTable()
			lastCheck = time.Now()
		case <-d.tableEvents:
			// Another program's stream of nftables changes must not keep
			// the loop busy: at most one look per 50 ms on events.
			if time.Since(lastCheck) >= 50*time.Millisecond {
				d.checkTable()
				lastCheck = time.Now()
			}
		case <-d.ifaceEvents:
			d.checkIfaces(ctx)
		case now := <-sweep.C:
			d.sweep(ctx, now)
		}
	}
}

// stop ends the parts and undoes start. A fatal error a part reported
// while the run was ending is returned too, not lost.
func (d *Daemon) stop(err error) error {
	d.halt()
	for err == nil {
		select {
		case e := <-d.fatal:
			if !errors.Is(e.err, context.Canceled) {
				err = e
			}
			continue
		default:
		}
		break
	}
	if err != nil {
		return err
	}
	d.log.Info("picoseg stopped")
	return nil
}

// halt ends the parts and undoes what start did, in reverse order.
func (d *Daemon) halt() {
	d.cancel()
	d.wg.Wait()
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	d.undo = nil
}

// goPart runs f in a goroutine that stop waits for.
func (d *Daemon) goPart(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

var errQueueStopped = errors.New("the queue adapter stopped")

// queueBindTimeout bounds how long start waits for every queue to be bound.
const queueBindTimeout = 10 * time.Second

// startQueue binds the queues. A queue that cannot be bound (another
// program owns its number) fails the start: a daemon that says "running"
// while every new flow bypasses it is worse than one that is down.
func (d *Daemon) startQueue(ctx context.Context, h *handler) (err error) {
	d.adapter, err = queue.New(queue.Options{
		QueueBase: d.cfg.QueueBase, Queues: d.cfg.Queues, FailOpen: d.cfg.OnQueueFull == "open",
		MaxQueueLen: d.cfg.QueueMaxLen, MarkMask: d.marks.Mask, Logger: d.log, Now: d.opts.Now,
	}, h)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	d.goPart(func() {
		// pkg/queue re-opens a queue that fails later, with back-off;
		// Run returns an error only when it could not start.
		err := d.adapter.Run(ctx)
		if err == nil && ctx.Err() == nil {
			err = errQueueStopped
		}
		done <- err
		if err != nil && ctx.Err() == nil {
			d.fail("queue", err, true)
		}
	})
	select {
	case <-d.adapter.Ready():
		return nil
	case err := <-done:
		if err == nil {
			err = errQueueStopped
		}
		return fmt.Errorf("queues %d-%d: %w", d.cfg.QueueBase, int(d.cfg.QueueBase)+d.cfg.Queues-1, err)
	case <-time.After(queueBindTimeout):
		return fmt.Errorf("queues %d-%d not bound after %v", d.cfg.QueueBase, int(d.cfg.QueueBase)+d.cfg.Queues-1, queueBindTimeout)
	}
}
