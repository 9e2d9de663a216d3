package policygen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

func labSpec(devices, rules int) Spec {
	return Spec{
		Devices: devices, Rules: rules,
		Lab: []LabDevice{
			{Name: "cam", MAC: "02:00:00:00:00:11", IP: "10.77.0.11"},
			{Name: "hub", MAC: "02:00:00:00:00:30", IP: "10.77.0.30"},
		},
		TCPPorts: []string{"5201", "9000-9007"}, UDPPorts: []string{"9100-9107"},
		Queues: 2, QueueBase: 4200, NewFlowRate: "1000000/s", FlowTableSize: 262144,
		Socket: "/run/picoseg-bench/x.sock", Lock: "/run/picoseg-bench/x.lock", Comment: "generated\nby a test",
	}
}

// load writes the policy to a file and loads and compiles it as the daemon
// does.
func load(t *testing.T, text string) (*config.Config, *policy.Policy) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatalf("generated policy does not load: %v", err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatalf("generated policy does not compile: %v", err)
	}
	return cfg, pol
}

func TestGenerateLoads(t *testing.T) {
	for _, size := range []struct{ devices, rules int }{{0, 0}, {10, 40}, {1000, 1000}} {
		text := Generate(labSpec(size.devices, size.rules))
		cfg, _ := load(t, text)
		if got, want := len(cfg.Devices), size.devices+2; got != want {
			t.Errorf("%d devices generated, want %d", got, want)
		}
		if got, want := len(cfg.Allows), size.rules+1; got != want {
			t.Errorf("%d allow rules generated, want %d", got, want)
		}
		if cfg.Daemon.Lock != "/run/picoseg-bench/x.lock" {
			t.Errorf("lock = %q", cfg.Daemon.Lock)
		}
		if cfg.Daemon.NewFlowRate.Count != 1000000 || cfg.Daemon.Queues != 2 || cfg.Daemon.FlowTableSize != 262144 {
			t.Errorf("daemon settings = %+v", cfg.Daemon)
		}
	}
}

// TestGenerateNoShadowing keeps the generated policy realistic: a large
// policy whose rules shadow one another would log hundreds of warnings at
// every load and reload.
func TestGenerateNoShadowing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(Generate(labSpec(10000, 10000))), 0o644); err != nil {
		t.Fatal(err)
	}
	_, warnings, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if strings.Contains(w.Msg, "shadowed") {
			t.Fatalf("%s: %s", w.Pos, w.Msg)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	if Generate(labSpec(100, 100)) != Generate(labSpec(100, 100)) {
		t.Fatal("two runs generated different policies")
	}
}

func TestDeviceAddrOutsideLab(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 20000; i++ {
		a := DeviceAddr(i)
		if strings.HasPrefix(a, "10.77.0.") || seen[a] || strings.HasSuffix(a, ".0") || strings.HasSuffix(a, ".255") {
			t.Fatalf("device %d: address %s clashes", i, a)
		}
		seen[a] = true
	}
}
