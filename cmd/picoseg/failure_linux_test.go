package main

// Kernel tests of what happens when things fail: a second daemon, a lost
// table, a queue owned by another program, bridges outside the zones, and
// the daemon's privileges.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/daemon"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// runSecond runs another `picoseg run` in the gateway with the policy and
// lock of f, on a socket of its own, and returns its exit error and output.
func (f *fixture) runSecond(extra ...string) (error, string) {
	f.t.Helper()
	self, err := os.Executable()
	if err != nil {
		f.t.Fatal(err)
	}
	os.Setenv(runMainEnv, "1")
	defer os.Unsetenv(runMainEnv)
	args := append([]string{"run", "-c", f.policy, "--socket", filepath.Join(f.dir, "second.sock"),
		"--inventory-state", filepath.Join(f.dir, "second.json"), "--lock", f.lock()}, extra...)
	p, err := f.lab.Gateway.Start(f.ctx, self, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		p.Stop()
		f.t.Fatalf("the second daemon kept running:\n%s", p.Output())
	}
	return p.Wait(), p.Output()
}

// nftTable is the handles of `nft -a list table inet picoseg`, in order:
// they change if the table or any rule is installed again.
func (f *fixture) nftTable() string {
	f.t.Helper()
	out, err := f.lab.Gateway.Run(f.ctx, "nft", "-a", "list", "table", "inet", "picoseg")
	if err != nil {
		return ""
	}
	var handles []string
	for _, m := range regexp.MustCompile(`# handle (\d+)`).FindAllStringSubmatch(out, -1) {
		handles = append(handles, m[1])
	}
	return strings.Join(handles, " ")
}

// ctMark is the conntrack mark of the TCP flow to dport, "" when none.
func (f *fixture) ctMark(dport int) string {
	f.t.Helper()
	out, _ := f.lab.Gateway.Run(f.ctx, "conntrack", "-L", "-p", "tcp", "--dport", strconv.Itoa(dport))
	m := regexp.MustCompile(`mark=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// controlCamReachesAdmin starts the echo servers of the camera's upload
// (wan tcp/8443) and of the admin PC (lan tcp/22), and fails the test unless
// the camera reaches the admin PC without picoseg: the control for the
// denial these tests check.
func (f *fixture) controlCamReachesAdmin() {
	f.t.Helper()
	f.echo("wan", 8443)
	f.echo("lan", 22)
	if !f.can("cam", "lan", 22) {
		f.t.Fatal("lab without picoseg: the camera cannot reach the admin PC")
	}
}

// camUpload opens the camera's long-lived upload to its cloud and waits
// until it flows.
func (f *fixture) camUpload() *chatter {
	f.t.Helper()
	ch := f.chat("cam", netip.MustParseAddrPort("198.51.100.2:8443"))
	ch.waitEchoes(f.t, 5)
	return ch
}

// TestKernelSecondInstanceChangesNothing: a second `picoseg run` while one
// runs exits non-zero and leaves the first one's table, its conntrack marks
// and its denials alone.
func TestKernelSecondInstanceChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.controlCamReachesAdmin()
	f.start(labPolicy(t, nil))
	ch := f.camUpload()
	table, mark := f.nftTable(), f.ctMark(8443)
	if table == "" || mark == "" || mark == "0" {
		t.Fatalf("before: table %q, mark of the accepted flow %q", table, mark)
	}
	err, out := f.runSecond()
	if err == nil {
		t.Fatalf("a second picoseg run exited 0:\n%s", out)
	}
	if !strings.Contains(out, "another picoseg is running") {
		t.Errorf("the second daemon does not say why it stopped:\n%s", out)
	}
	if got := f.nftTable(); got != table {
		t.Errorf("the second daemon changed the table:\nbefore:\n%s\nafter:\n%s", table, got)
	}
	if got := f.ctMark(8443); got != mark {
		t.Errorf("the accepted flow's conntrack mark went from %s to %q", mark, got)
	}
	if f.can("cam", "lan", 22) {
		t.Error("after the second daemon exited, the camera reached the admin PC: the first one no longer enforces")
	}
	ch.waitEchoes(t, 5)
	if st := f.status(); st.PID != f.daemon.PID() {
		t.Errorf("status answered by pid %d, want the first daemon %d", st.PID, f.daemon.PID())
	}
}

// TestKernelLostTableRestored: `nft flush ruleset` and `nft delete table`
// remove picoseg's table; it is back within a few seconds, the denial holds
// again, status counts the restores and an alert says so. A flow the
// policy denies that opened while the table was gone is cut once it is
// back; an accepted flow keeps flowing throughout.
func TestKernelLostTableRestored(t *testing.T) {
	f := newFixture(t)
	f.controlCamReachesAdmin()
	f.start(labPolicy(t, nil))
	ch := f.camUpload()
	if f.can("cam", "lan", 22) {
		t.Fatal("the camera reached the admin PC with picoseg running")
	}
	for i, cmd := range [][]string{{"flush", "ruleset"}, {"delete", "table", "inet", "picoseg"}} {
		if _, err := f.lab.Gateway.Run(f.ctx, "nft", cmd...); err != nil {
			t.Fatal(err)
		}
		gone := time.Now()
		for f.nftTable() == "" {
			if time.Since(gone) > 5*time.Second {
				t.Fatalf("nft %s: the table was not restored within 5 s", strings.Join(cmd, " "))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("nft %s: table back after %v", strings.Join(cmd, " "), time.Since(gone).Round(10*time.Millisecond))
		if f.can("cam", "lan", 22) {
			t.Errorf("nft %s: the camera reached the admin PC after the table came back", strings.Join(cmd, " "))
		}
		if st := f.status(); st.RulesetRestores != uint64(i+1) {
			// One restore per loss: the table installed again is taken as
			// the one to keep.
			t.Errorf("status counts %d restores, want %d", st.RulesetRestores, i+1)
		}
		ch.waitEchoes(t, 5)
	}
	// The bridge table (ARP and neighbour checks) lost alone is a loss too.
	if _, err := f.lab.Gateway.Run(f.ctx, "nft", "list", "table", "bridge", "picoseg"); err != nil {
		t.Fatalf("no table bridge picoseg to delete: %v", err)
	}
	if _, err := f.lab.Gateway.Run(f.ctx, "nft", "delete", "table", "bridge", "picoseg"); err != nil {
		t.Fatal(err)
	}
	for gone := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := f.lab.Gateway.Run(f.ctx, "nft", "list", "table", "bridge", "picoseg"); err == nil {
			t.Logf("nft delete table bridge picoseg: table back after %v", time.Since(gone).Round(10*time.Millisecond))
			break
		}
		if time.Since(gone) > 5*time.Second {
			t.Fatal("table bridge picoseg was not restored within 5 s")
		}
	}
	// The count follows the install it counts by a moment.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := f.status()
		if st.RulesetRestores == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("status counts %d restores, want 3", st.RulesetRestores)
			break
		}
	}

	// `systemctl restart nftables` with an admin's own table that tracks
	// connections, and a flow opened in the gap, then idle: the daemon is
	// paused so that the gap lasts. Once the table is back, the flow is
	// judged from its original direction and marked DROPPED before it
	// sends again. (Without a table that uses conntrack, the kernel tracks
	// nothing in the gap, and a gap flow's next packet is queued as new.)
	f.signal(syscall.SIGSTOP)
	conf := filepath.Join(f.dir, "nftables.conf")
	os.WriteFile(conf, []byte("flush ruleset\ntable inet filter {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n  ct state established,related accept\n }\n}\n"), 0o644)
	if out, err := f.lab.Gateway.Run(f.ctx, "nft", "-f", conf); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	sneak, err := f.lab.Host("cam").Dial(f.ctx, "tcp", "10.88.0.10:22")
	if err != nil {
		t.Fatalf("opening a flow while the table is gone: %v", err)
	}
	defer sneak.Close()
	f.signal(syscall.SIGCONT)
	dropped := strconv.FormatUint(uint64(nft.DefaultMarks().Dropped()), 10) // DROPPED in the default mark mask
	for deadline := time.Now().Add(5 * time.Second); f.ctMark(22) != dropped; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle flow opened in the gap has conntrack mark %q, want %s (DROPPED)", f.ctMark(22), dropped)
		}
	}
	sneak.SetDeadline(time.Now().Add(time.Second))
	if _, err := sneak.Write([]byte("hello")); err == nil {
		if _, err := sneak.Read(make([]byte, 5)); err == nil {
			t.Error("the flow opened in the gap still echoes")
		}
	}
	ch.waitEchoes(t, 5)
	var alerts []struct {
		Type string `json:"type"`
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		daemon.Query(f.sock, "alerts", &alerts)
		for _, a := range alerts {
			if a.Type == "ruleset_restored" {
				return
			}
		}
	}
	t.Errorf("no ruleset_restored alert: %+v", alerts)
}

// startFailing starts the daemon with policy and returns its exit error and
// output once it has exited; it fails the test if the daemon keeps running.
func (f *fixture) startFailing(policy string) (error, string) {
	f.t.Helper()
	if err := os.WriteFile(f.policy, []byte(policy), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return f.runSecond()
}

// TestKernelQueueBindFailure: another program owns the first queue. The
// daemon must not say "running" while new flows bypass it: it exits
// non-zero, and leaves the table as on_daemon_down says.
func TestKernelQueueBindFailure(t *testing.T) {
	for _, mode := range []string{"open", "closed"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			ns, err := os.Open(filepath.Join("/run/netns", f.lab.Gateway.NetNS))
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			// The squatter accepts everything it is handed.
			ctx, cancel := context.WithCancel(f.ctx)
			squat, err := queue.New(queue.Options{QueueBase: 4200, Queues: 1, NetNS: int(ns.Fd())},
				queue.HandlerFunc(func(*queue.Packet) (bool, uint32) { return true, 0 }))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- squat.Run(ctx) }()
			defer func() { cancel(); <-done }()
			select {
			case <-squat.Ready():
			case err := <-done:
				t.Fatalf("binding queue 4200 in the lab: %v", err)
			}
			err, out := f.startFailing(labPolicy(t, func(s string) string {
				return strings.Replace(s, `on_daemon_down = "open"`, `on_daemon_down = "`+mode+`"`, 1)
			}))
			if err == nil {
				t.Fatalf("the daemon exited 0 with its queue owned by another program:\n%s", out)
			}
			if !strings.Contains(out, "queue 4200") || strings.Contains(out, "picoseg running") {
				t.Errorf("the daemon's output should name queue 4200 and never say running:\n%s", out)
			}
			if kept := f.nftTable() != ""; kept != (mode == "closed") {
				t.Errorf("on_daemon_down = %s: table kept = %v after a failed start", mode, kept)
			}
		})
	}
}

// TestKernelBridgeFilterOnlyZoneBridges: bridge_filter reaches the zones'
// bridges only. Two hosts on another bridge (lan0 holding two LAN hosts,
// in no zone of the policy) ping each other before picoseg starts, while
// it runs and after it stops; the global br_netfilter switch stays off and
// br-iot's own switch is put back on exit.
func TestKernelBridgeFilterOnlyZoneBridges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root for network namespaces, nftables and NFQUEUE")
	}
	if err := lab.Available(); err != nil {
		t.Skipf("integration test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := lab.DefaultOptions()
	opts.IPv6 = false
	opts.Hosts = append(opts.Hosts, lab.HostSpec{Name: "lan2", Side: lab.SideLAN, Addr: netip.MustParseAddr("10.88.0.11"), MAC: net.HardwareAddr{2, 0, 0, 0, 0x88, 0x11}})
	l, err := lab.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	f := &fixture{t: t, ctx: ctx, lab: l, dir: dir, policy: filepath.Join(dir, "policy.toml"), sock: filepath.Join(dir, "picoseg.sock")}
	ping := func() error {
		return l.Host("lan").Ping(ctx, netip.MustParseAddr("10.88.0.11"), 3)
	}
	sysfs := func(path string) string {
		out, _ := l.Gateway.Run(ctx, "cat", path)
		return strings.TrimSpace(out)
	}
	if err := ping(); err != nil {
		t.Fatalf("lab without picoseg: lan cannot ping lan2 on their bridge: %v", err)
	}
	// The LAN zone names an interface that is not there: lan0 is a bridge
	// in no zone.
	f.start(labPolicy(t, func(s string) string {
		return strings.Replace(s, `interfaces = ["lan0"]`, `interfaces = ["lan9"]`, 1)
	}))
	if err := ping(); err != nil {
		t.Errorf("with picoseg running, two hosts on a bridge in no zone cannot ping each other: %v", err)
	}
	if v := sysfs("/proc/sys/net/bridge/bridge-nf-call-iptables"); v != "0" {
		t.Errorf("picoseg changed the global bridge-nf-call-iptables to %s", v)
	}
	if v := sysfs("/sys/class/net/br-iot/bridge/nf_call_iptables"); v != "1" {
		t.Errorf("br-iot's nf_call_iptables is %s while picoseg runs, want 1", v)
	}
	if f.can("plug1", "plug2", 80) {
		t.Error("plugs on br-iot reached each other: bridge_filter did not reach the zone's bridge")
	}
	f.signal(syscall.SIGTERM)
	<-f.daemon.Done()
	if v := sysfs("/sys/class/net/br-iot/bridge/nf_call_iptables"); v != "0" {
		t.Errorf("br-iot's nf_call_iptables is %s after picoseg stopped, want 0 as before", v)
	}
	if err := ping(); err != nil {
		t.Errorf("after picoseg stopped, lan cannot ping lan2: %v", err)
	}
}

// TestKernelUnprivilegedUser: with [daemon] user set, the daemon runs as
// that user with CAP_NET_ADMIN alone (in every set, the bounding set too),
// says so in status, and still enforces, reloads and restores its table.
// Changing every thread's credentials needs a binary built without cgo,
// as `make build` makes it; the race-enabled test binary is not one.
func TestKernelUnprivilegedUser(t *testing.T) {
	f := newFixture(t)
	if testing.Short() {
		t.Skip("builds the picoseg binary")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	f.binary = filepath.Join(f.dir, "picoseg")
	build := exec.CommandContext(f.ctx, "go", "build", "-o", f.binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The unprivileged daemon must read its policy again on reload.
	for _, d := range []string{filepath.Dir(f.dir), f.dir} {
		os.Chmod(d, 0o755)
	}
	f.controlCamReachesAdmin()
	withUser := func(s string) string {
		return strings.Replace(s, "queues = 2\n", "queues = 2\nuser = \"nobody\"\n", 1)
	}
	f.start(labPolicy(t, withUser))

	proc, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.daemon.PID()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid":    strings.Repeat(nobody.Uid+"\t", 3) + nobody.Uid,
		"CapEff": "0000000000001000", "CapPrm": "0000000000001000", "CapBnd": "0000000000001000",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
	}
	for _, line := range strings.Split(string(proc), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if w, ok := want[k]; ok {
			if strings.TrimSpace(v) != w {
				t.Errorf("/proc/PID/status %s: %q, want %q", k, strings.TrimSpace(v), w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("/proc/PID/status lacks %v", want)
	}
	st := f.status()
	if p := st.Privileges; p == nil || strconv.Itoa(p.UID) != nobody.Uid || strings.Join(p.Capabilities, " ") != "cap_net_admin" {
		t.Errorf("status privileges %+v, want uid %s and cap_net_admin only", p, nobody.Uid)
	}
	if !f.can("cam", "wan", 8443) || f.can("cam", "lan", 22) {
		t.Fatal("the unprivileged daemon does not decide as the policy says")
	}
	// A reload that denies uploads, read and installed as nobody.
	denying := labPolicy(t, func(s string) string {
		return withUser(strings.Replace(s, `services = ["tcp/8443"]`, `services = ["tcp/9443"]`, 1))
	})
	if err := os.WriteFile(f.policy, []byte(denying), 0o644); err != nil {
		t.Fatal(err)
	}
	f.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); f.status().Generation != st.Generation+1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the unprivileged daemon did not reload:\n%s", f.daemon.Output())
		}
	}
	if f.can("cam", "wan", 8443) {
		t.Error("after the reload as nobody, the denied upload passed")
	}
	if _, err := f.lab.Gateway.Run(f.ctx, "nft", "flush", "ruleset"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); f.status().RulesetRestores != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the unprivileged daemon did not restore its table:\n%s", f.daemon.Output())
		}
	}
	if f.can("cam", "lan", 22) {
		t.Error("after the table was restored as nobody, the camera reached the admin PC")
	}
}
