// Command picoseg is an IoT gateway firewall: zone, device-pair and
// per-flow segmentation judged in userspace over NFQUEUE.
//
// This file holds flags and subcommands only; the logic lives in pkg/.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	// Time windows need zone data; OpenWrt images ship none.
	_ "time/tzdata"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, usage string
	run         func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"check", "check -c FILE: validate a policy", runCheck},
		{"explain", "explain -c FILE --from ADDR --to ADDR --proto tcp --dport 22 [--at TIME] [--json]: judge one hypothetical flow", runExplain},
		{"replay", "replay -c FILE [--json] CAPTURE...: run pcap/pcapng captures through the policy", runReplay},
		{"learn", "learn -c BASE [--from-daemon FILE] CAPTURE... [-o FILE] [--margin PCT] [--leases FILE]: propose devices and rules from what captures show, on top of BASE", runLearn},
		{"diff", "diff OLD NEW CAPTURE... [--json] [--fail-on any|allowed|denied]: flows the NEW policy allows or denies unlike OLD (exit 1 when any)", runDiff},
		{"run", "run -c FILE [--monitor] [--socket PATH] [--inventory-state FILE] [--learn-record FILE] [--lock FILE]: the firewall daemon (root)", runDaemon},
		{"status", "status [devices|flows [--device NAME]|alerts] [-c FILE | --socket PATH] [--json]: ask the running daemon", runStatus},
		{"mud", "mud import [-c BASE] [-o FILE] [--name NAME] [--mac MAC] [--ip ADDR] [--local-zone ZONE] [--controller KEY=ENDPOINT] [--map KEY=ENDPOINT] [--partial] FILE.json: a MUD file (RFC 8520) as rules to review", runMUD},
		{"demo", "demo [-c rules/demo.toml]: build a namespace lab, run the daemon in it, show it working (root)", runDemo},
		{"version", "version: print the version", func(_ []string, stdout, _ io.Writer) int {
			fmt.Fprintln(stdout, "picoseg", version)
			return 0
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "picoseg: unknown command %q\n", args[0])
	usage(stderr, cmds)
	return 2
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: picoseg COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range cmds {
		fmt.Fprintln(w, "  picoseg", c.usage)
	}
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
