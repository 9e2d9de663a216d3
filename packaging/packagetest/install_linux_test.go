package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestInstallDeb installs this machine's .deb with dpkg, checks what an
// admin would find, removes it (the policy, a conffile, stays), and purges
// it, leaving the machine as it was: the user is deleted at the end too.
// It changes the machine, so it runs only when asked to, as root:
// PICOSEG_PACKAGE_INSTALL=1 (make package-test sets it).
func TestInstallDeb(t *testing.T) {
	if os.Getenv("PICOSEG_PACKAGE_INSTALL") != "1" {
		t.Skip("installs the .deb on this machine: set PICOSEG_PACKAGE_INSTALL=1 (make package-test, as root)")
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root")
	}
	var deb string
	for _, p := range built(t, "deb") {
		if _, arch := nameParts(t, p); arch == "amd64" {
			deb = p
		}
	}
	if deb == "" {
		t.Skip("no amd64 .deb")
	}
	if err := exec.Command("dpkg-query", "-W", "picoseg").Run(); err == nil {
		t.Skip("picoseg is already installed here: not touching it")
	}
	userExisted := exec.Command("getent", "passwd", "picoseg").Run() == nil
	// postinst turns conntrack accounting on at once (sysctl.d is only read
	// at boot): put this machine's setting back afterwards.
	const acct = "/proc/sys/net/netfilter/nf_conntrack_acct"
	acctWas, acctErr := os.ReadFile(acct)
	t.Cleanup(func() {
		run(t, "dpkg", "--purge", "picoseg")
		if acctErr == nil {
			os.WriteFile(acct, acctWas, 0o644)
		}
		if !userExisted {
			// Debian leaves a package's system user; a test leaves nothing.
			exec.Command("deluser", "--system", "picoseg").Run()
			exec.Command("delgroup", "--system", "picoseg").Run()
		}
	})

	run(t, "dpkg", "-i", deb)
	checkInstalled(t, acct)
	checkRemoval(t)
}

// Paths the .deb installs that the install test looks at.
const (
	installedPolicy = "/etc/picoseg/picoseg.toml"
	installedUnit   = "/usr/lib/systemd/system/picoseg.service"
)

// checkInstalled checks what an admin finds after dpkg -i: a system user
// without a shell, the unit in place, enabled and valid, conntrack
// accounting on, and a starter policy in monitor mode that the service
// user can read.
func checkInstalled(t *testing.T, acct string) {
	t.Helper()
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "picoseg")), ":")
	if len(pw) != 7 {
		t.Fatalf("getent passwd picoseg: %q", pw)
	}
	if uid, _ := strconv.Atoi(pw[2]); uid == 0 || uid >= 1000 {
		t.Errorf("picoseg has uid %d: want a system user", uid)
	}
	if !strings.HasSuffix(pw[6], "nologin") && pw[6] != "/bin/false" {
		t.Errorf("picoseg's shell is %s: want none", pw[6])
	}
	unit, policyPath := installedUnit, installedPolicy
	if _, err := os.Stat(unit); err != nil {
		t.Fatalf("unit not installed: %v", err)
	}
	if _, err := os.Stat("/usr/bin/deb-systemd-helper"); err == nil {
		if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/picoseg.service"); err != nil {
			t.Errorf("the service is not enabled after a first install: %v", err)
		}
	}
	if b, err := os.ReadFile(acct); err == nil && strings.TrimSpace(string(b)) != "1" {
		t.Errorf("conntrack accounting is %s after install, want 1", b)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out := run(t, "systemd-analyze", "verify", unit); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", unit, out)
		}
	}
	// The service user, not only root, must be able to read the policy.
	out := run(t, "setpriv", "--reuid=picoseg", "--regid=picoseg", "--init-groups", "--",
		"/usr/sbin/picoseg", "check", "-c", policyPath)
	if !strings.Contains(out, "mode monitor") {
		t.Errorf("picoseg check as picoseg: %s", out)
	}
	if st := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "picoseg"); !strings.Contains(st, policyPath) {
		t.Errorf("dpkg does not list %s as a conffile: %q", policyPath, st)
	}
}

// checkRemoval removes and purges the package: an admin's edit of the
// policy survives removal, as Debian policy says conffiles do; purge
// leaves nothing of it.
func checkRemoval(t *testing.T) {
	t.Helper()
	unit, policyPath := installedUnit, installedPolicy
	edited := append(source(t, "packaging/debian/picoseg.toml"), "\n# edited\n"...)
	if err := os.WriteFile(policyPath, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "--remove", "picoseg")
	if b, err := os.ReadFile(policyPath); err != nil || string(b) != string(edited) {
		t.Errorf("after dpkg --remove the policy is gone or changed (%v)", err)
	}
	for _, f := range []string{"/usr/sbin/picoseg", unit} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s still there after dpkg --remove", f)
		}
	}
	if st := run(t, "dpkg-query", "-W", "-f=${Status}", "picoseg"); st != "deinstall ok config-files" {
		t.Errorf("status after remove: %q", st)
	}
	run(t, "dpkg", "--purge", "picoseg")
	for _, dir := range []string{filepath.Dir(policyPath), "/var/lib/picoseg"} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s still there after purge", dir)
		}
	}
	// Purge leaves no enable or mask state behind.
	for _, root := range []string{"/etc/systemd", "/var/lib/systemd"} {
		if out := run(t, "find", root, "-name", "picoseg*"); strings.TrimSpace(out) != "" {
			t.Errorf("left after purge:\n%s", out)
		}
	}
}

// run runs a command and fails the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
