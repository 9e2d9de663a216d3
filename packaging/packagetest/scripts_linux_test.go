package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scriptHarness runs the .deb's maintainer scripts as systemd would see
// them, in a mount namespace of its own: /run says systemd is running,
// /var/lib and /var/log are empty, and systemctl, adduser, getent,
// systemd-sysctl and /usr/sbin/picoseg are stubs that record their calls.
// Nothing on the machine is touched.
const scriptHarness = `
set -eu
scripts=$1 log=$2 stubs=$3
mount -t tmpfs none /run
mkdir -p /run/systemd/system
mount -t tmpfs none /var/lib
mount -t tmpfs none /var/log
mount -t tmpfs none /usr/sbin
mkdir -p "$stubs"
for cmd in systemctl adduser systemd-sysctl; do
	printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$cmd" "$log" >"$stubs/$cmd"
done
# getent: the user exists once adduser has run.
printf '#!/bin/sh\ngrep -q "^adduser" "%s"\n' "$log" >"$stubs/getent"
# picoseg check passes unless POLICY_BAD is set.
printf '#!/bin/sh\necho "picoseg $*" >>"%s"\nif [ -n "${POLICY_BAD:-}" ]; then echo "bad.toml:1:1: an error" >&2; exit 1; fi\n' "$log" >/usr/sbin/picoseg
chmod 755 "$stubs"/* /usr/sbin/picoseg
mount --bind "$stubs/systemd-sysctl" /usr/lib/systemd/systemd-sysctl
export PATH="$stubs:/usr/bin:/bin"
step() { echo "-- $*" >>"$log"; }
step first install;     sh "$scripts/postinst" configure
step upgrade;           sh "$scripts/prerm" upgrade 0.2; sh "$scripts/postinst" configure 0.1
step upgrade, bad policy; sh "$scripts/prerm" upgrade 0.2; POLICY_BAD=1 sh "$scripts/postinst" configure 0.1 2>>"$log.err"
step remove;            sh "$scripts/prerm" remove; sh "$scripts/postrm" remove
mkdir -p /var/lib/picoseg /var/log/picoseg
step purge;             sh "$scripts/postrm" purge
[ -e /var/lib/picoseg ] || [ -e /var/log/picoseg ] || step state and logs deleted
`

// TestMaintainerScripts runs postinst, prerm and postrm through an install,
// two upgrades, a removal and a purge. A first install enables and starts
// the service (with the starter policy, in monitor mode); an upgrade
// restarts it only if it was running and only after the new version has
// accepted the policy, else the old daemon keeps running and the errors
// are shown; a removal stops and disables it; a purge deletes its state.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	dir := t.TempDir()
	harness, log := filepath.Join(dir, "harness.sh"), filepath.Join(dir, "calls")
	if err := os.WriteFile(harness, []byte(scriptHarness), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", harness,
		filepath.Join(repoRoot(t), "packaging/debian"), log, filepath.Join(dir, "stubs")).CombinedOutput()
	if err != nil {
		t.Fatalf("harness: %v\n%s", err, out)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	setup := []string{
		"systemctl restart systemd-modules-load.service",
		"systemd-sysctl /usr/lib/sysctl.d/50-picoseg.conf",
		"systemctl daemon-reload",
	}
	want := []string{"-- first install",
		"adduser --system --group --home /var/lib/picoseg --no-create-home --gecos picoseg firewall picoseg"}
	want = append(want, setup...)
	want = append(want, "systemctl enable picoseg.service", "systemctl start picoseg.service", "-- upgrade")
	want = append(want, setup...)
	want = append(want, "picoseg check -c /etc/picoseg/picoseg.toml", "systemctl try-restart picoseg.service",
		"-- upgrade, bad policy")
	want = append(want, setup...)
	want = append(want, "picoseg check -c /etc/picoseg/picoseg.toml", "picoseg check -c /etc/picoseg/picoseg.toml",
		"-- remove", "systemctl stop picoseg.service", "systemctl disable picoseg.service", "systemctl daemon-reload",
		"-- purge", "systemctl daemon-reload", "-- state and logs deleted")
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(calls)), "\n")); diff != "" {
		t.Errorf("maintainer script calls (-want +got):\n%s", diff)
	}
	msg, _ := os.ReadFile(log + ".err")
	for _, w := range []string{"bad.toml:1:1: an error", "the running daemon keeps its policy"} {
		if !strings.Contains(string(msg), w) {
			t.Errorf("a refused policy on upgrade: the admin is not told %q:\n%s", w, msg)
		}
	}
}
