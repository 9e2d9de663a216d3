package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newLab builds a lab for one test and closes it when the test ends, however
// it ends. It skips the test when labs cannot be built here.
func newLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("no network namespace lab here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	l, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab %s built in %v", l.ID, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// netnsList returns the namespaces `ip netns list` shows.
func netnsList(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

// assertGone fails the test if any namespace or the record of lab id remains.
func assertGone(t *testing.T, id string) {
	t.Helper()
	for ns := range netnsList(t) {
		if strings.HasPrefix(ns, nsName(id, "")) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if _, err := os.Stat(recordPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record %s left behind (stat: %v)", recordPath(id), err)
	}
}

func TestLabConnectivity(t *testing.T) {
	t.Parallel()
	l := newLab(t, DefaultOptions())
	ctx := t.Context()

	have := netnsList(t)
	for _, ns := range l.Namespaces() {
		if !have[ns] {
			t.Errorf("namespace %s missing from ip netns list", ns)
		}
	}

	t.Run("interfaces", func(t *testing.T) {
		out, err := l.Gateway.Run(ctx, "ip", "-br", "link")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{IfaceIoT, IfaceLAN, IfaceWAN, "v-cam", "v-hub"} {
			if !strings.Contains(out, want) {
				t.Errorf("gateway has no %s:\n%s", want, out)
			}
		}
		cam := l.Host("cam")
		out, err = cam.Run(ctx, "ip", "-br", "link", "show", HostIface)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, cam.MAC.String()) {
			t.Errorf("cam's %s lacks MAC %v:\n%s", HostIface, cam.MAC, out)
		}
	})

	t.Run("every host pings its gateway", func(t *testing.T) {
		for _, h := range l.order {
			if err := h.Ping(ctx, h.Router, 1); err != nil {
				t.Error(err)
			}
			if err := h.Ping(ctx, h.Router6, 1); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("sides reach each other through the gateway", func(t *testing.T) {
		srv := map[string]*Server{}
		for _, name := range []string{"cam", "lan", "wan"} {
			s, err := l.Host(name).ServeTCP(ctx, 8080)
			if err != nil {
				t.Fatal(err)
			}
			srv[name] = s
		}
		for _, pair := range [][2]string{{"lan", "wan"}, {"wan", "lan"}, {"cam", "wan"}, {"lan", "cam"}, {"wan", "cam"}, {"hub", "lan"}} {
			from, to := l.Host(pair[0]), l.Host(pair[1])
			if err := from.Ping(ctx, to.Addr, 1); err != nil {
				t.Error(err)
			}
			if err := from.Ping(ctx, to.Addr6, 1); err != nil {
				t.Error(err)
			}
			if err := from.TCPConnect(ctx, netipAddrPort(to.Addr, 8080), 2*time.Second); err != nil {
				t.Error(err)
			}
			if err := from.TCPConnect(ctx, netipAddrPort(to.Addr6, 8080), 2*time.Second); err != nil {
				t.Error(err)
			}
		}
		if got := srv["cam"].Accepted(); got != 4 {
			t.Errorf("cam's server accepted %d connections, want 4", got)
		}
	})

	t.Run("devices on the bridge reach each other", func(t *testing.T) {
		plug1, plug2 := l.Host("plug1"), l.Host("plug2")
		if err := plug1.Ping(ctx, plug2.Addr, 2); err != nil {
			t.Error(err)
		}
		if err := plug2.Ping(ctx, plug1.Addr6, 1); err != nil {
			t.Error(err)
		}
		s, err := plug2.ServeTCP(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, err := plug1.Dial(ctx, "tcp", netipAddrPort(plug2.Addr, s.Port).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := c.Read(buf); err != nil || string(buf) != "hello" {
			t.Errorf("echo = %q, %v; want hello", buf, err)
		}
		// The gateway learned the devices' MACs on the bridge: proof the
		// frames were bridged, not routed.
		out, err := l.Gateway.Run(ctx, "bridge", "fdb", "show", "br", IfaceIoT)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, plug1.MAC.String()) {
			t.Errorf("bridge fdb lacks %v:\n%s", plug1.MAC, out)
		}
	})

	t.Run("udp", func(t *testing.T) {
		wan := l.Host("wan")
		s, err := wan.ServeUDP(ctx, 5353)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Host("cam").UDPProbe(ctx, netipAddrPort(wan.Addr, 5353), []byte("ping"), 2*time.Second)
		if err != nil || string(got) != "ping" {
			t.Errorf("UDPProbe = %q, %v; want the echo", got, err)
		}
		if s.Accepted() != 1 {
			t.Errorf("server saw %d datagrams, want 1", s.Accepted())
		}
		_, err = l.Host("cam").UDPProbe(ctx, netipAddrPort(wan.Addr, 5354), []byte("ping"), 2*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("UDPProbe to a closed port: %v, want ECONNREFUSED", err)
		}
	})

	t.Run("refused and timed out connections differ", func(t *testing.T) {
		lan := l.Host("lan")
		err := lan.TCPConnect(ctx, netipAddrPort(l.Host("wan").Addr, 9), 2*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
		}
		// Nobody answers ARP for .99 on the bridge: the SYN never leaves.
		err = lan.TCPConnect(ctx, netipAddrPort(mustAddr("10.77.0.99"), 80), 300*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connect to a silent address: %v, want a timeout", err)
		}
		if err := lan.Ping(ctx, mustAddr("10.77.0.99"), 1); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("ping of a silent address: %v, want a timeout", err)
		}
	})
}

func TestIperf3(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("iperf3 not installed")
	}
	t.Parallel()
	l := newLab(t, DefaultOptions())
	ctx := t.Context()
	wan, lan := l.Host("wan"), l.Host("lan")
	srv, err := wan.StartIperf3Server(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	res, err := lan.Iperf3(ctx, netipAddrPort(wan.Addr, 5201), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lan → wan through the gateway: %.2f Gbit/s, %d retransmits", res.BitsPerSecond/1e9, res.Retransmits)
	if res.BitsPerSecond <= 0 {
		t.Errorf("rate = %v, want > 0", res.BitsPerSecond)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("stopping the server: %v", err)
	}
	if _, err := lan.Iperf3(ctx, netipAddrPort(wan.Addr, 5201), 1); err == nil {
		t.Error("iperf3 against a stopped server succeeded")
	}
}

func TestBridgeFilter(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.IPv6 = false
	opts.Hosts = opts.Hosts[:2]
	l := newLab(t, opts)
	rootBefore, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if on, err := l.BridgeFilterEnabled(); err != nil || on {
		t.Fatalf("new lab: bridge filter %v, %v; want off", on, err)
	}
	if err := l.EnableBridgeFilter(); err != nil {
		t.Fatal(err)
	}
	if on, err := l.BridgeFilterEnabled(); err != nil || !on {
		t.Fatalf("after EnableBridgeFilter: %v, %v; want on", on, err)
	}
	out, err := l.Gateway.Run(t.Context(), "sysctl", "-n", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
	if err != nil || strings.Fields(out)[0] != "1" || strings.Fields(out)[1] != "1" {
		t.Errorf("sysctl in the gateway: %q, %v; want 1 1", out, err)
	}
	// Per namespace: the other labs and the host are untouched.
	if rootAfter, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); string(rootAfter) != string(rootBefore) {
		t.Errorf("host's bridge-nf-call-iptables changed from %q to %q", rootBefore, rootAfter)
	}
	cam := l.Host("cam")
	if err := cam.Ping(t.Context(), l.Host("plug1").Addr, 1); err != nil {
		t.Errorf("bridged traffic with the filter on (no rules): %v", err)
	}
	// IPv6 off: nothing but IPv4 in the hosts.
	if out, err := cam.Run(t.Context(), "sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("IPv6 in an IPv4-only lab: disable_ipv6 = %q, %v", out, err)
	}
}

func TestCloseStopsEverythingAndIsIdempotent(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.Hosts = opts.Hosts[:1]
	l := newLab(t, opts)
	ctx := t.Context()
	cam := l.Host("cam")
	p, err := cam.Start(ctx, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	// A process the lab did not start and nobody waits for.
	stray := l.Gateway.Command(ctx, "sleep", "60")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan struct{})
	go func() { stray.Wait(); close(strayDone) }()
	srv, err := cam.ServeTCP(ctx, 80)
	if err != nil {
		t.Fatal(err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Close left a started process running")
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Error("Close left a stray process running in the gateway")
	}
	if _, err := srv.ln.Accept(); err == nil {
		t.Error("server still accepts after Close")
	}
	assertGone(t, l.ID)
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := cam.Start(ctx, "true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestNewCleansUpOnFailure(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	t.Parallel()
	before := netnsList(t)
	opts := DefaultOptions()
	opts.ID = "f" + randomID()
	// A host whose namespace already exists makes New fail half-way. The
	// record of a made-up lab owned by this process keeps a Cleanup in a
	// concurrent test binary from taking the blocker for an orphan.
	blocker := nsName(opts.ID, "hub")
	blockerRec := record{ID: "b" + randomID(), PID: os.Getpid(), PIDStart: processStart(os.Getpid()), Namespaces: []string{blocker}}
	if err := writeRecord(blockerRec); err != nil {
		t.Fatal(err)
	}
	defer removeRecord(blockerRec.ID)
	if err := run(t.Context(), "ip", "netns", "add", blocker); err != nil {
		t.Fatal(err)
	}
	defer deleteNetNS(context.Background(), blocker)
	l, err := New(t.Context(), opts)
	if err == nil {
		l.Close()
		t.Fatal("New succeeded with a host namespace taken")
	}
	t.Logf("New failed as expected: %v", err)
	for ns := range netnsList(t) {
		if !before[ns] && ns != blocker && strings.HasPrefix(ns, nsName(opts.ID, "")) {
			t.Errorf("failed New left namespace %s", ns)
		}
	}
	if _, err := os.Stat(recordPath(opts.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed New left its record")
	}
	if !netnsList(t)[blocker] {
		t.Errorf("failed New deleted namespace %s, which it had not created", blocker)
	}
}

func TestTwoLabsDoNotCollide(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.Hosts = []HostSpec{opts.Hosts[0], opts.Hosts[4], opts.Hosts[5]} // cam, lan, wan
	type built struct {
		l   *Lab
		err error
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	results := make(chan built, 2)
	for range 2 {
		go func() {
			l, err := New(t.Context(), opts)
			results <- built{l, err}
		}()
	}
	var labs []*Lab
	for range 2 {
		b := <-results
		if b.err != nil {
			t.Error(b.err)
			continue
		}
		t.Cleanup(func() { b.l.Close() })
		labs = append(labs, b.l)
	}
	if t.Failed() {
		return
	}
	a, b := labs[0], labs[1]
	if a.ID == b.ID {
		t.Fatalf("both labs have ID %s", a.ID)
	}
	ctx := t.Context()
	s, err := a.Host("wan").ServeTCP(ctx, 8443)
	if err != nil {
		t.Fatal(err)
	}
	addr := netipAddrPort(a.Host("wan").Addr, 8443)
	if err := a.Host("lan").TCPConnect(ctx, addr, 2*time.Second); err != nil {
		t.Errorf("lab %s: %v", a.ID, err)
	}
	// Same addresses in lab b, but nothing listens there.
	if err := b.Host("lan").TCPConnect(ctx, addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("lab %s reached lab %s's server: %v", b.ID, a.ID, err)
	}
	if s.Accepted() != 1 {
		t.Errorf("server accepted %d connections, want 1", s.Accepted())
	}
	if err := b.Host("cam").Ping(ctx, b.Host("wan").Addr, 1); err != nil {
		t.Error(err)
	}
}

func TestCleanupRemovesLabsOfDeadOwners(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	// Not parallel: Cleanup looks at every lab. It must spare the labs of
	// other tests anyway, since their owner (this process) is alive.
	opts := DefaultOptions()
	opts.Hosts = opts.Hosts[:1]
	live := newLab(t, opts)
	dead := newLab(t, opts)

	// Make dead's owner a process that has exited.
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(recordPath(dead.ID))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r.PID, r.PIDStart = exited.Process.Pid, 1
	data, _ = json.Marshal(r)
	if err := os.WriteFile(recordPath(dead.ID), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// And an orphan namespace with no record at all.
	orphanID := "o" + randomID()
	orphan := nsName(orphanID, "gw")
	if err := run(t.Context(), "ip", "netns", "add", orphan); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetNS(context.Background(), orphan) })

	removed, err := Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Not a count check: a Cleanup in a concurrent test binary may have
	// removed them first.
	t.Logf("Cleanup removed %d labs", removed)
	assertGone(t, dead.ID)
	assertGone(t, orphanID)
	have := netnsList(t)
	for _, ns := range live.Namespaces() {
		if !have[ns] {
			t.Errorf("Cleanup removed %s of a live lab", ns)
		}
	}
	if _, err := os.Stat(recordPath(live.ID)); err != nil {
		t.Errorf("Cleanup removed the record of a live lab: %v", err)
	}
	if err := dead.Close(); err != nil {
		t.Errorf("Close after Cleanup: %v", err)
	}
}

// helperEnv selects the role of a child test process in the tests below.
const helperEnv = "PICOSEG_LAB_HELPER"

// TestHelperProcess is not a test: it is the child process of the tests that
// check teardown when a test fails or the process is interrupted.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("helper process only")
	}
	opts := DefaultOptions()
	opts.Hosts = opts.Hosts[:2]
	l := newLab(t, opts)
	if _, err := l.Host("cam").Start(t.Context(), "sleep", "60"); err != nil {
		t.Fatal(err)
	}
	switch role {
	case "fail":
		fmt.Printf("LAB %s\n", l.ID)
		t.Fatal("failing on purpose, half-way through")
	case "signal":
		stop := l.CloseOnSignal(context.Background())
		defer stop()
		fmt.Printf("LAB %s\n", l.ID) // only now may the parent signal
		time.Sleep(30 * time.Second)
		t.Error("no signal came")
	}
}

// startHelper runs TestHelperProcess in a child process with role and
// returns it with the ID of the lab it built.
func startHelper(t *testing.T, role string) (*exec.Cmd, string, *strings.Builder) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var id string
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if rest, ok := strings.CutPrefix(sc.Text(), "LAB "); ok {
			id = rest
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if id == "" {
		cmd.Wait()
		t.Fatalf("helper built no lab:\n%s", out.String())
	}
	return cmd, id, &out
}

func TestFailingTestStillClosesLab(t *testing.T) {
	t.Parallel()
	cmd, id, out := startHelper(t, "fail")
	if err := cmd.Wait(); err == nil {
		t.Fatalf("helper test passed, want a failure:\n%s", out)
	}
	assertGone(t, id)
}

func TestCloseOnSignal(t *testing.T) {
	t.Parallel()
	cmd, id, out := startHelper(t, "signal")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper: %v, want death by SIGINT:\n%s", err, out)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("helper ended with %v, want death by SIGINT:\n%s", ws, out)
	}
	assertGone(t, id)
}

func TestAvailable(t *testing.T) {
	if os.Geteuid() != 0 {
		if err := Available(); err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("Available as non-root = %v, want an error about root", err)
		}
		return
	}
	if err := Available(); err != nil {
		t.Errorf("Available as root: %v", err)
	}
	for ns := range netnsList(t) {
		if strings.HasPrefix(ns, "pslprobe-") && strings.Contains(ns, fmt.Sprintf("-%d-", os.Getpid())) {
			t.Errorf("probe namespace %s left behind", ns)
		}
	}
}

func netipAddrPort(a netip.Addr, port int) netip.AddrPort { return netip.AddrPortFrom(a, uint16(port)) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
