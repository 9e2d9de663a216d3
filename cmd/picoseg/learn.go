package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/picoseg/picoseg/pkg/learn"
	"github.com/picoseg/picoseg/pkg/policy"
)

// parseInterleaved parses flags written before, between and after the
// positional arguments (`learn -c BASE a.pcap b.pcap -o out.toml`), and
// returns the positional ones in order. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runLearn(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("learn", stderr)
	out := fs.String("o", "", "write the proposal to `file` (default: standard output)")
	margin := fs.Float64("margin", learn.DefaultMargin*100, "widen every observed bound by `percent`")
	leases := fs.String("leases", "", "dnsmasq DHCP leases `file`, for device names from their hostnames")
	record := fs.String("from-daemon", "", "learn from the record the daemon keeps (run --learn-record `file`) too")
	captures, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(captures) == 0 && *record == "" {
		fmt.Fprintln(stderr, "learn: name at least one capture file, or --from-daemon")
		return 2
	}
	if *margin < 0 || *margin > 1000 {
		fmt.Fprintln(stderr, "learn: --margin: want a percentage from 0 to 1000")
		return 2
	}
	base, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, "learn:", err)
		return 1
	}
	pol, cfg, ok := loadPolicy(*path, stderr)
	if !ok {
		return 1
	}
	m := *margin / 100
	if m == 0 {
		m = learn.NoMargin
	}
	l, err := learn.New(pol, cfg, learn.Options{Margin: m, Leases: *leases})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	status := feedLearner(l, *record, captures, stderr)
	if status > 1 {
		return 1
	}
	p := l.Propose()
	var b bytes.Buffer
	if err := p.Write(&b, base); err != nil {
		fmt.Fprintln(stderr, "learn:", err)
		return 1
	}
	if *out == "" {
		stdout.Write(b.Bytes())
	} else if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "learn:", err)
		return 1
	}
	fmt.Fprintf(stderr, "learn: proposed %d devices, %d groups, %d rules; %d devices flagged as scans\n", len(p.Devices), len(p.Groups), len(p.Rules), len(p.Scans))
	name := *out
	if name == "" {
		name = *path
	}
	if !verifyProposal(pol, name, b.Bytes(), captures, stderr) {
		return 1
	}
	return status
}

// feedLearner reads the daemon's record and the captures into l. It
// returns 0, 1 when a capture could not be read (the others still count),
// or 2 when the record could not be.
func feedLearner(l *learn.Learner, record string, captures []string, stderr io.Writer) int {
	if record != "" {
		rf, err := learn.LoadRecord(record)
		if err == nil {
			err = l.Record(rf)
		}
		if err != nil {
			fmt.Fprintln(stderr, "learn:", err)
			return 2
		}
	}
	status := 0
	for _, c := range captures {
		if err := l.File(c); err != nil {
			fmt.Fprintf(stderr, "learn: %s: %v\n", c, err)
			status = 1
		}
	}
	for _, c := range l.Report().Captures {
		if c.Error != "" {
			fmt.Fprintf(stderr, "learn: %s: %d packets read, then: %s\n", c.File, c.Packets, c.Error)
		}
	}
	return status
}

// verifyProposal loads the proposal as check would and replays the
// captures against the base and it; it reports false when the proposal
// does not load or would deny a flow the base policy allowed.
func verifyProposal(base *policy.Policy, name string, text []byte, captures []string, stderr io.Writer) bool {
	d, warnings, err := learn.Verify(base, name, text, policy.Options{GatewayAddrs: policy.HostAddrs()}, captures)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "learn: the proposal:", w.String())
	}
	if err != nil {
		fmt.Fprintln(stderr, "learn:", err)
		return false
	}
	fmt.Fprintf(stderr, "learn: the captures replayed against the proposal: %d flows newly allowed, %d newly denied\n", len(d.NewlyAllowed), len(d.NewlyDenied))
	if len(d.NewlyDenied) > 0 {
		d.NewlyAllowed = nil
		d.WriteText(stderr)
		return false
	}
	return true
}
