package packagetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonRunsWithOnlyNetAdmin runs picoseg run as the packages run it:
// an unprivileged user holding CAP_NET_ADMIN alone (ambient and bounding
// set) with no_new_privs, as systemd's unit and procd's ujail set it up. In
// a network namespace of its own it must install its table, answer status,
// reload on SIGHUP and remove its table on SIGTERM. The control: the same
// user without the capability cannot start, so the drop is real.
func TestDaemonRunsWithOnlyNetAdmin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and drop to a user")
	}
	for _, tool := range []string{"ip", "nft", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin, policy, sock := unprivilegedSetup(t)
	ns := newNetns(t)

	unprivileged := func(caps string) *exec.Cmd {
		args := []string{"netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all" + caps, "--ambient-caps=-all" + caps, "--bounding-set=-all" + caps, "--no-new-privs",
			bin, "run", "-c", policy, "--lock", filepath.Join(filepath.Dir(sock), "picoseg.lock")}
		return exec.Command("ip", args...)
	}

	// Control: without the capability the same user reads the policy but
	// the kernel refuses it its table.
	if out, err := unprivileged("").CombinedOutput(); err == nil || !strings.Contains(string(out), "operation not permitted") {
		t.Fatalf("picoseg run without CAP_NET_ADMIN: %v, want the kernel's refusal:\n%s", err, out)
	}

	var log bytes.Buffer
	cmd := unprivileged(",+net_admin")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitUntil(t, &log, exited, func() bool { _, err := os.Stat(sock); return err == nil })
	if out := run(t, "ip", "netns", "exec", ns, "nft", "list", "tables"); !strings.Contains(out, "table inet picoseg") {
		t.Fatalf("no table inet picoseg in the namespace:\n%s\nlog:\n%s", out, log.String())
	}
	if out := run(t, bin, "status", "--socket", sock); !strings.Contains(out, "monitor mode") {
		t.Errorf("status: %s", out)
	}
	// Reload: the unprivileged daemon reads the policy again.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, &log, exited, func() bool { return strings.Contains(run(t, bin, "status", "--socket", sock), "generation 2") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("picoseg run ended with %v\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("picoseg run did not stop on SIGTERM\n%s", log.String())
	}
	if out := run(t, "ip", "netns", "exec", ns, "nft", "list", "tables"); strings.Contains(out, "picoseg") {
		t.Errorf("table left behind after SIGTERM:\n%s", out)
	}
}

// unprivilegedSetup builds picoseg and writes the Debian starter policy with
// its socket and inventory moved into two directories of their own, owned
// by the user the daemon runs as (nobody), as StateDirectory and
// RuntimeDirectory (or the init script's mkdir and chown) make them.
func unprivilegedSetup(t *testing.T) (bin, policy, sock string) {
	t.Helper()
	dir := t.TempDir()
	// The daemon's user must reach the policy, as it reaches /etc/picoseg.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin = filepath.Join(dir, "picoseg")
	build := exec.Command("go", "build", "-o", bin, "./cmd/picoseg")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"run", "lib"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, d), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	sock = filepath.Join(dir, "run", "picoseg.sock")
	policy = filepath.Join(dir, "picoseg.toml")
	starter := source(t, "packaging/debian/picoseg.toml")
	starter = bytes.Replace(starter, []byte(`"/run/picoseg/picoseg.sock"`), []byte(fmt.Sprintf("%q", sock)), 1)
	starter = bytes.Replace(starter, []byte(`"/var/lib/picoseg/devices.json"`), []byte(fmt.Sprintf("%q", filepath.Join(dir, "lib", "devices.json"))), 1)
	if err := os.WriteFile(policy, starter, 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, policy, sock
}

// newNetns creates a network namespace with a random name, deleted with
// the test.
func newNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "pkgtest-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// waitUntil polls cond for up to 10 s, failing early if the daemon exits.
func waitUntil(t *testing.T, log *bytes.Buffer, exited chan error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("picoseg run exited: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out\n%s", log.String())
		}
	}
}
