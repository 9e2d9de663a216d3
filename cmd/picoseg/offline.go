package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/replay"
)

// loadPolicy loads, checks and compiles a policy file as the daemon
// would, alert sinks included, printing every error and warning as
// FILE:LINE:COL.
func loadPolicy(path string, stderr io.Writer) (*policy.Policy, *config.Config, bool) {
	l, warnings, err := policy.Load(path, policy.Options{GatewayAddrs: policy.HostAddrs()})
	for _, w := range warnings {
		fmt.Fprintln(stderr, w.String())
	}
	if err == nil {
		_, err = alert.ConfigSinks(l.Config)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	return l.Policy, l.Config, true
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("c", "/etc/picoseg/picoseg.toml", "policy `file`")
	return fs, cfg
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("check", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pol, cfg, ok := loadPolicy(*path, stderr)
	if !ok {
		return 1
	}
	if err := checkClasses(pol, cfg.Daemon.MarkMask); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: %d zones, %d segments, %d groups, %d devices, %d rules, %d files, mode %s\n",
		*path, len(pol.Zones), len(pol.Segments), len(pol.Groups), len(pol.Devices), pol.UserRules, len(cfg.Files), pol.Mode)
	fmt.Fprintln(stdout, "allowed to the gateway by default (turn off or narrow in [gateway]):")
	for _, s := range pol.GatewayServices() {
		fmt.Fprintf(stdout, "  %-16s %s; from %s\n", s.Rule, s.What, s.From)
	}
	printPortRouters(stdout, pol)
	writePico(stdout, pol)
	printSPA(stdout, pol, cfg)
	return 0
}

// printPortRouters says, for each local zone with interfaces, who may act
// as router and DHCP server on its bridge ports.
func printPortRouters(stdout io.Writer, pol *policy.Policy) {
	fmt.Fprintln(stdout, "router advertisements, redirects and DHCP server messages from bridge ports (dropped unless listed in port_routers):")
	for _, z := range pol.Zones {
		if !z.Local || len(z.Interfaces) == 0 {
			continue
		}
		routers := "none: only the gateway"
		if len(z.PortRouters) > 0 {
			var macs []string
			for _, m := range z.PortRouters {
				macs = append(macs, net.HardwareAddr(m[:]).String())
			}
			routers = strings.Join(macs, ", ")
		}
		fmt.Fprintf(stdout, "  zone %-11s %s\n", z.Name, routers)
	}
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("explain", stderr)
	from := fs.String("from", "", "source `address`")
	to := fs.String("to", "", "destination `address`")
	proto := fs.String("proto", "tcp", "protocol: tcp, udp, icmp, icmpv6 or a number")
	dport := fs.Int("dport", 0, "destination `port`")
	at := fs.String("at", "", "when: RFC 3339, \"2006-01-02 15:04\", \"15:04\" or \"mon 15:04\" (policy time zone; default now)")
	mac := fs.String("from-mac", "", "source hardware `address`, to check identity")
	size := fs.Int("size", 60, "first packet's IP length in `bytes`")
	in := fs.String("in", "", "ingress `interface`")
	out := fs.String("out", "", "egress `interface`")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pol, _, ok := loadPolicy(*path, stderr)
	if !ok {
		return 1
	}
	q := engine.Query{InIface: *in, OutIface: *out, Size: uint16(*size), DPort: uint16(*dport)}
	var err error
	if q.From, err = netip.ParseAddr(*from); err != nil {
		fmt.Fprintf(stderr, "explain: --from: %v\n", err)
		return 2
	}
	if q.To, err = netip.ParseAddr(*to); err != nil {
		fmt.Fprintf(stderr, "explain: --to: %v\n", err)
		return 2
	}
	if q.Proto, err = config.ParseProtocol(strings.ToLower(*proto)); err != nil {
		fmt.Fprintf(stderr, "explain: --proto: %v\n", err)
		return 2
	}
	if *mac != "" {
		hw, err := net.ParseMAC(*mac)
		if err != nil || len(hw) != 6 {
			fmt.Fprintf(stderr, "explain: --from-mac: not a MAC address: %q\n", *mac)
			return 2
		}
		var m [6]byte
		copy(m[:], hw)
		q.FromMAC = &m
	}
	if q.At, err = config.ParseInstant(*at, time.Now().In(pol.Location)); err != nil {
		fmt.Fprintf(stderr, "explain: --at: %v\n", err)
		return 2
	}
	eng := engine.New(pol, engine.Options{FlowCapacity: 16})
	t := eng.ExplainQuery(q)
	if *asJSON {
		writeTraceJSON(stdout, &t, pol, q)
	} else {
		writeTraceText(stdout, &t, pol, q)
		writeRulePico(stdout, pol, t.Decision.Rule)
	}
	return 0
}

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("replay", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "replay: name at least one capture file")
		return 2
	}
	pol, _, ok := loadPolicy(*path, stderr)
	if !ok {
		return 1
	}
	r := replay.New(pol)
	status := 0
	for _, f := range fs.Args() {
		if err := r.File(f); err != nil {
			fmt.Fprintf(stderr, "replay: %s: %v\n", f, err)
			status = 1
		}
	}
	rep := r.Report()
	if *asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteText(stdout)
	}
	return status
}
