package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/picoseg/picoseg/pkg/learn"
)

// runDiff exits 0 when the two policies judge every flow of the captures
// alike, 1 when some flow is newly allowed or newly denied (only one of
// the two with --fail-on), and 2 on trouble, as diff(1) does, so that CI
// can gate on it.
func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	failOn := fs.String("fail-on", "any", "exit 1 when flows are newly `allowed`, newly denied, or either (any)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if *failOn != "any" && *failOn != "allowed" && *failOn != "denied" {
		fmt.Fprintln(stderr, "diff: --fail-on: want any, allowed or denied")
		return 2
	}
	if len(pos) < 3 {
		fmt.Fprintln(stderr, "diff: want OLD.toml NEW.toml CAPTURE...")
		return 2
	}
	old, _, ok := loadPolicy(pos[0], stderr)
	if !ok {
		return 2
	}
	new, _, ok := loadPolicy(pos[1], stderr)
	if !ok {
		return 2
	}
	res, err := learn.Diff(old, new, pos[2:])
	if err != nil {
		fmt.Fprintln(stderr, "diff:", err)
		return 2
	}
	if *asJSON {
		writeJSON(stdout, res)
	} else {
		res.WriteText(stdout)
	}
	switch {
	case *failOn == "allowed" && len(res.NewlyAllowed) > 0,
		*failOn == "denied" && len(res.NewlyDenied) > 0,
		*failOn == "any" && res.Changed():
		return 1
	}
	return 0
}
