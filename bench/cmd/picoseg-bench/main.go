// Command picoseg-bench is picoseg's lab benchmark (`make bench`, as root).
// It builds a network-namespace lab, measures picoseg against no firewall and
// against bare NFQUEUE consumers, prints a markdown table and writes the same
// figures to bench.json.
//
//	picoseg-bench [-picoseg bin/picoseg] [-json bench.json] [-rounds 3] [-quick]
//
// It is also the traffic: the harness runs it again inside the lab hosts
// with one of the subcommands serve, flood, latency, short, bulk and stream
// (see package load); those print their result as JSON.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "picoseg-bench:", err)
		os.Exit(1)
	}
}
