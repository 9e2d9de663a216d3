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
// packets' verdicts). Client and server are pinned to CPUs 0 and 1, so the
// scheduler moving them is not part of what is measured.
func (e *env) iperf(ctx context.Context) (float64, error) {
	args := []string{"-O", "1"}
	if numCPU() >= 2 {
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
// times: each cycle runs no firewall first and then every variant, in an
// order rotated from cycle to cycle, and each ratio is the variant's rate
// over that cycle's no-firewall rate.
func (e *env) anatomy(ctx context.Context, s *samples) error {
	vs := kernelVariants()
	for c := 0; c < e.cfg.AnatomyCycles; c++ {
		flushConntrack(ctx, e.gw)
		none, err := e.iperf(ctx)
		if err != nil {
			return fmt.Errorf("anatomy: no firewall: %w", err)
		}
		for k := range vs {
			v := vs[(c+k)%len(vs)]
			bps, err := e.measureVariant(ctx, v)
			if err != nil {
				return fmt.Errorf("anatomy: %s: %w", v.key, err)
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

// profileShares are the kernel functions whose inclusive share of the
// flow's CPU samples the profile reports.
var profileShares = []struct{ key, sym, title string }{
	{"inet_table", "nft_do_chain_inet", "table inet picoseg (all its rules, forward and input hooks)"},
	{"rpf_fib", "nft_fib4_eval", "of which the reverse-path fib lookup"},
	{"bridge_table", "nft_do_chain_bridge", "table bridge picoseg (every frame from a bridge port)"},
	{"conntrack_in", "nf_conntrack_in", "conntrack lookup and state tracking"},
	{"conntrack_confirm", "nf_confirm", "conntrack confirmation"},
}

// profile samples every CPU with perf while picoseg carries an iperf3 flow
// and adds, for each function of profileShares, its inclusive share of the
// samples of the flow's processes (iperf3 and the softirq threads, whose
// contexts carry the forwarding). A share is an upper bound of what taking
// the function out could give, on a CPU-bound flow.
func (e *env) profile(ctx context.Context, rep *stats.Report) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("perf is not installed (Debian: linux-perf)")
	}
	data := filepath.Join(e.dir, "perf.data")
	flushConntrack(ctx, e.gw)
	stop, _, err := e.start(ctx, setupPicoseg, e.policy)
	if err != nil {
		return err
	}
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := e.devices[0].Iperf3(ctx, netip.AddrPortFrom(e.wan.Addr, load.PortIperf3), 4, "-A", "0,1")
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	rec := exec.CommandContext(ctx, perf, "record", "-e", "cpu-clock", "-F", "2999", "-a", "-g", "-o", data, "--", "sleep", "2")
	out, rerr := rec.CombinedOutput()
	if err := <-done; err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("perf record: %w: %s", rerr, tailOf(string(out)))
	}
	comms := "iperf3"
	for i := 0; i < numCPU(); i++ {
		comms += ",ksoftirqd/" + strconv.Itoa(i)
	}
	out, err = exec.CommandContext(ctx, perf, "report", "-i", data, "--children", "--percentage", "relative",
		"--comm", comms, "--sort", "sym", "--stdio").Output()
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	shares := parsePerfChildren(string(out))
	var b strings.Builder
	b.WriteString("| kernel function | share of the flow's CPU samples |\n|---|---:|\n")
	for _, p := range profileShares {
		v, ok := shares[p.sym]
		if !ok {
			v = 0
		}
		rep.Add(stats.New("profile_share_pct_"+p.key, "Kernel profile of a picoseg-carried iperf3 flow: "+p.title, "% of samples", stats.Info, 0, []float64{v}))
		fmt.Fprintf(&b, "| %s (`%s`) | %.2f %% |\n", p.title, p.sym, v)
	}
	rep.Extra = append(rep.Extra, stats.Section{Title: "Where an established flow's kernel time goes (perf, cpu-clock, one run)", Body: b.String()})
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
