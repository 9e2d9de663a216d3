//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/picoseg/picoseg/bench/internal/harness"
	"github.com/picoseg/picoseg/bench/internal/load"
)

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return load.Serve()
		case "flood", "latency", "short", "bulk", "stream", "hellos":
			return runLoad(args[0], args[1:])
		}
	}
	return bench(args)
}

// runLoad runs one traffic subcommand and prints its result as JSON.
func runLoad(name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	server := fs.String("server", "", "server address")
	n := fs.Int("n", 100, "flows or connections")
	size := fs.Int64("size", 16<<20, "bytes per bulk flow")
	d := fs.Duration("duration", 4*time.Second, "how long to run")
	tcp := fs.Int("tcp", 6, "TCP flood workers")
	udp := fs.Int("udp", 6, "UDP flood workers")
	rate := fs.Int("rate", 1000, "stream datagrams per second")
	sni := fs.String("name", "bench.example.com", "hellos: the server name each ClientHello asks for")
	once := fs.Bool("once", false, "flood: each worker goes through its share of the source ports once, so no tuple repeats")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := netip.ParseAddr(*server)
	if err != nil {
		return fmt.Errorf("-server: %w", err)
	}
	var res any
	switch name {
	case "flood":
		res, err = load.Flood(load.FloodConfig{Server: addr, TCPWorkers: *tcp, UDPWorkers: *udp, Duration: *d, FirstPort: load.SourcePortFirst, LastPort: load.SourcePortLast, Once: *once})
	case "latency":
		res, err = load.Latency(addr, *n, 2*time.Millisecond)
	case "short":
		res, err = load.Short(addr, *n)
	case "bulk":
		res, err = load.Bulk(addr, *n, *size)
	case "stream":
		res, err = load.Stream(addr, *rate, *d)
	case "hellos":
		res, err = load.Hellos(addr, *sni, *tcp, *d)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// bench runs the lab benchmark.
func bench(args []string) error {
	fs := flag.NewFlagSet("picoseg-bench", flag.ContinueOnError)
	cfg := harness.Defaults()
	picoseg := fs.String("picoseg", "bin/picoseg", "picoseg binary")
	jsonPath := fs.String("json", "bench.json", "where to write the figures as JSON")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of alternating measurements")
	fs.IntVar(&cfg.Queues, "queues", cfg.Queues, "queues for picoseg and the baselines")
	fs.BoolVar(&cfg.Micro, "micro", cfg.Micro, "run the Go micro-benchmarks too")
	fs.IntVar(&cfg.ThroughputPairs, "pairs", cfg.ThroughputPairs, "interleaved picoseg / no firewall iperf3 pairs")
	fs.IntVar(&cfg.ThroughputSeconds, "pair-seconds", cfg.ThroughputSeconds, "seconds of each iperf3 run of a throughput pair")
	fs.BoolVar(&cfg.Pin, "pin", cfg.Pin, "pin the iperf3 client and server to CPUs 0 and 1")
	fs.IntVar(&cfg.AnatomyCycles, "anatomy", cfg.AnatomyCycles, "cycles of the kernel-path variants (0: none)")
	fs.IntVar(&cfg.Reloads, "reloads", cfg.Reloads, "timed reloads (0: none)")
	fs.IntVar(&cfg.BurstRounds, "bursts", cfg.BurstRounds, "rounds of the one-device UDP burst (0: none)")
	fs.BoolVar(&cfg.Profile, "profile", cfg.Profile, "profile the kernel with perf during a picoseg flow")
	compare := fs.String("compare", "", "a second picoseg binary to measure on new flows in the same rounds")
	quick := fs.Bool("quick", false, "one short round: check the harness, not the figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it builds network namespaces and an nftables table (try: sudo make bench)")
	}
	if *quick {
		cfg.Rounds, cfg.FloodTime, cfg.Reloads, cfg.Micro = 1, 2*time.Second, 2, false
		cfg.ThroughputPairs, cfg.ThroughputSeconds, cfg.AnatomyCycles, cfg.BurstRounds, cfg.BurstTime = 1, 1, 1, 1, time.Second
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg.Repo = repo
	cfg.Log = os.Stderr
	if cfg.Picoseg, err = filepath.Abs(*picoseg); err != nil {
		return err
	}
	if *compare != "" {
		if cfg.Compare, err = filepath.Abs(*compare); err != nil {
			return err
		}
	}
	if cfg.Self, err = os.Executable(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "picoseg-bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.BareGo, cfg.BareC = filepath.Join(dir, "bareq-go"), filepath.Join(dir, "bareq")
	if err := build(repo, "go", "build", "-o", cfg.BareGo, "./bench/bareq-go"); err != nil {
		return err
	}
	if err := build(repo, "cc", "-O2", "-o", cfg.BareC, "bench/bareq-c/bareq.c", "-lnetfilter_queue", "-lpthread"); err != nil {
		return fmt.Errorf("%w (the C baseline needs libnetfilter-queue-dev)", err)
	}

	start := time.Now()
	rep, err := harness.Run(context.Background(), cfg)
	if err != nil {
		return err
	}
	rep.Context["duration"] = time.Since(start).Round(time.Second).String()
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		return err
	}
	if err := os.WriteFile(*jsonPath, js.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println("## picoseg lab benchmark")
	fmt.Println()
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("\n(figures also in %s)\n", *jsonPath)
	return nil
}

func build(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}
