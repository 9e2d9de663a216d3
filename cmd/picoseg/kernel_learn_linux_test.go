package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKernelLearnFromDaemon is the walk-through in the lab: the daemon
// runs the demo's zones and segments in monitor mode with a learning
// record while devices do their usual things; learn --from-daemon writes
// a proposal; in enforce mode the same traffic passes, and the camera
// probing the hub (which the lab delivers without picoseg: the control)
// or another port on the internet is dropped.
func TestKernelLearnFromDaemon(t *testing.T) {
	f := newFixture(t)
	for _, s := range []struct {
		host string
		port int
	}{{"wan", 8443}, {"wan", 22}, {"hub", 22}, {"hub", 80}, {"plug1", 80}, {"plug2", 80}} {
		f.discard(s.host, s.port)
	}
	probes := []struct {
		to   string
		port uint16
	}{{"hub", 22}, {"hub", 80}, {"wan", 22}}
	for _, p := range probes {
		if !f.can("cam", p.to, p.port) {
			t.Fatalf("control: without picoseg the lab does not deliver cam -> %s:%d", p.to, p.port)
		}
	}
	demo := labPolicy(t, nil)
	base := strings.Replace(demo[:strings.Index(demo, "[[group]]")], `mode = "enforce"`, `mode = "monitor"`, 1)
	basePath, record := filepath.Join(f.dir, "base.toml"), filepath.Join(f.dir, "learn.json")
	if err := os.WriteFile(basePath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	f.args = []string{"--learn-record", record}
	f.start(base)
	usual := func() (failed []string) {
		for _, u := range []struct {
			from, to string
			port     uint16
		}{{"cam", "wan", 8443}, {"hub", "plug1", 80}, {"hub", "plug2", 80}, {"lan", "hub", 80}} {
			if !f.can(u.from, u.to, u.port) {
				failed = append(failed, u.from+" -> "+u.to)
			}
		}
		return failed
	}
	for i := 0; i < 3; i++ {
		if failed := usual(); len(failed) > 0 {
			t.Fatalf("monitor mode dropped %v", failed)
		}
	}
	f.signal(syscall.SIGTERM)
	select {
	case <-f.daemon.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	proposal := filepath.Join(f.dir, "proposal.toml")
	code, _, errs := runCmd(t, "learn", "-c", basePath, "--from-daemon", record, "-o", proposal)
	if code != 0 {
		t.Fatalf("learn: exit %d\n%s", code, errs)
	}
	text, err := os.ReadFile(proposal)
	if err != nil {
		t.Fatal(err)
	}
	f.args = nil
	f.start(strings.Replace(string(text), `mode = "monitor"`, `mode = "enforce"`, 1))
	if failed := usual(); len(failed) > 0 {
		t.Errorf("the learned policy drops the usual traffic %v:\n%s", failed, text)
	}
	for _, p := range probes {
		if f.can("cam", p.to, p.port) {
			t.Errorf("the learned policy lets cam reach %s:%d, which it never did:\n%s", p.to, p.port, text)
		}
	}
}

// TestKernelManyRateClasses starts the daemon with six rules that each
// have a new-flow rate, as learned proposals have: six classes with a
// rate, twenty-four sets in one transaction. The kernel's answer to it
// overflowed the netlink socket's default receive buffer (ENOBUFS) from
// four such classes on, and the daemon did not start.
func TestKernelManyRateClasses(t *testing.T) {
	f := newFixture(t)
	f.discard("wan", 8443)
	rules := ""
	for i, port := range []int{8443, 8444, 8445, 8446, 8447, 8448} {
		rules += fmt.Sprintf("\n[[allow]]\nname = \"rate-%d\"\nfrom = \"device:cam\"\nto = \"zone:wan\"\nservices = [\"tcp/%d\"]\nmax_new_flows = \"%d/m\"\n", i, port, 10+i)
	}
	f.start(labPolicy(t, nil) + rules)
	if !f.can("cam", "wan", 8443) {
		t.Errorf("cam -> wan:8443 under its rule")
	}
}
