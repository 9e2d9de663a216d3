//go:build linux

package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/picoseg/picoseg/bench/internal/load"
	"github.com/picoseg/picoseg/pkg/nft"
)

// burstWorkers is how many UDP clients the one device runs at once, each
// with one flow in flight: enough that the consumer, not the clients'
// round trips, sets the pace.
const burstWorkers = 32

// burstSetup is one gateway setup of the one-device burst.
type burstSetup struct {
	key, title string
	su         setup
	// opts edits the daemon's ruleset options for a bare C baseline.
	opts func(nft.Options) nft.Options
}

// burstSetups: picoseg and the bare C consumer on the daemon's ruleset, the
// goal's pair; then the bare C consumer on that ruleset with a part of the
// new-flow path taken out, to say what each part costs a new flow. The
// variants are measurements only: picoseg keeps every rule.
func burstSetups(cfg Config) []burstSetup {
	same := func(o nft.Options) nft.Options { return o }
	setups := []burstSetup{
		{key: "picoseg", title: "picoseg", su: setupPicoseg},
		{key: "bare_c", title: "bare C consumer, picoseg's ruleset", su: setupBareC, opts: same},
	}
	if cfg.Compare != "" {
		setups = append(setups, burstSetup{key: "compared_build", title: "compared picoseg build " + cfg.Compare, su: setupCompare})
	}
	if !cfg.BurstVariants {
		return setups
	}
	return append(setups, []burstSetup{
		{key: "bare_c_no_device_guard", title: "bare C, ruleset without the per-device guard (`add @guard_mac { iif . ether saddr limit ... }`; global cap kept)", su: setupBareC,
			opts: func(o nft.Options) nft.Options { o.NewFlowRate, o.NewFlowBurst = 0, 0; return o }},
		{key: "bare_c_no_guard", title: "bare C, ruleset without any new-flow guard (per-device and global)", su: setupBareC,
			opts: func(o nft.Options) nft.Options {
				o.NewFlowRate, o.NewFlowBurst, o.GlobalNewFlowRate, o.GlobalNewFlowBurst = 0, 0, 0, 0
				return o
			}},
		{key: "bare_c_no_rpf", title: "bare C, ruleset without the reverse-path rule", su: setupBareC,
			opts: func(o nft.Options) nft.Options { o.ReversePathInterfaces = nil; return o }},
	}...)
}

// bursts measures how many new UDP flows one device gets judged per second:
// one device (the first), burstWorkers clients each sending one datagram
// from a fresh source port and waiting for its echo, for BurstTime or until
// each client has used its share of the source ports once (-once), so that
// every flow is new to conntrack: a reused tuple would meet its earlier
// flow's conntrack entry and be fast-pathed, not judged. Each round runs every setup once, in an order rotated from
// round to round, and the ratios are taken within the round.
func (e *env) bursts(ctx context.Context, s *samples) error {
	setups := burstSetups(e.cfg)
	for r := 0; r < e.cfg.BurstRounds; r++ {
		rates := map[string]float64{}
		for k := range setups {
			bs := setups[(r+k)%len(setups)]
			rate, err := e.burst(ctx, bs, s)
			if err != nil {
				return fmt.Errorf("%s: %w", bs.key, err)
			}
			rates[bs.key] = rate
			s.burst[bs.key] = append(s.burst[bs.key], rate)
		}
		for _, bs := range setups {
			if bs.key != "bare_c" {
				s.burstRatio[bs.key] = append(s.burstRatio[bs.key], rates[bs.key]/rates["bare_c"])
			}
		}
		e.logf("one-device burst round %d/%d: picoseg %.0f, bare C %.0f flows/s (%.3f)", r+1, e.cfg.BurstRounds,
			rates["picoseg"], rates["bare_c"], rates["picoseg"]/rates["bare_c"])
		if e.cfg.Compare != "" {
			e.logf("  compared build %.0f flows/s (%.3f)", rates["compared_build"], rates["compared_build"]/rates["bare_c"])
		}
	}
	return nil
}

func (e *env) burst(ctx context.Context, bs burstSetup, s *samples) (float64, error) {
	flushConntrack(ctx, e.gw)
	var stop func() error
	var d *picosegProc
	var err error
	if bs.su == setupPicoseg || bs.su == setupCompare {
		stop, d, err = e.start(ctx, bs.su, e.policy)
	} else {
		stop, _, err = e.startBaseline(ctx, bs.su, bs.opts(e.baselineOptions()))
	}
	if err != nil {
		return 0, err
	}
	var r load.FloodResult
	cpu0, busy0, sw0 := procCPU(e.consumer), machineBusy(), procSwitches(e.consumer)
	err = e.runLoad(ctx, e.devices[0], &r, "flood", "-server", e.wan.Addr.String(), "-duration", e.cfg.BurstTime.String(),
		"-tcp", "0", "-udp", strconv.Itoa(burstWorkers), "-once")
	if err == nil && r.UDP > 0 {
		n := float64(r.UDP)
		s.burstCPU[bs.key] = append(s.burstCPU[bs.key], (procCPU(e.consumer)-cpu0).Seconds()*1e6/n)
		s.burstBusy[bs.key] = append(s.burstBusy[bs.key], (machineBusy()-busy0).Seconds()*1e6/n)
		s.burstSwitches[bs.key] = append(s.burstSwitches[bs.key], float64(procSwitches(e.consumer)-sw0)/n)
	}
	if err == nil && bs.su == setupPicoseg {
		e.noteQueueSpread(d, s)
	}
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return 0, err
	}
	if r.Failed > 0 {
		e.logf("  %s: %d flows failed: %v", bs.key, r.Failed, r.Errors)
	}
	return float64(r.UDP) / r.Seconds, nil
}

// noteQueueSpread records, once, how one device's flows spread over the
// daemon's queues: the kernel picks a queue from a hash of the addresses
// and protocol only (both directions alike), so the flows of one device to
// one server all land in one queue, whatever the queue count.
func (e *env) noteQueueSpread(d *picosegProc, s *samples) {
	if s.burstQueues != "" {
		return
	}
	st, err := d.status()
	if err != nil {
		return
	}
	var parts []string
	for _, q := range st.Queues {
		parts = append(parts, fmt.Sprintf("queue %d: %d", q.Queue, q.Received))
	}
	s.burstQueues = strings.Join(parts, ", ")
}

// machineBusy returns the CPU time every CPU of the machine has spent not
// idle (/proc/stat), all processes and interrupts together.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// procSwitches returns the context switches, voluntary and not, of every
// thread of a process; 0 for pid 0.
func procSwitches(pid int) uint64 {
	if pid == 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
