//go:build linux

package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/pkg/nft"
)

// fakeEvents is an eventSource the test feeds. Like a netlink socket,
// Receive blocks until something arrives and fails once closed.
type fakeEvents struct {
	in     chan error // nil: a batch of events; else the error
	closed chan struct{}
	once   sync.Once
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{in: make(chan error), closed: make(chan struct{})}
}

var errClosed = errors.New("use of closed file")

func (s *fakeEvents) Receive() ([]netlink.Message, error) {
	select {
	case err := <-s.in:
		if err != nil {
			return nil, err
		}
		return []netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK}}}, nil
	case <-s.closed:
		return nil, errClosed
	}
}

func (s *fakeEvents) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// deliver hands n events (or err) to the watch and waits until it has
// taken the last one, so that everything before it has been handled.
func (s *fakeEvents) deliver(t *testing.T, n int, err error) {
	t.Helper()
	for range n {
		select {
		case s.in <- err:
		case <-time.After(5 * time.Second):
			t.Fatal("the watch stopped reading events")
		}
	}
}

// fakeTimer is one timer the watch asked for.
type fakeTimer struct {
	d  time.Duration
	ch chan time.Time
}

// watchHarness runs a linkWatch on fakes.
type watchHarness struct {
	w       *linkWatch
	timers  chan fakeTimer
	wake    chan struct{}
	dials   chan func() (eventSource, error)
	mu      sync.Mutex
	reports []string
	done    chan struct{}
	// clock is the watch's time, in nanoseconds: it stands still unless
	// a test moves it.
	clock atomic.Int64
}

func startWatch(t *testing.T, src eventSource) *watchHarness {
	t.Helper()
	h := &watchHarness{timers: make(chan fakeTimer, 1024), wake: make(chan struct{}, 1), dials: make(chan func() (eventSource, error), 16), done: make(chan struct{})}
	h.w = &linkWatch{
		dial: func() (eventSource, error) {
			select {
			case dial := <-h.dials:
				return dial()
			default:
				return nil, errors.New("the test prepared no socket")
			}
		},
		after: func(d time.Duration) <-chan time.Time {
			ch := make(chan time.Time, 1)
			h.timers <- fakeTimer{d, ch}
			return ch
		},
		now:      func() time.Time { return time.Unix(0, h.clock.Load()) },
		debounce: 200 * time.Millisecond, look: 5 * time.Second, redialWait: 3 * time.Second, redialMax: 3,
		wake: h.wake,
		report: func(err error, fatal bool) {
			h.mu.Lock()
			defer h.mu.Unlock()
			kind := "transient"
			if fatal {
				kind = "fatal"
			}
			h.reports = append(h.reports, kind+": "+err.Error())
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer close(h.done); h.w.run(ctx, src) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// timer returns the next timer the watch asks for, which must last d.
func (h *watchHarness) timer(t *testing.T, d time.Duration) fakeTimer {
	t.Helper()
	select {
	case tm := <-h.timers:
		if tm.d != d {
			t.Fatalf("the watch asked for a %v timer, want %v", tm.d, d)
		}
		return tm
	case <-time.After(5 * time.Second):
		t.Fatalf("the watch asked for no %v timer", d)
	}
	return fakeTimer{}
}

// noTimer checks that the watch asked for no timer so far.
func (h *watchHarness) noTimer(t *testing.T) {
	t.Helper()
	select {
	case tm := <-h.timers:
		t.Fatalf("the watch asked for a %v timer", tm.d)
	default:
	}
}

func (h *watchHarness) woken(t *testing.T) {
	t.Helper()
	select {
	case <-h.wake:
	case <-time.After(5 * time.Second):
		t.Fatal("the main loop was not woken")
	}
}

func (h *watchHarness) notWoken(t *testing.T) {
	t.Helper()
	select {
	case <-h.wake:
		t.Fatal("the main loop was woken")
	default:
	}
}

// A burst of events gives one reading, at the end of one window that the
// burst does not push back; an overrun (ENOBUFS) and the periodic look
// give one too.
func TestLinkWatchDebounces(t *testing.T) {
	src := newFakeEvents()
	h := startWatch(t, src)
	look := h.timer(t, 5*time.Second)
	h.woken(t) // what changed between the start's reading and the socket

	src.deliver(t, 50, nil)
	window := h.timer(t, 200*time.Millisecond)
	h.noTimer(t) // 49 more events, one window
	h.notWoken(t)
	src.deliver(t, 10, nil) // still inside the window: it is not pushed back
	h.noTimer(t)
	window.ch <- time.Time{}
	h.woken(t)
	src.deliver(t, 1, nil) // taken once the wake was handled
	h.notWoken(t)

	// The event after the window opens another.
	window = h.timer(t, 200*time.Millisecond)
	window.ch <- time.Time{}
	h.woken(t)

	// An overrun lost events: read the interfaces. The socket still
	// works, and events keep coming.
	src.deliver(t, 1, unix.ENOBUFS)
	h.timer(t, 200*time.Millisecond).ch <- time.Time{}
	h.woken(t)
	src.deliver(t, 1, nil)
	h.timer(t, 200*time.Millisecond).ch <- time.Time{}
	h.woken(t)

	look.ch <- time.Time{}
	h.woken(t)
	h.timer(t, 5*time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) != 0 {
		t.Errorf("reported %v", h.reports)
	}
}

// The first event after a quiet spell wakes the main loop at once (a port
// that joins a bridge is checked without waiting for the window), and the
// window's end wakes it again for the rest of the burst; an event soon after
// a wake waits for the window, so a flapping port gets at most two readings
// a window.
func TestLinkWatchWakesAtOnceAfterQuiet(t *testing.T) {
	src := newFakeEvents()
	h := startWatch(t, src)
	h.timer(t, 5*time.Second)
	h.woken(t)

	h.clock.Add(int64(time.Second))
	src.deliver(t, 1, nil)
	h.woken(t) // at once, before the window ends
	window := h.timer(t, 200*time.Millisecond)
	src.deliver(t, 5, nil)
	h.noTimer(t)
	h.notWoken(t)
	window.ch <- time.Time{}
	h.woken(t)

	// The port flaps: the next event comes within a window of the wake.
	h.clock.Add(int64(50 * time.Millisecond))
	src.deliver(t, 1, nil)
	window = h.timer(t, 200*time.Millisecond)
	h.notWoken(t)
	window.ch <- time.Time{}
	h.woken(t)
}

// A broken socket is reported as transient and opened again, after which
// the interfaces are read (events of the gap are lost); a socket that
// cannot be opened again, time after time, is fatal.
func TestLinkWatchReopens(t *testing.T) {
	src := newFakeEvents()
	h := startWatch(t, src)
	h.timer(t, 5*time.Second)
	h.woken(t)

	src.deliver(t, 1, unix.EIO)
	redial := h.timer(t, 3*time.Second)
	second := newFakeEvents()
	h.dials <- func() (eventSource, error) { return second, nil }
	redial.ch <- time.Time{}
	h.woken(t)
	second.deliver(t, 1, nil) // the new socket is read
	h.timer(t, 200*time.Millisecond).ch <- time.Time{}
	h.woken(t)
	select {
	case <-src.closed:
	default:
		t.Error("the broken socket was not closed")
	}

	second.deliver(t, 1, unix.EIO)
	for range 3 {
		h.dials <- func() (eventSource, error) { return nil, unix.EMFILE }
		h.timer(t, 3*time.Second).ch <- time.Time{}
	}
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not give up")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) != 3 || !strings.HasPrefix(h.reports[0], "transient") || !strings.HasPrefix(h.reports[1], "transient") || !strings.HasPrefix(h.reports[2], "fatal") {
		t.Errorf("reports %q, want two transient, then one fatal", h.reports)
	}
}

// fakeIfaces builds a reading: links by index, addresses by index.
type fakeIfaces struct{ v ifaces }

func newFakeIfaces() *fakeIfaces {
	return &fakeIfaces{ifaces{links: map[int32]ifaceLink{}, addrs: map[int32][]netip.Addr{}}}
}

func (f *fakeIfaces) link(index int32, name string, master int32, bridge bool) *fakeIfaces {
	f.v.links[index] = ifaceLink{name: name, master: master, bridge: bridge}
	return f
}

func (f *fakeIfaces) addr(index int32, a string) *fakeIfaces {
	f.v.addrs[index] = append(f.v.addrs[index], netip.MustParseAddr(a))
	return f
}

// gateway is the lab gateway's interfaces: br-iot (index 3) with ports
// v-cam and v-plug1, lan0, wan0 and lo.
func gateway() *fakeIfaces {
	return newFakeIfaces().link(1, "lo", 0, false).addr(1, "127.0.0.1").
		link(2, "wan0", 0, false).addr(2, "198.51.100.1").
		link(3, "br-iot", 0, true).addr(3, "10.77.0.1").
		link(4, "lan0", 0, false).addr(4, "10.88.0.1").
		link(10, "v-cam", 3, false).link(11, "v-plug1", 3, false)
}

// appliedFor is what the daemon puts in force at start with the demo
// policy (edited) and the interfaces ifs.
func appliedFor(t *testing.T, edit func(string) string, ifs ifaces) *applied {
	t.Helper()
	b, err := os.ReadFile("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	l, _, err := loadWith(path, false, ifs.all())
	if err != nil {
		t.Fatal(err)
	}
	a := &applied{base: baseOptions(l.Config.Daemon, nft.DefaultMarks()), running: l}
	a.opts = withPolicy(a.base, l.Policy, ifs, time.Now())
	a.ports = ifs.portsOf(a.opts.Bridges)
	return a
}

func noEdit(s string) string { return s }

// A reading is compared with what is in force: only what changed is
// changed, and nothing when nothing did.
func TestIfaceChangePlan(t *testing.T) {
	late := netip.MustParseAddr("10.77.0.254")
	lateZone := func(s string) string {
		return s + "\n[[zone]]\nname = \"iot2\"\ninterfaces = [\"br-late\"]\nnetworks = [\"10.66.0.0/24\"]\nbridge_filter = true\n"
	}
	for _, tc := range []struct {
		name   string
		edit   func(string) string
		change func(*fakeIfaces)
		// want: kernel replaced, policy compiled again, bridges switched
		kernel, policy bool
		bridges        []string
		portsIn        []string
		portsOut       []string
	}{
		{name: "nothing", edit: noEdit, change: func(*fakeIfaces) {}},
		{name: "port joins", edit: noEdit, change: func(f *fakeIfaces) { f.link(12, "v-plug2", 3, false) }, kernel: true, portsIn: []string{"v-plug2"}},
		{name: "port leaves", edit: noEdit, change: func(f *fakeIfaces) { f.link(11, "v-plug1", 0, false) }, kernel: true, portsOut: []string{"v-plug1"}},
		{name: "port renamed", edit: noEdit, change: func(f *fakeIfaces) { f.link(11, "wlan1", 3, false) }, kernel: true, portsIn: []string{"wlan1"}, portsOut: []string{"v-plug1"}},
		{name: "port of a bridge in no zone", edit: noEdit, change: func(f *fakeIfaces) { f.link(20, "br-x", 0, true).link(21, "v-x", 20, false) }},
		{name: "address on a zone's bridge", edit: noEdit, change: func(f *fakeIfaces) { f.addr(3, late.String()) }, kernel: true, policy: true},
		{name: "address elsewhere", edit: noEdit, change: func(f *fakeIfaces) { f.link(30, "wg0", 0, false).addr(30, "10.99.0.1") }, policy: true},
		{name: "zone bridge created", edit: lateZone, change: func(f *fakeIfaces) { f.link(40, "br-late", 0, true) }, bridges: []string{"br-late"}},
		{name: "zone interface that is no bridge", edit: lateZone, change: func(f *fakeIfaces) { f.link(40, "br-late", 0, false) }},
		{name: "monitor mode: port joins", edit: func(s string) string { return strings.Replace(s, `mode = "enforce"`, `mode = "monitor"`, 1) },
			change: func(f *fakeIfaces) { f.link(12, "v-plug2", 3, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := appliedFor(t, tc.edit, gateway().v)
			a.filtered = []bridgeNF{{name: "br-iot", index: 3}}
			f := gateway()
			tc.change(f)
			c, err := a.plan(f.v, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var bridges []string
			for _, b := range c.bridges {
				bridges = append(bridges, b.name)
			}
			if c.kernel != tc.kernel || (c.next != nil) != tc.policy || !slices.Equal(bridges, tc.bridges) ||
				!slices.Equal(c.portsIn, tc.portsIn) || !slices.Equal(c.portsOut, tc.portsOut) {
				t.Errorf("plan: kernel %v, policy %v, bridges %v, ports +%v -%v; want %v, %v, %v, +%v -%v",
					c.kernel, c.next != nil, bridges, c.portsIn, c.portsOut, tc.kernel, tc.policy, tc.bridges, tc.portsIn, tc.portsOut)
			}
			if c.none() != (!tc.kernel && !tc.policy && len(tc.bridges) == 0) {
				t.Errorf("none() = %v", c.none())
			}
		})
	}
}

// An address the gateway gains is "gateway" to the recompiled policy
// (the same text: the same hash), and to the bridge table's owned
// addresses when it is on a zone's interface.
func TestIfaceChangeGatewayAddress(t *testing.T) {
	late := netip.MustParseAddr("10.77.0.254")
	a := appliedFor(t, noEdit, gateway().v)
	a.filtered = []bridgeNF{{name: "br-iot", index: 3}}
	if a.running.Policy.IsGateway(late) {
		t.Fatal("the policy knows the late address before it was added: the test checks nothing")
	}
	c, err := a.plan(gateway().addr(3, late.String()).v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.next == nil || !c.next.Policy.IsGateway(late) {
		t.Fatal("the recompiled policy does not take the new address for the gateway")
	}
	if len(c.next.Policy.Rules) != len(a.running.Policy.Rules) || len(c.next.Policy.Devices) != len(a.running.Policy.Devices) {
		t.Errorf("compiled again: %d rules, %d devices; were %d, %d", len(c.next.Policy.Rules), len(c.next.Policy.Devices), len(a.running.Policy.Rules), len(a.running.Policy.Devices))
	}
	if c.next.Policy.Hash != a.running.Policy.Hash {
		t.Errorf("hash %s, was %s: the policy text did not change", c.next.Policy.Hash, a.running.Policy.Hash)
	}
	if !slices.Contains(c.opts.GatewayAddrs, late) {
		t.Errorf("the ruleset's gateway addresses %v lack %v", c.opts.GatewayAddrs, late)
	}
	if !slices.Equal(c.addrsIn, []netip.Addr{late}) || len(c.addrsOut) != 0 {
		t.Errorf("addresses +%v -%v, want +[%v]", c.addrsIn, c.addrsOut, late)
	}
	// Put in force, the same reading changes nothing more.
	a.running, a.opts, a.ports = c.next, c.opts, c.ports
	if c, _ := a.plan(gateway().addr(3, late.String()).v, time.Now()); !c.none() {
		t.Errorf("the reading just applied changes %+v", c)
	}
	// Removed again: back to the start's.
	if c, _ := a.plan(gateway().v, time.Now()); c.next == nil || c.next.Policy.IsGateway(late) || !slices.Equal(c.addrsOut, []netip.Addr{late}) {
		t.Errorf("after the address went, the policy still takes it for the gateway")
	}
}

// A bridge deleted and created again has a new index and its switch off:
// it is switched on again.
func TestIfaceChangeBridgeCreatedAgain(t *testing.T) {
	a := appliedFor(t, noEdit, gateway().v)
	a.filtered = []bridgeNF{{name: "br-iot", index: 3}}
	f := gateway()
	delete(f.v.links, 3)
	f.link(50, "br-iot", 0, true).link(10, "v-cam", 50, false).link(11, "v-plug1", 50, false)
	c, err := a.plan(f.v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.bridges) != 1 || c.bridges[0].index != 50 {
		t.Errorf("bridges to switch %+v, want br-iot at index 50", c.bridges)
	}
}

// parseIfaces reads what the kernel dumps: a port's master, a bridge's
// kind, IFA_LOCAL over IFA_ADDRESS.
func TestParseIfaces(t *testing.T) {
	link := func(index int32, name string, master uint32, kind string) netlink.Message {
		ae := netlink.NewAttributeEncoder()
		ae.String(unix.IFLA_IFNAME, name)
		if master != 0 {
			ae.Uint32(unix.IFLA_MASTER, master)
		}
		if kind != "" {
			ae.Nested(unix.IFLA_LINKINFO, func(n *netlink.AttributeEncoder) error {
				n.String(unix.IFLA_INFO_KIND, kind)
				return nil
			})
		}
		b, _ := ae.Encode()
		hdr := make([]byte, unix.SizeofIfInfomsg)
		nativeIndex(hdr[4:], index)
		return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: append(hdr, b...)}
	}
	addr := func(index int32, attrs map[uint16]string) netlink.Message {
		ae := netlink.NewAttributeEncoder()
		for typ, a := range attrs {
			ae.Bytes(typ, netip.MustParseAddr(a).AsSlice())
		}
		b, _ := ae.Encode()
		hdr := make([]byte, unix.SizeofIfAddrmsg)
		nativeIndex(hdr[4:], index)
		return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWADDR}, Data: append(hdr, b...)}
	}
	v := parseIfaces(
		[]netlink.Message{link(3, "br-iot", 0, "bridge"), link(7, "wlan0", 3, ""), link(8, "ppp0", 0, "ppp"), {Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: []byte{1}}},
		[]netlink.Message{addr(3, map[uint16]string{unix.IFA_ADDRESS: "10.77.0.1"}), addr(8, map[uint16]string{unix.IFA_LOCAL: "100.64.0.5", unix.IFA_ADDRESS: "100.64.0.1"}), addr(3, map[uint16]string{unix.IFA_ADDRESS: "fd00:77::1"})},
	)
	if got := v.portsOf([]string{"br-iot"}); !slices.Equal(got, []string{"wlan0"}) {
		t.Errorf("ports %v, want [wlan0]", got)
	}
	if v.bridgeIndex("br-iot") != 3 || v.bridgeIndex("ppp0") != 0 || v.bridgeIndex("nope") != 0 {
		t.Error("bridge kinds misread")
	}
	want := []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("100.64.0.5"), netip.MustParseAddr("fd00:77::1")}
	if got := v.all(); !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v (the peer of a point-to-point link is not ours)", got, want)
	}
}

// nativeIndex writes an interface index as the kernel does.
func nativeIndex(b []byte, index int32) { binary.NativeEndian.PutUint32(b, uint32(index)) }
