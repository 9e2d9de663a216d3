package packagetest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// TestStarterPolicies loads each starter policy the packages install: it
// must compile, start in monitor mode (an install never cuts a network
// off), fail open, and keep its socket and inventory where the service
// manager gives the unprivileged daemon write access.
func TestStarterPolicies(t *testing.T) {
	unit := unitSettings(t, source(t, "packaging/debian/picoseg.service"))
	initScript := string(source(t, "packaging/openwrt/picoseg/files/picoseg.init"))
	for _, tc := range []struct {
		name, file string
		// writable reports whether the service may write in dir.
		writable func(dir string) bool
	}{
		{"debian", "packaging/debian/picoseg.toml", func(dir string) bool {
			return dir == "/run/"+only(unit["Service.RuntimeDirectory"]) ||
				dir == "/var/lib/"+only(unit["Service.StateDirectory"])
		}},
		{"openwrt", "packaging/openwrt/picoseg/files/picoseg.toml", func(dir string) bool {
			return strings.Contains(initScript, "chown picoseg:picoseg") &&
				strings.Contains(initScript, "mkdir -p /var/run/picoseg /var/lib/picoseg") &&
				(dir == "/var/run/picoseg" || dir == "/var/lib/picoseg")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := config.Load(filepath.Join(repoRoot(t), tc.file))
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if _, err := policy.Compile(cfg, policy.Options{}); err != nil {
				t.Fatalf("%s: compile: %v", tc.file, err)
			}
			d := cfg.Daemon
			if d.Mode != config.ModeMonitor {
				t.Errorf("mode %v, want monitor", d.Mode)
			}
			if d.OnDaemonDown != "open" || d.OnQueueFull != "open" {
				t.Errorf("on_daemon_down %q, on_queue_full %q: want open", d.OnDaemonDown, d.OnQueueFull)
			}
			if len(cfg.Zones) == 0 {
				t.Error("no zones: a starter should show the shape of a policy")
			}
			for what, path := range map[string]string{"socket": d.Socket, "inventory state": cfg.Inventory.State} {
				if !tc.writable(filepath.Dir(path)) {
					t.Errorf("%s %s: the service cannot write in %s", what, path, filepath.Dir(path))
				}
			}
		})
	}
}

// only is the single value of a setting, or "".
func only(v []string) string {
	if len(v) != 1 {
		return ""
	}
	return v[0]
}
