package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/picoseg/picoseg/pkg/learn"
)

// runDiff exits 0 when the two policies judge every flow of the captures
// alike, 1 when some flow is newly allowed or newly denied, and 2 on
// trouble, as diff(1) does, so that CI can gate on it.
func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
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
	if res.Changed() {
		return 1
	}
	return 0
}
