package harness

import (
	"io"
	"time"
)

// Config configures Run.
type Config struct {
	// Repo is the module root: micro-benchmarks run there.
	Repo string
	// Picoseg is the picoseg binary; Self is the harness binary, re-run
	// inside the lab hosts for the traffic; BareGo and BareC are the
	// baseline consumers.
	Picoseg, Self, BareGo, BareC string
	// Compare, if set, is a second picoseg binary measured on new flows in
	// the same rounds, to judge a change against the build before it.
	Compare string
	// Rounds is how many times each setup is measured, alternating.
	Rounds int
	// Queues is the queue count of picoseg and of both baselines.
	Queues int
	// Devices and Rules size the policy of the main rounds;
	// ReloadDevices and ReloadRules the policy that is reloaded.
	Devices, Rules             int
	ReloadDevices, ReloadRules int
	// Reloads is how many SIGHUP reloads are timed.
	Reloads int
	// FloodTime is how long each new-flow flood runs.
	FloodTime time.Duration
	// ThroughputPairs is how many interleaved pairs of iperf3 runs, picoseg
	// and no firewall, the throughput ratio is the median of; each run lasts
	// ThroughputSeconds after one second of warm-up that is not counted.
	ThroughputPairs, ThroughputSeconds int
	// Pin pins the iperf3 client and server to CPUs 0 and 1.
	Pin bool
	// AnatomyCycles is how many times each kernel-path variant is measured
	// against no firewall (0: not at all).
	AnatomyCycles int
	// BurstRounds is how many times the one-device UDP burst is measured
	// per setup (0: not at all); each burst lasts BurstTime.
	BurstRounds int
	BurstTime   time.Duration
	// BurstVariants adds the bare C consumer on rulesets with a part of
	// the new-flow path taken out to every burst round.
	BurstVariants bool
	// Profile samples the kernel with perf during a picoseg throughput
	// run, when perf is installed.
	Profile bool
	// Micro runs the Go micro-benchmarks of the engine packages.
	Micro bool
	// Log receives progress lines.
	Log io.Writer
}

// Defaults returns the configuration `make bench` uses.
func Defaults() Config {
	return Config{
		Rounds: 5, Queues: 2,
		Devices: 1000, Rules: 1000,
		ReloadDevices: 10000, ReloadRules: 10000, Reloads: 5,
		FloodTime:       4 * time.Second,
		ThroughputPairs: 12, ThroughputSeconds: 2, AnatomyCycles: 4,
		BurstRounds: 5, BurstTime: 1500 * time.Millisecond, BurstVariants: true,
		Profile: true, Micro: true,
	}
}
