package packagetest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitSettings parses a systemd unit into section.Key → values, in order.
func unitSettings(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit: not a setting: %q", line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestUnitHardening checks what the unit promises: its own user, only
// CAP_NET_ADMIN, nothing gained on exec, a read-only system but for its own
// state and runtime directories, the socket families it uses, reload by
// SIGHUP and restart on failure.
func TestUnitHardening(t *testing.T) {
	u := unitSettings(t, source(t, "packaging/debian/picoseg.service"))
	for k, want := range map[string]string{
		"Service.ExecStart":               "/usr/sbin/picoseg run -c /etc/picoseg/picoseg.toml",
		"Service.ExecReload":              "kill -HUP $MAINPID",
		"Service.Restart":                 "on-failure",
		"Service.User":                    "picoseg",
		"Service.Group":                   "picoseg",
		"Service.AmbientCapabilities":     "CAP_NET_ADMIN",
		"Service.CapabilityBoundingSet":   "CAP_NET_ADMIN",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.StateDirectory":          "picoseg",
		"Service.RuntimeDirectory":        "picoseg",
		"Service.RestrictAddressFamilies": "AF_NETLINK AF_UNIX AF_INET AF_INET6",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Install.WantedBy":                "multi-user.target",
		"Service.SystemCallArchitectures": "native",
		"Service.RestrictSUIDSGID":        "yes",
		"Service.PrivateDevices":          "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.SystemCallErrorNumber":   "EPERM",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictNamespaces":      "yes",
		"Service.LockPersonality":         "yes",
		"Service.RestrictRealtime":        "yes",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
	} {
		if got := u[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly %q", k, got, want)
		}
	}
	for _, k := range []string{"Service.PrivateNetwork", "Service.PrivateUsers", "Service.DynamicUser"} {
		if len(u[k]) > 0 {
			// Each would cut picoseg off the host's network namespace or
			// the user the package creates.
			t.Errorf("%s is set: %q", k, u[k])
		}
	}
}

// TestUnitVerify runs systemd-analyze verify on the unit, and rates its
// exposure with systemd-analyze security: the goal is 2.0 or less ("OK").
func TestUnitVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian: systemd)")
	}
	unit := source(t, "packaging/debian/picoseg.service")
	// verify checks that ExecStart's program exists: point it at an
	// executable that does (the installed unit is verified as it is by
	// TestInstallDeb).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "picoseg.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/sbin/picoseg"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	exposure := securityExposure(t, path)
	t.Logf("systemd-analyze security: overall exposure %.1f", exposure)
	if exposure > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0", exposure)
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for picoseg\.service: ([0-9.]+)`)

// securityExposure is systemd-analyze security's overall figure for a unit
// file (0 is best, 10 worst).
func securityExposure(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", path).CombinedOutput()
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
