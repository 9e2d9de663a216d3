package config

import (
	"strings"
	"testing"
)

func TestDaemonLockAndUser(t *testing.T) {
	cfg, _, err := Parse("p.toml", []byte("[daemon]\nlock = \"/run/x/p.lock\"\nuser = \"picoseg\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Lock != "/run/x/p.lock" || cfg.Daemon.User != "picoseg" {
		t.Errorf("lock %q user %q", cfg.Daemon.Lock, cfg.Daemon.User)
	}
	if cfg, _, _ := Parse("p.toml", nil); cfg.Daemon.Lock != "" || cfg.Daemon.User != "" {
		t.Errorf("defaults: lock %q (\"\" means DefaultLock) user %q (\"\" stays root)", cfg.Daemon.Lock, cfg.Daemon.User)
	}
	for _, bad := range []string{`lock = ""`, `user = ""`, `user = "root"`, `user = "0"`} {
		_, _, err := Parse("p.toml", []byte("[daemon]\n"+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "p.toml:2:") {
			t.Errorf("%s: want an error at p.toml:2, got %v", bad, err)
		}
	}
}
