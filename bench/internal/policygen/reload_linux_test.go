package policygen

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// BenchmarkReload10k loads the policy the lab benchmark reloads (10 000
// devices, 10 000 rules, from Generate) the way a reload does: read and
// check the file, then compile it. Besides wall time it reports CPU time
// per load (cpu-ms/op), a steadier figure on a machine shared with other
// work; the collector's own threads count there too.
func BenchmarkReload10k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "reload.toml")
	if err := os.WriteFile(path, []byte(Generate(labSpec(10000, 10000))), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("load", func(b *testing.B) {
		runReload(b, path, false)
	})
	b.Run("load+compile", func(b *testing.B) {
		runReload(b, path, true)
	})
}

func runReload(b *testing.B, path string, compile bool) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		cfg, _, err := config.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Devices) != 10002 || len(cfg.Allows) != 10001 {
			b.Fatalf("loaded %d devices and %d rules", len(cfg.Devices), len(cfg.Allows))
		}
		if !compile {
			continue
		}
		if _, err := policy.Compile(cfg, policy.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/float64(time.Millisecond), "cpu-ms/op")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
