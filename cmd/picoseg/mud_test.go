package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/mud"
)

const (
	mudBase   = "../../pkg/mud/testdata/base.toml"
	mudCamera = "../../pkg/mud/testdata/rfc-camera.json"
	mudPlug   = "../../pkg/mud/testdata/mudgee-plug.json"
)

// TestMUDImportChecks imports a MUD file into a base policy with -o and
// checks the written policy with `check`.
func TestMUDImportChecks(t *testing.T) {
	out := filepath.Join(t.TempDir(), "policy.toml")
	mapFile := filepath.Join(t.TempDir(), "map.txt")
	if err := os.WriteFile(mapFile, []byte("# the camera's friends\nmanufacturer:example.com=group:acme-admins\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "mud", "import", "-c", mudBase, "-o", out, "--mac", "02:00:00:00:00:31", "--ip", "10.77.0.31",
		"--local-zone", "lan", "--controller", "my-controller=device:hub", "--map-file", mapFile, "--partial", mudCamera)
	if code != 0 || stdout != "" {
		t.Fatalf("mud import: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if reported := strings.Contains(stderr, "not represented:") && strings.Contains(stderr, "pool.ntp.org"); reported == mud.DNSNamesSupported() {
		t.Errorf("DNS names supported %v, the rule to pool.ntp.org reported as not represented %v:\n%s", mud.DNSNamesSupported(), reported, stderr)
	}
	code, stdout, stderr = runCmd(t, "check", "-c", out)
	if code != 0 || !strings.Contains(stdout, ": ok: ") {
		t.Fatalf("check of the import: exit %d\n%s%s", code, stdout, stderr)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), `from = "group:acme-admins"`) {
		t.Errorf("the mapping file was not used:\n%s", text)
	}
}

// TestMUDImportExitStatus: something not represented fails the command
// unless --partial; the proposal is still written for the reviewer.
func TestMUDImportExitStatus(t *testing.T) {
	// An ICMP type match: picoseg's services say icmp, not which type.
	ping := filepath.Join(t.TempDir(), "ping.json")
	if err := os.WriteFile(ping, []byte(`{"ietf-mud:mud": {"model-name": "pinger",
  "from-device-policy": {"access-lists": {"access-list": [{"name": "out"}]}}},
 "ietf-access-control-list:acls": {"acl": [{"name": "out", "aces": {"ace": [
  {"name": "echo", "matches": {"ipv4": {"protocol": 1, "destination-ipv4-network": "192.0.2.0/24"}, "icmp": {"type": 8}},
   "actions": {"forwarding": "accept"}}]}}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "mud", "import", "-c", mudBase, ping)
	if code != 1 || !strings.Contains(stdout, "# NOT ACTIVE: matches picoseg cannot express") || !strings.Contains(stdout, `# to = "net:192.0.2.0/24"`) ||
		!strings.Contains(stderr, "icmp/type") || !strings.Contains(stderr, "--partial") {
		t.Errorf("without --partial: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if code, _, stderr := runCmd(t, "mud", "import", "-c", mudBase, "--partial", ping); code != 0 {
		t.Errorf("with --partial: exit %d\n%s", code, stderr)
	}
	// The plug's DNS names are not represented until the policy language
	// has them, and then they are.
	code, stdout, _ = runCmd(t, "mud", "import", "-c", mudBase, "--name", "plug", mudPlug)
	if commented := strings.Contains(stdout, `# to = "dns:api.plug.example.net"`); commented != (code == 1) || commented == mud.DNSNamesSupported() {
		t.Errorf("plug: exit %d, DNS rule commented out %v, DNS names supported %v", code, commented, mud.DNSNamesSupported())
	}
	// Everything representable: exit 0 without --partial.
	if code, _, stderr := runCmd(t, "mud", "import", "-c", mudBase, "--local-zone", "iot", "../../pkg/mud/testdata/draft-bulb.json"); code != 0 {
		t.Errorf("draft bulb: exit %d\n%s", code, stderr)
	}
}

// TestMUDImportErrors: usage, broken files and bad mappings are refused
// and nothing is written.
func TestMUDImportErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"ietf-mud:mud": {"from-device-policy": {"access-lists": {"access-list": [{"name": "x"}]}}}, "ietf-access-control-list:acls": {"acl": []}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.toml")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"mud"}, 2, "usage"},
		{[]string{"mud", "import"}, 2, "exactly one"},
		{[]string{"mud", "import", "-c", mudBase, "-o", out, broken}, 1, `names access list "x", which the file does not define`},
		{[]string{"mud", "import", "-c", mudBase, "-o", out, "--local-zone", "lann", mudCamera}, 1, `no zone "lann"`},
		{[]string{"mud", "import", "-c", mudBase, "-o", out, "--controller", "my-controller=any", mudCamera}, 1, "want zone:NAME"},
		{[]string{"mud", "import", "-o", out, filepath.Join(dir, "absent.json")}, 1, "absent.json"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v wrote %s", tc.args, out)
		}
	}
}
