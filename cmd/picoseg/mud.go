package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/mud"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// mudImport holds the flags of `mud import`.
type mudImport struct {
	base, out, name, mac, localZone, mapFile string
	ips, controllers, maps                   listFlag
	partial                                  bool
}

func runMUD(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: picoseg mud import [-c BASE.toml] [-o FILE] [--name NAME] [--mac MAC] [--ip ADDR]... [--local-zone ZONE] [--controller KEY=ENDPOINT]... [--map KEY=ENDPOINT]... [--map-file FILE] [--partial] FILE.json")
		return 2
	}
	var m mudImport
	fs := flag.NewFlagSet("mud import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&m.base, "c", "", "base policy `file` to merge into (zones, segments and names come from it)")
	fs.StringVar(&m.out, "o", "", "write the proposal to `file` instead of stdout")
	fs.StringVar(&m.name, "name", "", "`name` of the device and its group (default: from the MUD file)")
	fs.StringVar(&m.mac, "mac", "", "the device's `MAC`")
	fs.Var(&m.ips, "ip", "the device's `address` (repeatable)")
	fs.StringVar(&m.localZone, "local-zone", "", "the `zone` MUD's local-networks stands for")
	fs.Var(&m.controllers, "controller", "`KEY=ENDPOINT`: my-controller=device:hub, or a controller URI=group:hubs (repeatable)")
	fs.Var(&m.maps, "map", "`ABSTRACTION=ENDPOINT` (local-networks, same-manufacturer, my-controller, controller:URI, manufacturer:NAME, model:URI; repeatable)")
	fs.StringVar(&m.mapFile, "map-file", "", "`file` of ABSTRACTION=ENDPOINT lines")
	fs.BoolVar(&m.partial, "partial", false, "exit 0 even when parts of the MUD file could not be represented")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "picoseg mud import: want exactly one MUD file")
		return 2
	}
	return m.run(fs.Arg(0), stdout, stderr)
}

func (m *mudImport) mapping() (mud.Mapping, error) {
	mp := mud.Mapping{}
	if m.localZone != "" {
		if err := mp.Set("local-networks=zone:" + m.localZone); err != nil {
			return nil, err
		}
	}
	for _, c := range m.controllers {
		if !strings.HasPrefix(c, "my-controller=") {
			c = "controller:" + c
		}
		if err := mp.Set(c); err != nil {
			return nil, err
		}
	}
	for _, s := range m.maps {
		if err := mp.Set(s); err != nil {
			return nil, err
		}
	}
	if m.mapFile != "" {
		f, err := os.Open(m.mapFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := mp.ReadMapping(m.mapFile, f); err != nil {
			return nil, err
		}
	}
	return mp, nil
}

func (m *mudImport) run(path string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "picoseg mud import: %v\n", err)
		return 1
	}
	mp, err := m.mapping()
	if err != nil {
		return fail(err)
	}
	f, err := openMUD(path)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	opts := mud.Options{Name: m.name, MAC: m.mac, IPs: m.ips, Map: mp, DNSNames: mud.DNSNamesSupported()}
	var baseText []byte
	if m.base != "" {
		cfg, _, err := config.Load(m.base)
		if err != nil {
			return fail(err)
		}
		if baseText, err = os.ReadFile(m.base); err != nil {
			return fail(err)
		}
		opts.Base = mud.NamesOf(cfg)
	}
	p, err := mud.Import(f, opts)
	if err != nil {
		return fail(err)
	}
	if m.base == "" {
		fmt.Fprintln(stderr, "picoseg mud import: no -c: the proposal is a fragment (groups, device, rules) to include in a policy; check it there")
	}
	out, err := m.render(p, baseText)
	if err != nil {
		return fail(err)
	}
	if m.out != "" {
		err = os.WriteFile(m.out, out, 0o644)
	} else {
		_, err = stdout.Write(out)
	}
	if err != nil {
		return fail(err)
	}
	return reportMUD(p, m.partial, stderr)
}

// render writes the proposal. Merged into a base, it is loaded as `check`
// would first, and what the base's segments do to its rules is added to
// its notes.
func (m *mudImport) render(p *mud.Proposal, baseText []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := p.WriteTOML(&out, baseText); err != nil {
		return nil, err
	}
	if m.base == "" {
		return out.Bytes(), nil
	}
	where := m.base
	if m.out != "" {
		where = m.out
	}
	pol, _, err := mud.Verify(where, out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the proposal does not load (nothing written):\n%v", err)
	}
	notes := len(p.Notes)
	if p.SegmentNotes(pol); len(p.Notes) > notes {
		out.Reset()
		if err := p.WriteTOML(&out, baseText); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

func openMUD(path string) (*mud.File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return mud.Read(fh)
}

// reportMUD lists what was not represented; that is a failure unless the
// user accepted a partial import.
func reportMUD(p *mud.Proposal, partial bool, stderr io.Writer) int {
	for _, n := range p.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(stderr, "not represented: %s\n", pr)
	}
	active := 0
	for _, r := range p.Rules {
		if r.Disabled == "" {
			active++
		}
	}
	fmt.Fprintf(stderr, "picoseg mud import: %d rules (%d commented out), %d new groups, %d not represented\n",
		len(p.Rules), len(p.Rules)-active, len(p.Groups), len(p.Problems))
	if len(p.Problems) > 0 && !partial {
		fmt.Fprintln(stderr, "picoseg mud import: some of the MUD file is not represented (commented out in the output); --partial accepts that")
		return 1
	}
	return 0
}
