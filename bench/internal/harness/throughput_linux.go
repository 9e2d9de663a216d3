//go:build linux

package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/picoseg/picoseg/bench/internal/load"
	"github.com/picoseg/picoseg/bench/internal/stats"
	"github.com/picoseg/picoseg/pkg/nft"
)

// throughputPairs measures established-flow throughput in interleaved
// pairs: no firewall and picoseg one right after the other, the order
// swapped from pair to pair (A B, B A, ...), so that a change in the
// machine's load hits both sides of a pair alike and drifts cancel. The
// figure is the median of the pairs' ratios; one ratio per pair, never a
// ratio of medians taken at different times.
func (e *env) throughputPairs(ctx context.Context, s *samples) error {
	for i := 0; i < e.cfg.ThroughputPairs; i++ {
		order := []setup{setupNone, setupPicoseg}
		if i%2 == 1 {
			order = []setup{setupPicoseg, setupNone}
		}
		bps := map[setup]float64{}
		for _, su := range order {
			flushConntrack(ctx, e.gw)
			stop, _, err := e.start(ctx, su, e.policy)
			if err != nil {
				return fmt.Errorf("%s: %w", su, err)
			}
			b, err := e.iperf(ctx)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", su, err)
			}
			bps[su] = b
		}
		r := bps[setupPicoseg] / bps[setupNone]
		s.throughput = append(s.throughput, r)
		s.throughputNone = append(s.throughputNone, bps[setupNone]/1e9)
		s.throughputPicoseg = append(s.throughputPicoseg, bps[setupPicoseg]/1e9)
		e.logf("throughput pair %d/%d: picoseg %.2f / none %.2f Gbit/s = %.3f", i+1, e.cfg.ThroughputPairs,
			bps[setupPicoseg]/1e9, bps[setupNone]/1e9, r)
	}
	return nil
}

// iperf runs one iperf3 TCP client from the first device to the wan host,
// ThroughputSeconds long after one uncounted second (slow start, the first
// packets' verdicts). With Config.Pin, client and server are pinned to CPUs
// 0 and 1. Not by default: on a 2-core virtual machine pinned runs were
// slower (5 to 14 Gbit/s against 20 to 28) and spread more, since the
// forwarding runs in the sender's softirq and the receiver then reads
// from another CPU's cache, and a pinned process cannot move away from
// another program's load.
func (e *env) iperf(ctx context.Context) (float64, error) {
	args := []string{"-O", "1"}
	if e.cfg.Pin && numCPU() >= 2 {
		args = append(args, "-A", "0,1")
	}
	res, err := e.devices[0].Iperf3(ctx, netip.AddrPortFrom(e.wan.Addr, load.PortIperf3), e.cfg.ThroughputSeconds, args...)
	if err != nil {
		return 0, err
	}
	return res.BitsPerSecond, nil
}

// kernelVariant is the gateway's kernel path with a part of picoseg's
// ruleset taken out or swapped, for the throughput anatomy. Every variant
// with a ruleset runs the bare C consumer, so that a flow's first packets
// get the ACCEPTED mark and the rest is fast-pathed as under picoseg.
type kernelVariant struct {
	key, title string
	// opts edits the daemon's ruleset options; nil means no picoseg
	// ruleset at all.
	opts func(nft.Options) nft.Options
	// table is an nft script installed instead (conntrack alone).
	table string
	// rpFilter turns the kernel's own strict reverse-path filter on, on the
	// interfaces the ruleset's check covers.
	rpFilter bool
}

// conntrackOnly registers conntrack in the gateway and does nothing else:
// the cost every stateful firewall pays.
const conntrackOnly = `table inet picoseg_bench {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state invalid drop
	}
}`

func kernelVariants() []kernelVariant {
	noRPF := func(o nft.Options) nft.Options { o.ReversePathInterfaces = nil; return o }
	noBridge := func(o nft.Options) nft.Options { o.Bridges = nil; return o }
	return []kernelVariant{
		{key: "conntrack_only", title: "conntrack alone (no picoseg rules)", table: conntrackOnly},
		{key: "full", title: "picoseg's ruleset (as the daemon installs it), bare C consumer", opts: func(o nft.Options) nft.Options { return o }},
		{key: "no_rpf", title: "ruleset without the reverse-path rule", opts: noRPF},
		{key: "no_bridge", title: "ruleset without table bridge picoseg", opts: noBridge},
		{key: "no_rpf_no_bridge", title: "ruleset without either", opts: func(o nft.Options) nft.Options { return noBridge(noRPF(o)) }},
		{key: "rp_filter_sysctl", title: "ruleset with the kernel's rp_filter=1 instead of the reverse-path rule (not equivalent: misses bridged traffic)", opts: noRPF, rpFilter: true},
	}
}

// anatomy measures each kernel variant against no firewall, AnatomyCycles
// times, each in a pair of back-to-back runs like the throughput pairs:
// the variants' order rotates from cycle to cycle, and within a pair no
// firewall runs first in even cycles and second in odd ones.
func (e *env) anatomy(ctx context.Context, s *samples) error {
	vs := kernelVariants()
	for c := 0; c < e.cfg.AnatomyCycles; c++ {
		for k := range vs {
			v := vs[(c+k)%len(vs)]
			var none, bps float64
			for i := 0; i < 2; i++ {
				var err error
				if (i+c)%2 == 0 {
					flushConntrack(ctx, e.gw)
					none, err = e.iperf(ctx)
				} else {
					bps, err = e.measureVariant(ctx, v)
				}
				if err != nil {
					return fmt.Errorf("anatomy: %s: %w", v.key, err)
				}
			}
			s.anatomy[v.key] = append(s.anatomy[v.key], bps/none)
			e.logf("anatomy cycle %d/%d: %s %.2f / none %.2f Gbit/s = %.3f", c+1, e.cfg.AnatomyCycles, v.key, bps/1e9, none/1e9, bps/none)
		}
	}
	return nil
}

func (e *env) measureVariant(ctx context.Context, v kernelVariant) (float64, error) {
	flushConntrack(ctx, e.gw)
	var stop func() error
	switch {
	case v.table != "":
		if err := e.nftScript(ctx, v.table); err != nil {
			return 0, err
		}
		stop = func() error { return e.nftScript(ctx, "delete table inet picoseg_bench") }
	default:
		var err error
		stop, _, err = e.startBaseline(ctx, setupBareC, v.opts(e.baselineOptions()))
		if err != nil {
			return 0, err
		}
	}
	if v.rpFilter {
		restore, err := e.setRPFilter(e.baselineOptions().ReversePathInterfaces)
		if err != nil {
			stop()
			return 0, err
		}
		inner := stop
		stop = func() error { restore(); return inner() }
	}
	bps, err := e.iperf(ctx)
	if serr := stop(); err == nil {
		err = serr
	}
	return bps, err
}

// nftScript runs an nft script in the gateway.
func (e *env) nftScript(ctx context.Context, script string) error {
	cmd := e.gw.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, out)
	}
	return nil
}

// setRPFilter sets rp_filter = 1 (strict) on "all" and the named interfaces
// of the gateway and returns how to put the old values back.
func (e *env) setRPFilter(ifaces []string) (func(), error) {
	old := map[string]string{}
	keys := []string{"all"}
	keys = append(keys, ifaces...)
	err := e.gw.Do(func() error {
		for _, k := range keys {
			p := "/proc/sys/net/ipv4/conf/" + k + "/rp_filter"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			old[p] = strings.TrimSpace(string(b))
			if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	restore := func() {
		e.gw.Do(func() error {
			for p, v := range old {
				os.WriteFile(p, []byte(v), 0o644)
			}
			return nil
		})
	}
	if err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}

// profileShare is a kernel function whose inclusive share of a workload's
// CPU samples a profile reports.
type profileShare struct{ key, sym, title string }

// flowShares: an established flow's packets through picoseg's kernel path.
var flowShares = []profileShare{
	{"inet_table", "nft_do_chain_inet", "table inet picoseg (all its rules, forward and input hooks)"},
	{"rpf_fib", "nft_fib4_eval", "of which the reverse-path fib lookup"},
	{"bridge_table", "nft_do_chain_bridge", "table bridge picoseg (every frame from a bridge port)"},
	{"conntrack_in", "nf_conntrack_in", "conntrack lookup and state tracking"},
	{"conntrack_confirm", "nf_confirm", "conntrack confirmation"},
}

// newFlowShares: the kernel side of new flows (the one-device burst).
var newFlowShares = []profileShare{
	{"inet_table", "nft_do_chain_inet", "table inet picoseg (all its rules)"},
	{"guard_dynset", "nft_dynset_eval", "of which the per-device guard's set update (`add @guard_mac { iif . ether saddr limit ... }`)"},
	{"global_limit", "nft_limit_pkts_eval", "of which the rate limits (the guard's per-device limit and the global cap)"},
	{"rpf_fib", "nft_fib4_eval", "of which the reverse-path fib lookup"},
	{"queue_target", "nfqnl_enqueue_packet", "handing the packet to the queue (after the rules: nf_queue)"},
	{"conntrack_in", "nf_conntrack_in", "conntrack lookup and new entries"},
	{"conntrack_confirm", "nf_confirm", "conntrack confirmation (inserting the entry)"},
	{"verdict", "nfqnl_recv_verdict_batch", "verdicts received (batched)"},
	{"verdict_single", "nfqnl_recv_verdict", "verdicts received (one by one)"},
}

// profiles samples the kernel with perf: an iperf3 flow through picoseg,
// then a one-device burst of new UDP flows through picoseg.
func (e *env) profiles(ctx context.Context, rep *stats.Report) error {
	iperf := func() error {
		_, err := e.devices[0].Iperf3(ctx, netip.AddrPortFrom(e.wan.Addr, load.PortIperf3), 4)
		return err
	}
	if err := e.profile(ctx, rep, profileRun{"flow", "Where an established flow's kernel time goes", iperf, "iperf3", flowShares, 1500 * time.Millisecond, 2 * time.Second}); err != nil {
		return err
	}
	burst := func() error {
		var r load.FloodResult
		return e.runLoad(ctx, e.devices[0], &r, "flood", "-server", e.wan.Addr.String(), "-duration", "4s",
			"-tcp", "0", "-udp", strconv.Itoa(burstWorkers), "-once")
	}
	// The burst ends when its clients have used their source ports once,
	// in a second or two: the sample starts early and is short.
	return e.profile(ctx, rep, profileRun{"new_flow", "Where one device's new UDP flows spend kernel time", burst, "picoseg-bench,picoseg", newFlowShares, 200 * time.Millisecond, time.Second})
}

// profileRun is one perf sample: work runs through picoseg; after warm, the
// CPUs are sampled for length.
type profileRun struct {
	key, title   string
	work         func() error
	comms        string
	shares       []profileShare
	warm, length time.Duration
}

// profile samples every CPU with perf while pr.work runs through picoseg
// and adds, for each of pr.shares, its inclusive share of the samples of the
// processes pr.comms and the softirq threads (whose contexts carry the
// forwarding). A share is an upper bound of what taking the function out
// could give a CPU-bound workload.
func (e *env) profile(ctx context.Context, rep *stats.Report, pr profileRun) error {
	key, comms := pr.key, pr.comms
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("perf is not installed (Debian: linux-perf)")
	}
	data := filepath.Join(e.dir, "perf-"+key+".data")
	flushConntrack(ctx, e.gw)
	stop, _, err := e.start(ctx, setupPicoseg, e.policy)
	if err != nil {
		return err
	}
	defer stop()
	done := make(chan error, 1)
	go func() { done <- pr.work() }()
	time.Sleep(pr.warm)
	rec := exec.CommandContext(ctx, perf, "record", "-e", "cpu-clock", "-F", "2999", "-a", "-g", "-o", data, "--", "sleep", strconv.FormatFloat(pr.length.Seconds(), 'f', -1, 64))
	out, rerr := rec.CombinedOutput()
	if err := <-done; err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("perf record: %w: %s", rerr, tailOf(string(out)))
	}
	for i := 0; i < numCPU(); i++ {
		comms += ",ksoftirqd/" + strconv.Itoa(i)
	}
	out, err = exec.CommandContext(ctx, perf, "report", "-i", data, "--children", "--percentage", "relative",
		"--comm", comms, "--sort", "sym", "--stdio").Output()
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	got := parsePerfChildren(string(out))
	var b strings.Builder
	fmt.Fprintf(&b, "Processes: %s.\n\n| kernel function | share of their CPU samples |\n|---|---:|\n", comms)
	for _, p := range pr.shares {
		v := got[p.sym] // absent: no sample
		rep.Add(stats.New("profile_"+key+"_pct_"+p.key, "Kernel profile, "+key+": "+p.title, "% of samples", stats.Info, 0, []float64{v}))
		fmt.Fprintf(&b, "| %s (`%s`) | %.2f %% |\n", p.title, p.sym, v)
	}
	rep.Extra = append(rep.Extra, stats.Section{Title: fmt.Sprintf("%s (perf, cpu-clock, one %v sample)", pr.title, pr.length), Body: b.String()})
	return nil
}

// parsePerfChildren reads `perf report --children --stdio --sort sym`:
// lines "  8.00%  1.74%  [k] symbol" give the symbol's inclusive share.
func parsePerfChildren(out string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || !strings.HasPrefix(f[2], "[") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		if _, seen := m[f[3]]; !seen {
			m[f[3]] = v
		}
	}
	return m
}
