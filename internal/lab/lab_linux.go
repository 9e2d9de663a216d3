package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/picoseg/picoseg/internal/netns"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// closeTimeout bounds Close, which takes no context.
const closeTimeout = 30 * time.Second

// Available reports whether labs can be built here: nil when running as root
// with iproute2's ip in PATH and a network namespace can be created, else an
// error that says what is missing. Tests call it to skip.
func Available() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("lab: needs root to create network namespaces (running as uid %d)", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("lab: iproute2 is not installed: %w", err)
	}
	// The probe's name lacks the psl- prefix: Cleanup must never mistake a
	// probe of a concurrent process for an orphan.
	name := fmt.Sprintf("pslprobe-%d-%s", os.Getpid(), randomID())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: cannot create a network namespace: %w%s", err, tail(string(out)))
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: cannot delete probe namespace %s: %w%s", name, err, tail(string(out)))
	}
	return nil
}

// New builds the lab opts describes. On failure it removes whatever it had
// built and returns the error. The caller must Close the lab.
func New(ctx context.Context, opts Options) (*Lab, error) {
	id := opts.ID
	for attempt := 0; ; attempt++ {
		if opts.ID == "" {
			id = randomID()
		}
		l, err := plan(opts, id)
		if err != nil {
			return nil, err
		}
		err = writeRecord(record{
			ID: id, PID: os.Getpid(), PIDStart: processStart(os.Getpid()),
			Created: time.Now().UTC(), Namespaces: l.Namespaces(),
		})
		if errors.Is(err, fs.ErrExist) && opts.ID == "" && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		l.spawner = startSpawner()
		if err := l.build(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("lab %s: %w", id, err), l.Close())
		}
		return l, nil
	}
}

// build creates the namespaces, links and addresses. The record exists.
func (l *Lab) build(ctx context.Context) error {
	all := append([]*Host{l.Gateway}, l.order...)
	for _, h := range all {
		if err := run(ctx, "ip", "netns", "add", h.NetNS); err != nil {
			return err
		}
		l.created = append(l.created, h.NetNS)
		if err := h.setupSysctls(); err != nil {
			return err
		}
		if err := ipIn(ctx, h, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	gw := l.Gateway
	for _, s := range l.sortedSides() {
		if !s.Bridge {
			continue // the host's veth will be the side's interface
		}
		if err := ipIn(ctx, gw, "link", "add", s.Iface, "address", s.MAC.String(), "type", "bridge", "stp_state", "0"); err != nil {
			return err
		}
		if err := l.addGatewayAddrs(ctx, s); err != nil {
			return err
		}
	}
	for _, h := range l.order {
		if err := l.attach(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// setupSysctls sets the namespace's sysctls before any interface exists, so
// that "default" values reach every interface.
func (h *Host) setupSysctls() error {
	var set [][2]string
	if h.lab.ipv6 {
		// No duplicate address detection: addresses are usable at once, and
		// the lab assigns them without duplicates.
		set = append(set, [2]string{"net/ipv6/conf/all/accept_dad", "0"}, [2]string{"net/ipv6/conf/default/accept_dad", "0"})
	} else {
		set = append(set, [2]string{"net/ipv6/conf/all/disable_ipv6", "1"}, [2]string{"net/ipv6/conf/default/disable_ipv6", "1"})
	}
	if h == h.lab.Gateway {
		set = append(set, [2]string{"net/ipv4/ip_forward", "1"})
		if h.lab.ipv6 {
			set = append(set, [2]string{"net/ipv6/conf/all/forwarding", "1"})
		}
	}
	err := h.Do(func() error {
		for _, kv := range set {
			if err := writeSysctl(kv[0], kv[1]); err != nil {
				if !h.lab.ipv6 && errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(kv[0], "net/ipv6/") {
					continue // a kernel without IPv6 needs no disabling
				}
				return err
			}
		}
		if h == h.lab.Gateway {
			// A fresh namespace gets bridge-nf-call-* = 1 whenever br_netfilter
			// is loaded. Start from the stock-gateway case, where bridged
			// traffic skips the IP hooks; EnableBridgeFilter turns it on.
			return setBridgeFilter(false, false)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	return nil
}

// addGatewayAddrs brings the side's gateway interface up with its addresses.
func (l *Lab) addGatewayAddrs(ctx context.Context, s SideNet) error {
	gw := l.Gateway
	if err := ipIn(ctx, gw, "link", "set", s.Iface, "up"); err != nil {
		return err
	}
	if err := ipIn(ctx, gw, "addr", "add", s.Addr.String(), "dev", s.Iface); err != nil {
		return err
	}
	if l.ipv6 {
		return ipIn(ctx, gw, "-6", "addr", "add", s.Addr6.String(), "dev", s.Iface, "nodad")
	}
	return nil
}

// attach creates the veth between the gateway and h and configures both ends.
func (l *Lab) attach(ctx context.Context, h *Host) error {
	gw, side := l.Gateway, l.Sides[h.Side]
	if err := ipIn(ctx, gw, "link", "add", h.Port, "type", "veth", "peer", "name", HostIface, "netns", h.NetNS); err != nil {
		return err
	}
	if side.Bridge {
		// A bridge port is layer 2 only, as on a real gateway: no IPv6
		// link-local address of its own, no router solicitations.
		if l.ipv6 {
			err := gw.Do(func() error { return writeSysctl("net/ipv6/conf/"+h.Port+"/disable_ipv6", "1") })
			if err != nil {
				return fmt.Errorf("%s: %w", gw, err)
			}
		}
		if err := ipIn(ctx, gw, "link", "set", h.Port, "master", side.Iface, "up"); err != nil {
			return err
		}
	} else {
		if err := ipIn(ctx, gw, "link", "set", h.Port, "address", side.MAC.String()); err != nil {
			return err
		}
		if err := l.addGatewayAddrs(ctx, side); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"link", "set", HostIface, "address", h.MAC.String(), "up"},
		{"addr", "add", hostPrefix(h, side), "dev", HostIface},
		{"route", "add", "default", "via", h.Router.String()},
	}
	if l.ipv6 {
		steps = append(steps,
			[]string{"-6", "addr", "add", h.Addr6.String() + "/" + strconv.Itoa(side.Addr6.Bits()), "dev", HostIface, "nodad"},
			[]string{"-6", "route", "add", "default", "via", h.Router6.String()})
	}
	for _, args := range steps {
		if err := ipIn(ctx, h, args...); err != nil {
			return err
		}
	}
	return nil
}

// hostPrefix is h's IPv4 address with its side's prefix length, e.g. 10.77.0.11/24.
func hostPrefix(h *Host, side SideNet) string {
	return h.Addr.String() + "/" + strconv.Itoa(side.Addr.Bits())
}

// Close tears the lab down: it stops every process and server the lab
// started, kills anything else left in its namespaces, deletes the
// namespaces and removes the lab record. Close is idempotent and safe to call
// concurrently; every call returns after the teardown has finished, with the
// first call's error.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	l.mu.Lock()
	l.closed = true
	running := l.running
	l.running = nil
	if l.spawner != nil {
		close(l.spawner)
	}
	l.mu.Unlock()
	for s := range running {
		s.stop() // its error is about the program, not the teardown
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	// Only what New created: a failed New must not delete a namespace of
	// the same name that was there before. Gateway last.
	for i := len(l.created) - 1; i >= 0; i-- {
		errs = append(errs, deleteNetNS(ctx, l.created[i]))
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the record so that Cleanup can finish the job later.
		return fmt.Errorf("lab %s: close: %w", l.ID, err)
	}
	return removeRecord(l.ID)
}

// deleteNetNS kills every process in the namespace and deletes it. A missing
// namespace is not an error.
func deleteNetNS(ctx context.Context, ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A namespace with processes in it survives `ip netns del` (only its name
	// goes), and so do its interfaces: kill them first. Twice, in case one
	// forked while the first round ran.
	for range 2 {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		if err != nil {
			break
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	err := run(ctx, "ip", "netns", "del", ns)
	if _, statErr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(statErr, fs.ErrNotExist) {
		return nil // deleted, maybe by a concurrent Cleanup
	}
	return err
}

// Cleanup removes labs left behind by processes that died without closing
// them: every lab whose record names a dead owner, and every psl- namespace
// without any record. It never touches a lab whose owner is alive. It
// returns the number of labs removed.
func Cleanup(ctx context.Context) (removed int, err error) {
	// Namespaces first, records second: a lab writes its record before its
	// first namespace and removes it after its last, so a namespace seen
	// here whose record is missing below is truly orphaned.
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("lab: %w", err)
	}
	recs, recErr := readRecords()
	var errs []error
	if recErr != nil {
		errs = append(errs, recErr)
	}
	recorded := map[string]bool{}
	for _, r := range recs {
		for _, ns := range r.Namespaces {
			recorded[ns] = true
		}
		if processAlive(r.PID, r.PIDStart) {
			continue
		}
		var labErrs []error
		for _, ns := range r.Namespaces {
			labErrs = append(labErrs, deleteNetNS(ctx, ns))
		}
		if err := errors.Join(labErrs...); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: cleanup: %w", r.ID, err))
			continue
		}
		if err := removeRecord(r.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if recErr != nil {
		// An unreadable record may own any namespace: remove no orphans.
		return removed, errors.Join(errs...)
	}
	orphans := map[string][]string{} // lab ID → namespaces
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, nsPrefix) || recorded[name] {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(name, nsPrefix), "-")
		orphans[id] = append(orphans[id], name)
	}
	for id, names := range orphans {
		var labErrs []error
		for _, ns := range names {
			labErrs = append(labErrs, deleteNetNS(ctx, ns))
		}
		if err := errors.Join(labErrs...); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: cleanup: %w", id, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// EnableBridgeFilter makes the gateway pass bridged IPv4 and IPv6 traffic
// through the IP netfilter hooks (br_netfilter's bridge-nf-call-iptables and
// -ip6tables), so that device-to-device traffic on br-iot meets the forward
// chain. It loads br_netfilter when needed. The sysctls are per namespace, so
// only this lab's gateway changes.
func (l *Lab) EnableBridgeFilter() error {
	var missing bool
	err := l.Gateway.Do(func() error {
		_, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
		missing = errors.Is(err, fs.ErrNotExist)
		return nil
	})
	if err != nil {
		return err
	}
	if missing {
		out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput()
		if err != nil {
			return fmt.Errorf("lab: br_netfilter is not loaded and modprobe failed: %w%s", err, tail(string(out)))
		}
	}
	return l.Gateway.Do(func() error { return setBridgeFilter(true, true) })
}

// BridgeFilterEnabled reports whether bridged IPv4 traffic in the gateway
// goes through the IP netfilter hooks (see EnableBridgeFilter).
func (l *Lab) BridgeFilterEnabled() (bool, error) {
	var on bool
	err := l.Gateway.Do(func() error {
		data, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
		if errors.Is(err, fs.ErrNotExist) {
			return nil // br_netfilter not loaded: off
		}
		on = strings.TrimSpace(string(data)) == "1"
		return err
	})
	return on, err
}

// setBridgeFilter writes the br_netfilter sysctls of the calling thread's
// namespace. Without br_netfilter there is nothing to turn off, so a missing
// sysctl is an error only when must is set.
func setBridgeFilter(on, must bool) error {
	v := "0"
	if on {
		v = "1"
	}
	for _, key := range []string{"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"} {
		err := writeSysctl(key, v)
		if errors.Is(err, fs.ErrNotExist) && !must {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeSysctl sets /proc/sys/<key>. /proc/sys/net belongs to the network
// namespace of the calling thread, so under Host.Do it is the host's.
func writeSysctl(key, value string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// Do runs fn on an OS thread that has entered h's network namespace, and
// returns its error. Sockets fn opens belong to that namespace for their
// whole life and may be used from any goroutine afterwards; goroutines fn
// starts do not run in the namespace. fn must not change other namespaces.
func (h *Host) Do(fn func() error) error {
	f, err := os.Open(filepath.Join(netnsDir, h.NetNS))
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h, err)
	}
	defer f.Close()
	var fnErr error
	if err := netns.Do(int(f.Fd()), func() error { fnErr = fn(); return nil }); err != nil {
		return fmt.Errorf("lab: %s: %w", h, err)
	}
	return fnErr
}

// Command returns a command that runs name with args inside h's namespace
// through `ip netns exec`.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NetNS, name}, args...)...)
}

// Run runs name with args inside h's namespace and returns its combined
// output. A failure's error includes the output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s %s: %w%s", h.Name, name, strings.Join(args, " "), err, tail(string(out)))
	}
	return string(out), nil
}

// Start starts name with args in the background inside h's namespace. The
// process, with its whole process group, is killed by Stop, when ctx is done,
// when the lab closes, and when this process dies.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Process, error) {
	pctx, cancel := context.WithCancel(ctx)
	cmd := h.Command(pctx, name, args...)
	p := &Process{Host: h, cmd: cmd, cancel: cancel, out: &cappedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Pdeathsig fires when the thread that forked the child ends, not the
	// process: hence the lab's spawner thread, which lives as long as the lab.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		cancel()
		return nil, ErrClosed
	}
	done := make(chan error, 1)
	l.spawner <- func() { done <- cmd.Start() }
	if err := <-done; err != nil {
		cancel()
		return nil, fmt.Errorf("lab: %s: start %s: %w", h.Name, name, err)
	}
	l.running[p] = struct{}{}
	go p.wait()
	return p, nil
}

// startSpawner starts the goroutine that forks the lab's processes, locked
// to its OS thread until the channel closes.
func startSpawner() chan<- func() {
	reqs := make(chan func())
	go func() {
		// Never unlocked: when the lab closes, the thread ends with this
		// goroutine, and the kernel kills any child that survived.
		runtime.LockOSThread()
		for fn := range reqs {
			fn()
		}
	}()
	return reqs
}

// ipIn runs `ip -n NS args...` for host h.
func ipIn(ctx context.Context, h *Host, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", h.NetNS}, args...)...)
}

// run runs a command and returns an error with its output on failure.
func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, tail(out.String()))
	}
	return nil
}

// randomID returns 6 random lower-case hex digits.
func randomID() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// processStart returns the start time of process pid in clock ticks since
// boot, or 0 if it cannot be read or the process is a zombie (dead).
func processStart(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after its closing parenthesis start with field 3, the state.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	const startField = 22 - 3
	if len(fields) <= startField || fields[0] == "Z" || fields[0] == "X" {
		return 0
	}
	start, _ := strconv.ParseUint(fields[startField], 10, 64)
	return start
}

// processAlive reports whether the process pid that started at start (0:
// unknown) still runs. The start time tells the owner from a new process
// that reuses its PID.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	now := processStart(pid)
	return now != 0 && (start == 0 || now == start)
}
