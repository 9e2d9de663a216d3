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
	// FloodTime is how long each new-flow flood runs; IperfSeconds each
	// throughput run.
	FloodTime    time.Duration
	IperfSeconds int
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
		FloodTime: 4 * time.Second, IperfSeconds: 5,
		Micro: true,
	}
}
