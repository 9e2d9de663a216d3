package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scriptHarness runs the .deb's maintainer scripts as on a machine where
// systemd runs, in a mount namespace of its own: /run says systemd is
// running, /var/lib and /var/log are empty, and systemctl,
// deb-systemd-helper, deb-systemd-invoke, adduser, getent, modprobe, sysctl
// and picoseg are stubs that record their calls. Nothing on the machine is
// touched.
const scriptHarness = `
set -eu
scripts=$1 log=$2 stubs=$3
mount -t tmpfs none /run
mkdir -p /run/systemd/system
mount -t tmpfs none /var/lib
mount -t tmpfs none /var/log
mount -t tmpfs none /usr/sbin
mount -t tmpfs none /usr/lib/modules-load.d
cp "$scripts/modules-load.conf" /usr/lib/modules-load.d/picoseg.conf
mkdir -p "$stubs"
for cmd in systemctl adduser deb-systemd-invoke modprobe sysctl; do
	printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$cmd" "$log" >"$stubs/$cmd"
done
# deb-systemd-helper: was-enabled fails when the admin disabled the unit.
printf '#!/bin/sh\necho "deb-systemd-helper $*" >>"%s"\nif [ "$2" = was-enabled ] && [ -n "${WAS_DISABLED:-}" ]; then exit 1; fi\n' "$log" >"$stubs/deb-systemd-helper"
# getent: the user exists once adduser has run.
printf '#!/bin/sh\ngrep -q "^adduser" "%s"\n' "$log" >"$stubs/getent"
# picoseg check passes unless POLICY_BAD is set.
printf '#!/bin/sh\necho "picoseg $*" >>"%s"\nif [ -n "${POLICY_BAD:-}" ]; then echo "bad.toml:1:1: an error" >&2; exit 1; fi\n' "$log" >"$stubs/picoseg"
chmod 755 "$stubs"/*
mount --bind "$stubs/deb-systemd-helper" /usr/bin/deb-systemd-helper
export PATH="$stubs:/usr/bin:/bin"
step() { echo "-- $*" >>"$log"; }
step first install;     sh "$scripts/postinst" configure
step upgrade;           sh "$scripts/prerm" upgrade 0.2; sh "$scripts/postinst" configure 0.1
step upgrade, disabled; sh "$scripts/prerm" upgrade 0.2; WAS_DISABLED=1 sh "$scripts/postinst" configure 0.1
step upgrade, bad policy; sh "$scripts/prerm" upgrade 0.2; POLICY_BAD=1 sh "$scripts/postinst" configure 0.1 2>>"$log.err"
step remove;            sh "$scripts/prerm" remove; sh "$scripts/postrm" remove
mkdir -p /var/lib/picoseg /var/log/picoseg
step purge;             sh "$scripts/postrm" purge
[ -e /var/lib/picoseg ] || [ -e /var/log/picoseg ] || step state and logs deleted
`

// TestMaintainerScripts runs postinst, prerm and postrm through an install,
// three upgrades, a removal and a purge. A first install enables and
// starts the service (with the starter policy, in monitor mode); an upgrade
// keeps an admin's disable and restarts the service only after the new
// version has accepted the policy, else the old daemon keeps running and
// the errors are shown; a removal stops and masks it; a purge deletes its
// state.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	for _, f := range []string{"/usr/bin/deb-systemd-helper", "/usr/lib/modules-load.d"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s: not a Debian with systemd (init-system-helpers)", f)
		}
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
		"modprobe -b nf_conntrack", "modprobe -b nf_conntrack_netlink", "modprobe -b nfnetlink_queue",
		"sysctl -q -p /usr/lib/sysctl.d/50-picoseg.conf",
		"deb-systemd-helper --quiet was-enabled picoseg.service",
	}
	enabled := append(append([]string{}, setup...), "deb-systemd-helper enable picoseg.service", "systemctl --system daemon-reload")
	check := "picoseg check -c /etc/picoseg/picoseg.toml"
	var want []string
	add := func(lines ...string) { want = append(want, lines...) }
	add("-- first install",
		"adduser --system --group --home /var/lib/picoseg --gecos picoseg firewall picoseg")
	add(enabled...)
	add("deb-systemd-invoke start picoseg.service")
	add("-- upgrade")
	add(enabled...)
	add(check, "deb-systemd-invoke restart picoseg.service")
	// An admin's disable is kept: the state is updated, not re-enabled
	// (and deb-systemd-invoke does not start a disabled, stopped unit).
	add("-- upgrade, disabled")
	add(setup...)
	add("deb-systemd-helper update-state picoseg.service", "systemctl --system daemon-reload",
		check, "deb-systemd-invoke restart picoseg.service")
	// A policy the new version refuses: no restart, the old daemon runs on.
	add("-- upgrade, bad policy")
	add(enabled...)
	add(check, check)
	add("-- remove", "deb-systemd-invoke stop picoseg.service", "deb-systemd-helper mask picoseg.service",
		"systemctl --system daemon-reload",
		"-- purge", "deb-systemd-helper purge picoseg.service", "deb-systemd-helper unmask picoseg.service",
		"systemctl --system daemon-reload", "-- state and logs deleted")
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
