package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// largePolicyText writes a policy with n devices in 100 groups and n allow
// rules, the size of a large site.
func largePolicyText(n int) string {
	var b strings.Builder
	b.WriteString("[[zone]]\nname = \"wan\"\nnetworks = [\"0.0.0.0/0\"]\n\n[[zone]]\nname = \"iot\"\nnetworks = [\"10.0.0.0/8\"]\n\n")
	b.WriteString("[[segment]]\nfrom = \"iot\"\nto = \"wan\"\naction = \"micro\"\n\n")
	for g := 0; g < 100; g++ {
		fmt.Fprintf(&b, "[[group]]\nname = \"g%d\"\n\n", g)
	}
	for d := 0; d < n; d++ {
		fmt.Fprintf(&b, "[[device]]\nname = \"d%d\"\nmac = \"02:00:00:%02x:%02x:%02x\"\nip = [\"10.%d.%d.%d\"]\ngroups = [\"g%d\"]\n\n",
			d, d>>16&0xff, d>>8&0xff, d&0xff, d>>16&0xff, d>>8&0xff, d&0xff, d%100)
	}
	for r := 0; r < n; r++ {
		fmt.Fprintf(&b, "[[allow]]\nname = \"r%d\"\nfrom = \"device:d%d\"\nto = \"zone:wan\"\nservices = [\"tcp/%d\", \"udp/%d-%d\"]\n\n",
			r, r%n, 1000+r%5000, 2000+r%3000, 2010+r%3000)
	}
	return b.String()
}

// BenchmarkLoad10k loads a policy of 10 000 devices and 10 000 allow
// rules from a file: read, parse, check, as a reload does before it
// compiles. bench/internal/policygen has the same figure for the policy
// the lab benchmark reloads, with the compile step.
func BenchmarkLoad10k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "large.toml")
	if err := os.WriteFile(path, []byte(largePolicyText(10000)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cfg, _, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Devices) != 10000 || len(cfg.Allows) != 10000 {
			b.Fatalf("loaded %d devices and %d rules", len(cfg.Devices), len(cfg.Allows))
		}
	}
}
