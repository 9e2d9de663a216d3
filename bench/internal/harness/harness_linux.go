//go:build linux

package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picoseg/picoseg/bench/internal/flowmem"
	"github.com/picoseg/picoseg/bench/internal/load"
	"github.com/picoseg/picoseg/bench/internal/policygen"
	"github.com/picoseg/picoseg/bench/internal/stats"
	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/daemon"
	"github.com/picoseg/picoseg/pkg/nft"
)

// setup is what sits in the gateway between the devices and the wan.
type setup string

const (
	setupNone    setup = "no firewall"
	setupPicoseg setup = "picoseg"
	setupBareGo  setup = "bare Go consumer"
	setupBareC   setup = "bare C consumer"
	// setupCompare is another picoseg binary (Config.Compare), measured
	// on new flows only: a change is judged against the build before it in
	// the same alternating rounds.
	setupCompare setup = "picoseg (compared build)"
)

// queueBase is the first queue of picoseg and of the baselines.
const queueBase = 4200

// newFlowRate is the per-source guard of the benchmark policy, far above
// the default 200/s: with the default the guard, not the consumer, would be
// what the new-flow figures measure.
const newFlowRate = "1000000/s"

// trackedGoal is how many flows the daemon must track for the RSS figure;
// the flow table is sized above it.
const (
	trackedGoal   = 100000
	flowTableSize = 131072
)

type env struct {
	cfg     Config
	lab     *lab.Lab
	gw, wan *lab.Host
	devices []*lab.Host
	dir     string
	sock    string
	policy  string // the main rounds' policy file
	marks   nft.Marks

	streamRecv atomic.Uint64 // datagrams the stream sink received
	consumer   int           // PID of the running queue consumer, 0 for none
}

func (e *env) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		fmt.Fprintf(e.cfg.Log, "bench: "+format+"\n", args...)
	}
}

// samples collects the raw measurements of every round.
type samples struct {
	throughput                 []float64 // picoseg / none, per interleaved pair
	throughputNone             []float64 // Gbit/s
	throughputPicoseg          []float64 // Gbit/s
	anatomy                    map[string][]float64
	burst                      map[string][]float64 // one-device UDP flows/s by setup
	burstRatio                 map[string][]float64 // by setup, over the bare C consumer's burst in the same round
	burstQueues                string               // how one device's flows spread over the queues
	burstCPU                   map[string][]float64 // consumer CPU µs per flow in the burst, by setup
	burstBusy                  map[string][]float64 // machine-wide busy CPU µs per flow in the burst, by setup
	burstSwitches              map[string][]float64 // consumer context switches per flow in the burst, by setup
	tcpPerFlow, bulkPerFlow    []float64
	newFlows                   map[setup][]float64
	newFlowsTCP                map[setup][]float64
	newFlowsUDP                map[setup][]float64
	cpuPerFlow                 map[setup][]float64
	ratioC, ratioGo, ratioNone []float64
	latP50, latP99             []float64
	rss                        []float64
	tracked                    []float64
	reloadMS, reloadLost       []float64
	notes                      []string

	// appFlows and appPerFlow are by appVariant key (app_linux.go).
	appFlows, appPerFlow map[string][]float64
	appRatio             []float64
}

// Run builds a lab, measures every figure and returns the report.
func Run(ctx context.Context, cfg Config) (*stats.Report, error) {
	if err := lab.Available(); err != nil {
		return nil, err
	}
	if _, err := lab.Cleanup(ctx); err != nil {
		return nil, fmt.Errorf("removing labs left by a crashed run: %w", err)
	}
	loadStart := loadAvg()
	opts := lab.DefaultOptions()
	opts.IPv6 = false
	l, err := lab.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	stop := l.CloseOnSignal(ctx)
	defer stop()

	dir, err := os.MkdirTemp("", "picoseg-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e := &env{cfg: cfg, lab: l, gw: l.Gateway, wan: l.Host("wan"), dir: dir,
		sock: filepath.Join(dir, "picoseg.sock"), marks: nft.DefaultMarks()}
	for _, name := range []string{"cam", "plug1", "plug2", "hub"} {
		e.devices = append(e.devices, l.Host(name))
	}
	if err := e.prepare(ctx); err != nil {
		return nil, err
	}

	s := &samples{newFlows: map[setup][]float64{}, newFlowsTCP: map[setup][]float64{}, newFlowsUDP: map[setup][]float64{}, cpuPerFlow: map[setup][]float64{},
		anatomy: map[string][]float64{}, burst: map[string][]float64{}, burstRatio: map[string][]float64{}, burstCPU: map[string][]float64{},
		burstBusy: map[string][]float64{}, burstSwitches: map[string][]float64{}}
	if err := e.checkBaselineRuleset(ctx, s); err != nil {
		return nil, fmt.Errorf("baseline ruleset: %w", err)
	}
	// A failure in one of these parts ends that part, not the run: the
	// figures measured so far are reported, with the error in the notes.
	partial := func(part string, err error) {
		if err != nil {
			e.logf("%s: %v", part, err)
			s.notes = append(s.notes, fmt.Sprintf("%s stopped early: %v", part, firstLine(err.Error())))
		}
	}
	partial("throughput pairs", e.throughputPairs(ctx, s))
	for round := 1; round <= cfg.Rounds; round++ {
		if err := e.round(ctx, round, s); err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
	}
	partial("one-device burst", e.bursts(ctx, s))
	partial("kernel-path variants", e.anatomy(ctx, s))
	partial("application identity", e.appRows(ctx, s))
	if err := e.reloads(ctx, s); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	rep := e.report(s)
	if cfg.Profile {
		e.logf("kernel profiles (perf): an iperf3 flow and a one-device burst through picoseg")
		if err := e.profiles(ctx, rep); err != nil {
			rep.Extra = append(rep.Extra, stats.Section{Title: "Kernel profile", Body: "skipped: " + err.Error()})
		}
	}
	rep.Context["load_average_at_start"] = loadStart
	rep.Context["load_average_at_end"] = loadAvg()
	if cfg.Micro {
		e.logf("micro-benchmarks (go test -bench) of pkg/engine, pkg/flow, pkg/packet, pkg/capture")
		if err := micro(ctx, cfg.Repo, rep); err != nil {
			rep.Extra = append(rep.Extra, stats.Section{Title: "Micro-benchmarks", Body: "failed: " + err.Error()})
		}
	}
	return rep, nil
}

// prepare writes the policy, shortens conntrack timeouts in the gateway and
// starts the servers on the wan host.
func (e *env) prepare(ctx context.Context) error {
	e.policy = filepath.Join(e.dir, "bench.toml")
	text := policygen.Generate(e.spec(e.cfg.Devices, e.cfg.Rules, "main rounds"))
	if err := os.WriteFile(e.policy, []byte(text), 0o600); err != nil {
		return err
	}
	// Per-namespace timeouts: a reset TCP flow and an unreplied UDP flow
	// leave the table within a second or two instead of 10 s and 30 s.
	for k, v := range map[string]string{
		"net/netfilter/nf_conntrack_tcp_timeout_close": "1",
		"net/netfilter/nf_conntrack_udp_timeout":       "2",
	} {
		if err := e.gw.Do(func() error { return os.WriteFile("/proc/sys/"+k, []byte(v), 0o644) }); err != nil {
			e.logf("could not set %s: %v", k, err)
		}
	}
	srv, err := e.wan.Start(ctx, e.cfg.Self, "serve")
	if err != nil {
		return err
	}
	if _, err := e.wan.StartIperf3Server(ctx, load.PortIperf3); err != nil {
		return err
	}
	pc, err := e.wan.ListenPacket("udp4", fmt.Sprintf(":%d", load.PortUDPStream))
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 256)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, ok := load.Seq(buf[:n]); ok {
				e.streamRecv.Add(1)
			}
		}
	}()
	go func() { <-ctx.Done(); pc.Close() }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.Output(), "serving") {
		if time.Now().After(deadline) {
			return fmt.Errorf("load servers did not start: %s", srv.Output())
		}
		select {
		case <-srv.Done():
			return fmt.Errorf("load servers exited: %v", srv.Wait())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (e *env) spec(devices, rules int, comment string) policygen.Spec {
	var labDevs []policygen.LabDevice
	for _, h := range e.devices {
		labDevs = append(labDevs, policygen.LabDevice{Name: h.Name, MAC: h.MAC.String(), IP: h.Addr.String()})
	}
	return policygen.Spec{
		Devices: devices, Rules: rules, Lab: labDevs,
		TCPPorts: []string{strconv.Itoa(load.PortIperf3), fmt.Sprintf("%d-%d", load.PortFloodFirst, load.PortSink)},
		UDPPorts: []string{fmt.Sprintf("%d-%d", load.PortUDPEcho, load.PortUDPStream)},
		Queues:   e.cfg.Queues, QueueBase: queueBase, NewFlowRate: newFlowRate, FlowTableSize: flowTableSize,
		Socket: e.sock, Lock: filepath.Join(e.dir, "picoseg.lock"),
		Comment: fmt.Sprintf("picoseg benchmark policy (%s): %d devices, %d rules, generated.\nnew_flow_rate is raised so that the per-source guard is not what is measured.", comment, devices, rules),
	}
}

// round measures every setup once, in a fixed alternating order.
func (e *env) round(ctx context.Context, n int, s *samples) error {
	var noneP50, noneP99 float64
	var rates = map[setup]float64{}
	setups := []setup{setupNone, setupPicoseg, setupBareGo, setupBareC}
	if e.cfg.Compare != "" {
		setups = append(setups, setupCompare)
	}
	for _, su := range setups {
		e.logf("round %d/%d: %s", n, e.cfg.Rounds, su)
		flushConntrack(ctx, e.gw)
		stop, d, err := e.start(ctx, su, e.policy)
		if err != nil {
			return fmt.Errorf("%s: %w", su, err)
		}
		err = func() error {
			if su == setupNone || su == setupPicoseg {
				p50, p99, err := e.latency(ctx)
				if err != nil {
					return err
				}
				if su == setupNone {
					noneP50, noneP99 = p50, p99
				} else {
					s.latP50 = append(s.latP50, p50-noneP50)
					s.latP99 = append(s.latP99, p99-noneP99)
					e.logf("  connect p50 %.0f / %.0f µs, p99 %.0f / %.0f µs", p50, noneP50, p99, noneP99)
				}
			}
			if su == setupPicoseg {
				if err := e.perFlow(ctx, d, s); err != nil {
					return err
				}
			}
			cpu0 := procCPU(e.consumer)
			fr, err := e.flood(ctx, e.cfg.FloodTime, 6, 6)
			if err != nil {
				return err
			}
			if e.consumer != 0 {
				us := (procCPU(e.consumer) - cpu0).Seconds() * 1e6 / float64(fr.TCP+fr.UDP)
				s.cpuPerFlow[su] = append(s.cpuPerFlow[su], us)
				e.logf("  consumer CPU: %.1f µs per new flow", us)
			}
			rate := float64(fr.TCP+fr.UDP) / fr.Seconds
			rates[su] = rate
			s.newFlows[su] = append(s.newFlows[su], rate)
			s.newFlowsTCP[su] = append(s.newFlowsTCP[su], float64(fr.TCP)/fr.Seconds)
			s.newFlowsUDP[su] = append(s.newFlowsUDP[su], float64(fr.UDP)/fr.Seconds)
			e.logf("  new flows: %.0f/s (tcp %.0f/s, udp %.0f/s, %d failed)", rate,
				float64(fr.TCP)/fr.Seconds, float64(fr.UDP)/fr.Seconds, fr.Failed)
			if fr.Failed > 0 {
				e.logf("  failures: %v", fr.Errors)
			}
			if su == setupPicoseg {
				return e.rss(ctx, d, s)
			}
			return nil
		}()
		if serr := stop(); err == nil && serr != nil {
			err = fmt.Errorf("%s: stop: %w", su, serr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", su, err)
		}
	}
	p := rates[setupPicoseg]
	s.ratioC = append(s.ratioC, p/rates[setupBareC])
	s.ratioGo = append(s.ratioGo, p/rates[setupBareGo])
	s.ratioNone = append(s.ratioNone, p/rates[setupNone])
	return nil
}

// picosegProc is a running daemon.
type picosegProc struct {
	proc *lab.Process
	sock string
}

func (d *picosegProc) status() (daemon.Status, error) {
	if d == nil {
		return daemon.Status{}, errors.New("no daemon")
	}
	return daemon.QueryStatus(d.sock)
}

// start brings up su in the gateway and returns how to take it down again.
func (e *env) start(ctx context.Context, su setup, policy string) (func() error, *picosegProc, error) {
	switch su {
	case setupNone:
		return func() error { return nil }, nil, nil
	case setupPicoseg, setupCompare:
		bin := e.cfg.Picoseg
		if su == setupCompare {
			bin = e.cfg.Compare
		}
		p, err := e.gw.Start(ctx, bin, "run", "-c", policy, "--socket", e.sock)
		if err != nil {
			return nil, nil, err
		}
		d := &picosegProc{proc: p, sock: e.sock}
		if err := waitFor(ctx, p, 60*time.Second, func() bool { _, err := d.status(); return err == nil }); err != nil {
			p.Stop()
			return nil, nil, err
		}
		e.consumer = p.PID()
		return func() error { e.consumer = 0; return terminate(p) }, d, nil
	}
	return e.startBaseline(ctx, su, e.baselineOptions())
}

// startBaseline installs a ruleset built from opts with pkg/nft and starts
// the bare consumer of su on its queues.
func (e *env) startBaseline(ctx context.Context, su setup, opts nft.Options) (func() error, *picosegProc, error) {
	if err := e.installRuleset(opts); err != nil {
		return nil, nil, err
	}
	var p *lab.Process
	var err error
	mark := fmt.Sprintf("%#x", e.marks.Accepted(0))
	if su == setupBareGo {
		p, err = e.gw.Start(ctx, e.cfg.BareGo, "-queue-base", strconv.Itoa(queueBase), "-queues", strconv.Itoa(e.cfg.Queues), "-mark", mark)
	} else {
		p, err = e.gw.Start(ctx, e.cfg.BareC, strconv.Itoa(queueBase), strconv.Itoa(e.cfg.Queues), mark)
	}
	if err == nil {
		err = waitFor(ctx, p, 10*time.Second, func() bool { return strings.Contains(p.Output(), "ready") })
	}
	if err != nil {
		if p != nil {
			p.Stop()
		}
		e.removeRuleset()
		return nil, nil, err
	}
	e.consumer = p.PID()
	return func() error {
		e.consumer = 0
		err := terminate(p)
		return errors.Join(err, e.removeRuleset())
	}, nil, nil
}

// baselineOptions are the ruleset options the daemon derives from the
// benchmark policy (pkg/daemon's nftOptions), so that a baseline differs
// from picoseg in its consumer only: the per-device guard and the global cap
// from new_flow_rate, the reverse-path rule and the ARP and neighbour checks
// on the local zones' interfaces (lan0 and br-iot; the wan zone holds the
// default route), the devices' MAC bindings and the gateway's addresses.
// The harness checks the installed tables against the daemon's (sameRuleset).
func (e *env) baselineOptions() nft.Options {
	const rate = 1000000 // newFlowRate
	o := nft.Options{QueueBase: queueBase, Queues: e.cfg.Queues, Marks: e.marks,
		NewFlowRate: rate, NewFlowBurst: 2 * rate, GlobalNewFlowRate: 10 * rate, GlobalNewFlowBurst: 20 * rate}
	for _, name := range []string{lab.IfaceLAN, lab.IfaceIoT} {
		o.ReversePathInterfaces = append(o.ReversePathInterfaces, name)
		o.Bridges = append(o.Bridges, name)
		o.GatewayAddrs = append(o.GatewayAddrs, e.gatewayAddr(name))
	}
	for _, h := range e.devices {
		o.Bindings = append(o.Bindings, nft.Binding{MAC: h.MAC, Addrs: []netip.Addr{h.Addr}})
	}
	for i := 0; i < e.cfg.Devices; i++ {
		mac := net.HardwareAddr{0x02, 0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		o.Bindings = append(o.Bindings, nft.Binding{MAC: mac, Addrs: []netip.Addr{netip.MustParseAddr(policygen.DeviceAddr(i))}})
	}
	return o
}

func (e *env) gatewayAddr(iface string) netip.Addr {
	for _, side := range e.lab.Sides {
		if side.Iface == iface {
			return side.Addr.Addr()
		}
	}
	return netip.Addr{}
}

func (e *env) installRuleset(opts nft.Options) error {
	return e.gw.Do(func() error {
		conn, err := nft.Dial(0)
		if err != nil {
			return err
		}
		method, err := nft.Probe(conn)
		if err != nil {
			return err
		}
		_, err = nft.Install(conn, opts, method)
		return err
	})
}

func (e *env) removeRuleset() error {
	return e.gw.Do(func() error {
		conn, err := nft.Dial(0)
		if err != nil {
			return err
		}
		return nft.Remove(conn)
	})
}

// rulesetText lists the gateway's tables without their counters.
func (e *env) rulesetText(ctx context.Context) string {
	out, _ := e.gw.Command(ctx, "nft", "list", "ruleset").Output()
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "packets ") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// checkBaselineRuleset compares the tables of a baseline with those the
// daemon installed; a difference is a note in the report, since the
// comparison then is not only of the consumers.
func (e *env) checkBaselineRuleset(ctx context.Context, s *samples) error {
	stop, _, err := e.start(ctx, setupPicoseg, e.policy)
	if err != nil {
		return err
	}
	daemonText := e.rulesetText(ctx)
	if err := stop(); err != nil {
		return err
	}
	stop, _, err = e.start(ctx, setupBareC, e.policy)
	if err != nil {
		return err
	}
	baseText := e.rulesetText(ctx)
	if err := stop(); err != nil {
		return err
	}
	if daemonText != baseText {
		s.notes = append(s.notes, "the baselines' ruleset differs from the daemon's:\n\n```\n"+lineDiff(daemonText, baseText)+"\n```")
		e.logf("baseline ruleset differs from the daemon's:\n%s", lineDiff(daemonText, baseText))
	} else {
		e.logf("baseline ruleset is the daemon's")
	}
	return nil
}

// lineDiff lists the lines only one of a and b has (daemon "-", baseline "+").
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+strings.TrimSpace(l))
		case n < 0:
			out = append(out, "+ "+strings.TrimSpace(l))
		}
	}
	sort.Strings(out)
	if len(out) > 40 {
		out = append(out[:40], "...")
	}
	return strings.Join(out, "\n")
}

// terminate asks a process to stop (SIGTERM, so picoseg removes its table)
// and kills it if it does not.
func terminate(p *lab.Process) error {
	syscall.Kill(p.PID(), syscall.SIGTERM)
	select {
	case <-p.Done():
		return nil
	case <-time.After(5 * time.Second):
		return p.Stop()
	}
}

func waitFor(ctx context.Context, p *lab.Process, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v:\n%s", limit, tailOf(p.Output()))
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited at start: %v", p.Wait())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func tailOf(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// flushConntrack empties the gateway's conntrack table, so that no flow of
// the previous setup keeps a mark into the next.
func flushConntrack(ctx context.Context, gw *lab.Host) {
	gw.Run(ctx, "conntrack", "-F")
}

// runLoad runs a load subcommand in h and decodes its JSON answer into out.
func (e *env) runLoad(ctx context.Context, h *lab.Host, out any, args ...string) error {
	cmd := h.Command(ctx, e.cfg.Self, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %s: %w: %s", h.Name, strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %s: %w: %s", h.Name, strings.Join(args, " "), err, b)
	}
	return nil
}

func (e *env) latency(ctx context.Context) (p50, p99 float64, err error) {
	var r load.LatencyResult
	if err := e.runLoad(ctx, e.devices[0], &r, "latency", "-server", e.wan.Addr.String(), "-n", "400"); err != nil {
		return 0, 0, err
	}
	if len(r.Micros) == 0 {
		return 0, 0, errors.New("latency: no connection succeeded")
	}
	return stats.Percentile(r.Micros, 50), stats.Percentile(r.Micros, 99), nil
}

// flood runs the new-flow clients on every device at once.
func (e *env) flood(ctx context.Context, d time.Duration, tcpWorkers, udpWorkers int) (load.FloodResult, error) {
	total, err := e.onEveryDevice(ctx, "flood", "-server", e.wan.Addr.String(), "-duration", d.String(),
		"-tcp", strconv.Itoa(tcpWorkers), "-udp", strconv.Itoa(udpWorkers))
	if err != nil {
		return total, err
	}
	if total.Seconds == 0 {
		return total, errors.New("flood: no time measured")
	}
	return total, nil
}

// onEveryDevice runs the load client's command with args on every device
// at once and adds up what they did: the longest run is the run's time.
func (e *env) onEveryDevice(ctx context.Context, command string, args ...string) (load.FloodResult, error) {
	var mu sync.Mutex
	var total load.FloodResult
	var wg sync.WaitGroup
	errs := make([]error, len(e.devices))
	for i, h := range e.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r load.FloodResult
			errs[i] = e.runLoad(ctx, h, &r, append([]string{command}, args...)...)
			mu.Lock()
			defer mu.Unlock()
			total.TCP += r.TCP
			total.UDP += r.UDP
			total.Failed += r.Failed
			total.Seconds = math.Max(total.Seconds, r.Seconds)
			for k, v := range r.Errors {
				if total.Errors == nil {
					total.Errors = map[string]uint64{}
				}
				total.Errors[k] += v
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

func received(s daemon.Status) uint64 {
	var n uint64
	for _, q := range s.Queues {
		n += q.Received
	}
	return n
}

// perFlow counts the packets that reached userspace per flow: short
// HTTP-like flows, then long bulk flows.
func (e *env) perFlow(ctx context.Context, d *picosegProc, s *samples) error {
	measure := func(flows int, args ...string) (float64, error) {
		before, err := d.status()
		if err != nil {
			return 0, err
		}
		var r load.CountResult
		if err := e.runLoad(ctx, e.devices[1], &r, args...); err != nil {
			return 0, err
		}
		after, err := d.status()
		if err != nil {
			return 0, err
		}
		if r.Completed != flows {
			return 0, fmt.Errorf("%s: %d of %d flows completed", args[0], r.Completed, flows)
		}
		return float64(received(after)-received(before)) / float64(flows), nil
	}
	short, err := measure(200, "short", "-server", e.wan.Addr.String(), "-n", "200")
	if err != nil {
		return err
	}
	bulk, err := measure(4, "bulk", "-server", e.wan.Addr.String(), "-n", "4", "-size", strconv.Itoa(32<<20))
	if err != nil {
		return err
	}
	e.logf("  userspace packets per flow: short %.2f, bulk %.2f", short, bulk)
	s.tcpPerFlow = append(s.tcpPerFlow, short)
	s.bulkPerFlow = append(s.bulkPerFlow, bulk)
	return nil
}

// rss drives the daemon's flow table past trackedGoal flows with UDP floods
// and reads its peak resident set.
func (e *env) rss(ctx context.Context, d *picosegProc, s *samples) error {
	for i := 0; i < 20; i++ {
		st, err := d.status()
		if err != nil {
			return err
		}
		e.logf("  %d flows tracked", st.FlowsTracked)
		if st.FlowsTracked >= trackedGoal {
			hwm, err := vmHWM(st.PID)
			if err != nil {
				return err
			}
			s.rss = append(s.rss, float64(hwm)/(1<<20))
			s.tracked = append(s.tracked, float64(st.FlowsTracked))
			e.logf("  %d flows tracked, peak RSS %.1f MB", st.FlowsTracked, float64(hwm)/(1<<20))
			return nil
		}
		if _, err := e.flood(ctx, 2*time.Second, 0, 12); err != nil {
			return err
		}
	}
	s.notes = append(s.notes, "rss: the daemon never tracked 100 000 flows")
	return nil
}

// vmHWM reads a process's peak resident set in bytes.
func vmHWM(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// reloads starts picoseg with the large policy and times SIGHUP reloads
// while a sequenced UDP stream crosses the gateway.
func (e *env) reloads(ctx context.Context, s *samples) error {
	if e.cfg.Reloads == 0 {
		return nil
	}
	path := filepath.Join(e.dir, "reload.toml")
	write := func(variant int) error {
		text := policygen.Generate(e.spec(e.cfg.ReloadDevices, e.cfg.ReloadRules, fmt.Sprintf("reload variant %d", variant)))
		return os.WriteFile(path, []byte(text), 0o600)
	}
	if err := write(0); err != nil {
		return err
	}
	e.logf("reload: picoseg with %d devices and %d rules; %d reloads under a UDP stream", e.cfg.ReloadDevices, e.cfg.ReloadRules, e.cfg.Reloads)
	flushConntrack(ctx, e.gw)
	stop, d, err := e.start(ctx, setupPicoseg, path)
	if err != nil {
		return err
	}
	defer stop()
	const rate = 2000
	for i := 1; i <= e.cfg.Reloads; i++ {
		if err := write(i); err != nil {
			return err
		}
		before := e.streamRecv.Load()
		st0, err := d.status()
		if err != nil {
			return err
		}
		var sr load.StreamResult
		done := make(chan error, 1)
		go func() {
			done <- e.runLoad(ctx, e.devices[0], &sr, "stream", "-server", e.wan.Addr.String(), "-rate", strconv.Itoa(rate), "-duration", "2s")
		}()
		time.Sleep(700 * time.Millisecond)
		sent := time.Now()
		syscall.Kill(d.proc.PID(), syscall.SIGHUP)
		// The status counts reloads; the log line says how long one took.
		var outside time.Duration
		for {
			st, err := d.status()
			if err == nil && st.Reloads > st0.Reloads && st.Generation != st0.Generation {
				outside = time.Since(sent)
				break
			}
			if err == nil && st.ReloadFailures > st0.ReloadFailures {
				return fmt.Errorf("reload %d failed:\n%s", i, tailOf(d.proc.Output()))
			}
			if time.Since(sent) > 30*time.Second {
				return fmt.Errorf("reload %d not done after 30 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := <-done; err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // stragglers
		got := e.streamRecv.Load() - before
		out := d.proc.Output()
		took, ok := lastTook(out)
		if strings.Count(out, "policy reloaded") != i {
			ok = false // the log is capped, or lines went missing: not this reload's
		}
		if !ok {
			s.notes = append(s.notes, "reload: no took= in the daemon log; timed from SIGHUP to the status showing the new generation instead")
			took = outside
		}
		lost := float64(sr.Sent) - float64(got)
		s.reloadMS = append(s.reloadMS, float64(took.Microseconds())/1000)
		s.reloadLost = append(s.reloadLost, math.Max(lost, 0))
		e.logf("  reload %d: %v (seen from outside %v), stream sent %d, received %d", i, took, outside.Round(time.Millisecond), sr.Sent, got)
	}
	if st, err := d.status(); err == nil && st.ReloadFailures > 0 {
		s.notes = append(s.notes, fmt.Sprintf("reload: %d reloads failed", st.ReloadFailures))
	}
	return nil
}

// report turns the samples into the figures of bench.json.
func (e *env) report(s *samples) *stats.Report {
	r := &stats.Report{Context: map[string]string{
		"rounds":        strconv.Itoa(e.cfg.Rounds),
		"throughput":    fmt.Sprintf("%d interleaved pairs of %d s iperf3 runs; kernel-path variants %d cycles, each against a no-firewall run of the same cycle", e.cfg.ThroughputPairs, e.cfg.ThroughputSeconds, e.cfg.AnatomyCycles),
		"queues":        strconv.Itoa(e.cfg.Queues),
		"policy":        fmt.Sprintf("%d devices, %d rules (generated); reload policy %d devices, %d rules", e.cfg.Devices, e.cfg.Rules, e.cfg.ReloadDevices, e.cfg.ReloadRules),
		"new_flow_rate": newFlowRate + " (raised from the default 200/s so that the per-source guard is not what is measured)",
		"baselines":     "bare consumers accept every queued packet with the ruleset's ACCEPTED mark, on picoseg's ruleset installed by pkg/nft with the options the daemon derives from the policy (checked against the daemon's tables at start)",
		"cpus":          strconv.Itoa(numCPU()),
		"kernel":        kernel(),
	}}
	var bpf []float64
	for i := 0; i < e.cfg.Rounds; i++ {
		bpf = append(bpf, flowmem.BytesPerFlow(trackedGoal))
	}
	tr := stats.New("throughput_ratio", "Established-flow throughput, picoseg / no firewall (iperf3 TCP; median of interleaved pairs)", "", stats.AtLeast, 0.97, s.throughput)
	pin := "not pinned"
	if e.cfg.Pin {
		pin = "client and server pinned to CPUs 0 and 1"
	}
	tr.Note = fmt.Sprintf("%d pairs, each a %d s iperf3 run (after 1 s uncounted) with no firewall and one with the picoseg daemon, back to back, the order swapped every pair; %s; one ratio per pair", e.cfg.ThroughputPairs, e.cfg.ThroughputSeconds, pin)
	r.Add(tr)
	r.Add(stats.New("throughput_gbps_none", "Established-flow throughput, no firewall", "Gbit/s", stats.Info, 0, s.throughputNone))
	r.Add(stats.New("throughput_gbps_picoseg", "Established-flow throughput, picoseg", "Gbit/s", stats.Info, 0, s.throughputPicoseg))
	for _, v := range kernelVariants() {
		f := stats.New("throughput_ratio_"+v.key, "Throughput / no firewall, "+v.title, "", stats.Info, 0, s.anatomy[v.key])
		r.Add(f)
	}
	r.Add(stats.New("userspace_packets_per_tcp_flow", "Packets to userspace per short HTTP-like TCP flow", "packets", stats.AtMost, 3, s.tcpPerFlow))
	r.Add(stats.New("userspace_packets_per_bulk_flow", "Packets to userspace per 32 MB bulk TCP flow", "packets", stats.AtMost, 3, s.bulkPerFlow))
	r.Add(stats.New("new_flows_per_s", "New flows judged, picoseg (TCP+UDP)", "flows/s", stats.Info, 0, s.newFlows[setupPicoseg]))
	r.Add(stats.New("new_flows_ratio_vs_bare_c", "New flows/s, picoseg / bare C consumer", "", stats.AtLeast, 1.0, s.ratioC))
	r.Add(stats.New("new_flows_ratio_vs_bare_go", "New flows/s, picoseg / bare Go consumer", "", stats.Info, 0, s.ratioGo))
	r.Add(stats.New("new_flows_ratio_vs_none", "New flows/s, picoseg / no firewall", "", stats.Info, 0, s.ratioNone))
	for _, su := range []setup{setupNone, setupBareGo, setupBareC, setupPicoseg} {
		key := "new_flows_per_s_" + strings.ReplaceAll(strings.ReplaceAll(string(su), " ", "_"), "_consumer", "")
		r.Add(stats.New(key, "New flows/s, "+string(su)+" (TCP+UDP)", "flows/s", stats.Info, 0, s.newFlows[su]))
	}
	if e.cfg.Compare != "" {
		r.Add(stats.New("new_flows_per_s_compared_build", "New flows/s, compared picoseg build "+e.cfg.Compare, "flows/s", stats.Info, 0, s.newFlows[setupCompare]))
		r.Add(stats.New("consumer_cpu_us_per_new_flow_compared_build", "Consumer CPU time per new flow, compared picoseg build", "µs", stats.Info, 0, s.cpuPerFlow[setupCompare]))
	}
	for _, su := range []setup{setupBareGo, setupBareC, setupPicoseg} {
		key := "consumer_cpu_us_per_new_flow_" + strings.ReplaceAll(strings.ReplaceAll(string(su), " ", "_"), "_consumer", "")
		r.Add(stats.New(key, "Consumer CPU time per new flow, "+string(su)+" (user+system, incl. the kernel work of its verdicts)", "µs", stats.Info, 0, s.cpuPerFlow[su]))
	}
	r.Add(stats.New("new_flows_per_s_picoseg_tcp", "New flows/s, picoseg, TCP share", "flows/s", stats.Info, 0, s.newFlowsTCP[setupPicoseg]))
	r.Add(stats.New("new_flows_per_s_picoseg_udp", "New flows/s, picoseg, UDP share", "flows/s", stats.Info, 0, s.newFlowsUDP[setupPicoseg]))
	for _, bs := range burstSetups(e.cfg) {
		r.Add(stats.New("one_device_udp_flows_per_s_"+bs.key, "One device, new UDP flows/s: "+bs.title, "flows/s", stats.Info, 0, s.burst[bs.key]))
		if bs.key == "picoseg" {
			f := stats.New("one_device_udp_ratio_vs_bare_c", "One device, new UDP flows/s, picoseg / bare C consumer (same ruleset, same round)", "", stats.AtLeast, 1.0, s.burstRatio[bs.key])
			f.Note = fmt.Sprintf("%d rounds of a %v burst from one device, %d clients each sending one datagram from a fresh source port and waiting for its echo; %d queues; how the device's flows spread over picoseg's queues: %s",
				e.cfg.BurstRounds, e.cfg.BurstTime, burstWorkers, e.cfg.Queues, s.burstQueues)
			r.Add(f)
		} else if bs.key != "bare_c" {
			r.Add(stats.New("one_device_udp_ratio_"+bs.key, "One device, new UDP flows/s, "+bs.title+" / bare C on the full ruleset", "", stats.Info, 0, s.burstRatio[bs.key]))
		}
		if bs.key == "picoseg" || bs.key == "bare_c" || bs.key == "compared_build" {
			r.Add(stats.New("one_device_consumer_cpu_us_per_flow_"+bs.key, "One device, consumer CPU per new UDP flow: "+bs.title, "µs", stats.Info, 0, s.burstCPU[bs.key]))
			r.Add(stats.New("one_device_machine_cpu_us_per_flow_"+bs.key, "One device, busy CPU of the whole machine (clients, server, kernel, consumer) per new UDP flow: "+bs.title, "µs", stats.Info, 0, s.burstBusy[bs.key]))
			r.Add(stats.New("one_device_consumer_switches_per_flow_"+bs.key, "One device, consumer context switches (all threads) per new UDP flow: "+bs.title, "", stats.Info, 0, s.burstSwitches[bs.key]))
		}
	}
	r.Add(stats.New("added_latency_us_p50", "Added TCP connect time, p50", "µs", stats.Info, 0, s.latP50))
	r.Add(stats.New("added_latency_us_p99", "Added TCP connect time, p99", "µs", stats.Info, 0, s.latP99))
	r.Add(stats.New("bytes_per_flow", "Flow table heap per tracked flow (100 000 flows)", "B", stats.AtMost, 256, bpf))
	rss := stats.New("rss_mb_100k_flows", "Daemon peak RSS (VmHWM) with ≥100 000 tracked flows", "MB", stats.AtMost, 50, s.rss)
	rss.Note = fmt.Sprintf("flow_table_size = %d; flows tracked when read: %v", flowTableSize, s.tracked)
	r.Add(rss)
	rl := stats.New("reload_ms", fmt.Sprintf("Reload (SIGHUP) of %d devices / %d rules, load+compile+swap", e.cfg.ReloadDevices, e.cfg.ReloadRules), "ms", stats.AtMost, 200, s.reloadMS)
	r.Add(rl)
	r.Add(stats.New("reload_lost_packets", "Stream packets lost per reload (2000 pkt/s UDP)", "packets", stats.AtMost, 0, s.reloadLost))
	e.appReport(r, s)
	if len(s.notes) > 0 {
		r.Extra = append(r.Extra, stats.Section{Title: "Harness notes", Body: "- " + strings.Join(s.notes, "\n- ")})
	}
	return r
}

// procCPU returns the user and system CPU time a process has used; 0 for
// pid 0 or an unreadable process.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields count from after its ")".
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
