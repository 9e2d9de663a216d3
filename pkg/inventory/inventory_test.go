package inventory

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/picoseg/picoseg/internal/testclock"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) }

func mac(last byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, last} }

var (
	plug   = mac(0x11)
	camera = mac(0x22)
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func newInv(t *testing.T, opts Options) (*Inventory, *clock) {
	t.Helper()
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	inv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return inv, clk
}

// device returns the one device with that MAC or, for mac "", address.
func device(t *testing.T, inv *Inventory, mac, addr string) Device {
	t.Helper()
	for _, d := range inv.Devices() {
		if (mac != "" && d.MAC == mac) || (mac == "" && d.MAC == "" && len(d.Addrs) > 0 && d.Addrs[0] == addr) {
			return d
		}
	}
	t.Fatalf("no device %q %q in %+v", mac, addr, inv.Devices())
	return Device{}
}

func TestNewDeviceReportedOnce(t *testing.T) {
	state := filepath.Join(t.TempDir(), "devices.json")
	inv, clk := newInv(t, Options{StatePath: state})
	seen := func(inv *Inventory, o Observation) bool { o.Time = clk.Now(); return inv.Observe(o) }

	if !seen(inv, Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 100}) {
		t.Fatal("first sighting of the plug is not new")
	}
	clk.Advance(time.Second)
	if seen(inv, Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 50}) {
		t.Fatal("second sighting of the plug is new")
	}
	if seen(inv, Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.21")}) {
		t.Fatal("the plug with a second address is new")
	}
	if !seen(inv, Observation{Addr: addr("10.77.0.99"), Down: 7}) {
		t.Fatal("an address-only device is not new")
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}

	// Restart: the state file remembers both.
	clk.Advance(time.Hour)
	inv2, err := New(Options{StatePath: state, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if seen(inv2, Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20")}) {
		t.Error("the plug is new again after a restart")
	}
	if seen(inv2, Observation{Addr: addr("10.77.0.99")}) {
		t.Error("the address-only device is new again after a restart")
	}
	if !seen(inv2, Observation{MAC: camera, HasMAC: true}) {
		t.Error("the camera, never seen, is not new")
	}
	got := device(t, inv2, "02:00:00:00:00:11", "")
	want := Device{
		MAC:       "02:00:00:00:00:11",
		Addrs:     []string{"10.77.0.20", "10.77.0.21"},
		FirstSeen: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		LastSeen:  time.Date(2025, 3, 1, 13, 0, 1, 0, time.UTC),
		BytesUp:   150,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plug after restart (-want +got):\n%s", diff)
	}
}

func TestKeys(t *testing.T) {
	inv, _ := newInv(t, Options{})
	// Conntrack sees 10.77.0.20 before any packet shows its MAC.
	if !inv.Observe(Observation{Addr: addr("10.77.0.20"), Up: 10, Flows: 1}) {
		t.Fatal("address-only device not new")
	}
	// The plug's packet from that address: the same device, now keyed by
	// its MAC, not a new one.
	if inv.Observe(Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 5}) {
		t.Fatal("the address-only device became a new device when its MAC showed")
	}
	// Conntrack again: attributed to the MAC-keyed device.
	inv.Observe(Observation{Addr: addr("10.77.0.20"), Down: 3})
	devs := inv.Devices()
	want := []Device{{MAC: "02:00:00:00:00:11", Addrs: []string{"10.77.0.20"}, BytesUp: 15, BytesDown: 3, Flows: 1}}
	if diff := cmp.Diff(want, devs, cmp.FilterPath(isTime, cmp.Ignore())); diff != "" {
		t.Fatalf("devices (-want +got):\n%s", diff)
	}

	// An address-only record for .30 and a MAC device that later uses .30
	// too: merged.
	inv.Observe(Observation{Addr: addr("10.77.0.30"), Up: 1000, Flows: 1})
	inv.Observe(Observation{MAC: camera, HasMAC: true, Addr: addr("10.77.0.31"), Up: 1})
	inv.Observe(Observation{MAC: camera, HasMAC: true, Addr: addr("10.77.0.30"), Up: 1})
	cam := device(t, inv, "02:00:00:00:00:22", "")
	if cam.BytesUp != 1002 || cam.Flows != 1 || !cmp.Equal(cam.Addrs, []string{"10.77.0.31", "10.77.0.30"}) {
		t.Fatalf("camera after merge = %+v", cam)
	}
	if n := len(inv.Devices()); n != 2 {
		t.Fatalf("%d devices after merge, want 2", n)
	}

	// The plug's address moves to the camera (DHCP handed it on).
	inv.Observe(Observation{MAC: camera, HasMAC: true, Addr: addr("10.77.0.20")})
	if p := device(t, inv, "02:00:00:00:00:11", ""); len(p.Addrs) != 0 {
		t.Errorf("plug still has %v after its address moved", p.Addrs)
	}
	if c := device(t, inv, "02:00:00:00:00:22", ""); !cmp.Equal(c.Addrs, []string{"10.77.0.31", "10.77.0.30", "10.77.0.20"}) {
		t.Errorf("camera addresses = %v", c.Addrs)
	}
	inv.Observe(Observation{Addr: addr("10.77.0.20"), Down: 9})
	if c := device(t, inv, "02:00:00:00:00:22", ""); c.BytesDown != 9 {
		t.Errorf("conntrack bytes for the moved address went elsewhere: camera %+v", c)
	}

	// Nothing to key by, broadcast and multicast senders: ignored.
	for _, o := range []Observation{
		{Addr: addr("0.0.0.0"), Up: 1},
		{Addr: addr("255.255.255.255"), Up: 1},
		{Addr: addr("ff02::fb"), Up: 1},
		{MAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, HasMAC: true},
		{MAC: [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}, HasMAC: true},
		{},
	} {
		if inv.Observe(o) {
			t.Errorf("Observe(%+v) made a new device", o)
		}
	}
	// DHCP discovery from 0.0.0.0: the MAC is seen, the address is not kept.
	if !inv.Observe(Observation{MAC: mac(0x33), HasMAC: true, Addr: addr("0.0.0.0"), Up: 300}) {
		t.Error("DHCP discovery from a new MAC is not a new device")
	}
	if d := device(t, inv, "02:00:00:00:00:33", ""); len(d.Addrs) != 0 || d.BytesUp != 300 {
		t.Errorf("DHCP client = %+v", d)
	}
	if n := len(inv.Devices()); n != 3 {
		t.Errorf("%d devices, want 3", n)
	}
}

func isTime(p cmp.Path) bool {
	s := p.Last().String()
	return s == ".FirstSeen" || s == ".LastSeen"
}

func TestAddressesBounded(t *testing.T) {
	inv, _ := newInv(t, Options{})
	for i := range MaxAddrs + 4 {
		inv.Observe(Observation{MAC: plug, HasMAC: true, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})})
	}
	d := device(t, inv, "02:00:00:00:00:11", "")
	if len(d.Addrs) != MaxAddrs || d.Addrs[0] != "10.0.0.5" {
		t.Fatalf("addresses = %v; want the last %d", d.Addrs, MaxAddrs)
	}
	// The dropped address no longer leads to the plug.
	if !inv.Observe(Observation{Addr: addr("10.0.0.1")}) {
		t.Error("a dropped address still belongs to the plug")
	}
}

func TestBounded(t *testing.T) {
	inv, clk := newInv(t, Options{MaxDevices: 3})
	for i := range 3 {
		inv.Observe(Observation{MAC: mac(byte(i + 1)), HasMAC: true, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Time: clk.Now()})
		clk.Advance(time.Second)
	}
	// Device 1 is seen again, so device 2 is now the least recent.
	inv.Observe(Observation{MAC: mac(1), HasMAC: true, Time: clk.Now()})
	clk.Advance(time.Second)
	if !inv.Observe(Observation{MAC: mac(4), HasMAC: true, Time: clk.Now()}) {
		t.Fatal("device 4 not new")
	}
	var macs []string
	for _, d := range inv.Devices() {
		macs = append(macs, d.MAC)
	}
	if want := []string{"02:00:00:00:00:01", "02:00:00:00:00:03", "02:00:00:00:00:04"}; !cmp.Equal(macs, want) {
		t.Fatalf("devices = %v, want %v", macs, want)
	}
	if st := inv.Stats(); st.Devices != 3 || st.Evicted != 1 {
		t.Errorf("stats = %+v", st)
	}
	// The evicted device's address was forgotten with it; it is new again.
	if !inv.Observe(Observation{Addr: addr("10.0.0.2")}) || !inv.Observe(Observation{MAC: mac(2), HasMAC: true}) {
		t.Error("the evicted device is not new when it comes back")
	}
	if n := len(inv.Devices()); n != 3 {
		t.Errorf("%d devices, bound is 3", n)
	}
}

func TestBoundedOnLoad(t *testing.T) {
	state := filepath.Join(t.TempDir(), "devices.json")
	inv, clk := newInv(t, Options{StatePath: state})
	for i := range 5 {
		inv.Observe(Observation{MAC: mac(byte(10 - i)), HasMAC: true, Time: clk.Now()})
		clk.Advance(time.Minute)
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	small, err := New(Options{StatePath: state, MaxDevices: 2})
	if err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, d := range small.Devices() {
		macs = append(macs, d.MAC)
	}
	// The two most recently seen: macs 7 and 6.
	if want := []string{"02:00:00:00:00:06", "02:00:00:00:00:07"}; !cmp.Equal(macs, want) {
		t.Fatalf("loaded %v, want %v", macs, want)
	}
}

func TestIdentity(t *testing.T) {
	cfg, _, err := config.Parse("test.toml", []byte(`
[inventory]
unknown_group = "quarantine"

[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[zone]]
name = "wan"
interfaces = ["wan"]
networks = ["0.0.0.0/0"]

[[group]]
name = "plugs"
[[group]]
name = "quarantine"

[[device]]
name = "kitchen-plug"
mac = "02:00:00:00:00:11"
ip = ["10.77.0.20"]
groups = ["plugs"]

[[segment]]
from = "iot"
to = "wan"
action = "allow"
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{GatewayAddrs: []netip.Addr{addr("10.77.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	id := NewIdentifier(pol)
	inv, _ := newInv(t, Options{UnknownGroup: cfg.Inventory.UnknownGroup})
	if inv.UnknownGroup() != "quarantine" {
		t.Fatalf("UnknownGroup = %q", inv.UnknownGroup())
	}
	for _, o := range []Observation{
		{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 1},
		{MAC: camera, HasMAC: true, Addr: addr("10.77.0.50"), Up: 2},
		{Addr: addr("192.0.2.7"), Up: 3},
	} {
		id.Fill(&o)
		inv.Observe(o)
	}
	got := inv.Devices()
	want := []Device{
		{MAC: "02:00:00:00:00:11", Addrs: []string{"10.77.0.20"}, Name: "kitchen-plug", Known: true, Zone: "iot", Groups: []string{"plugs"}, BytesUp: 1},
		{MAC: "02:00:00:00:00:22", Addrs: []string{"10.77.0.50"}, Zone: "iot", Groups: []string{"quarantine"}, BytesUp: 2},
		// Not in a local zone: the policy puts it in no group, the
		// inventory reports the unknown group for every unknown device.
		{Addrs: []string{"192.0.2.7"}, Zone: "wan", Groups: []string{"quarantine"}, BytesUp: 3},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(isTime, cmp.Ignore())); diff != "" {
		t.Fatalf("devices (-want +got):\n%s", diff)
	}

	// Identify, for conntrack: devices and local addresses only.
	for _, tc := range []struct {
		addr string
		ok   bool
		name string
	}{
		{"10.77.0.20", true, "kitchen-plug"},
		{"10.77.0.50", true, ""},
		{"10.77.0.1", false, ""}, // the gateway itself
		{"52.49.65.150", false, ""},
		{"2001:db8::1", false, ""},
	} {
		o, ok := id.Identify(addr(tc.addr))
		if ok != tc.ok || o.Name != tc.name {
			t.Errorf("Identify(%s) = %+v, %v; want ok %v, name %q", tc.addr, o, ok, tc.ok, tc.name)
		}
	}

	// Filling in the same device's identity again allocates nothing, and
	// neither does observing it.
	o := Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 60, Time: time.Unix(1, 0)}
	if n := testing.AllocsPerRun(1000, func() {
		id.Fill(&o)
		inv.Observe(o)
	}); n != 0 {
		t.Errorf("Fill+Observe of a known device: %v allocations, want 0", n)
	}
}

func TestObserveConcurrent(t *testing.T) {
	inv, _ := newInv(t, Options{MaxDevices: 50, StatePath: filepath.Join(t.TempDir(), "s.json")})
	var wg sync.WaitGroup
	news := make([]int, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				m := mac(byte(i % 40))
				o := Observation{MAC: m, HasMAC: true, Addr: netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 40)}), Up: 1}
				if inv.Observe(o) {
					news[g]++
				}
				if i%500 == 0 {
					inv.Devices()
					if err := inv.Save(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range news {
		total += n
	}
	devs := inv.Devices()
	var up uint64
	for _, d := range devs {
		up += d.BytesUp
	}
	if total != 40 || len(devs) != 40 || up != 8*2000 {
		t.Fatalf("%d new, %d devices, %d bytes; want 40, 40, %d", total, len(devs), up, 8*2000)
	}
}

func BenchmarkObserveKnown(b *testing.B) {
	inv, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		inv.Observe(Observation{MAC: [6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}, HasMAC: true, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})})
	}
	o := Observation{MAC: [6]byte{2, 0, 0, 0, 1, 2}, HasMAC: true, Addr: netip.AddrFrom4([4]byte{10, 0, 1, 2}), Up: 100, Time: time.Unix(1, 0)}
	b.ReportAllocs()
	for b.Loop() {
		inv.Observe(o)
	}
}

func ExampleInventory_Observe() {
	inv, _ := New(Options{})
	o := Observation{MAC: [6]byte{2, 0, 0, 0, 0, 0x11}, HasMAC: true, Addr: netip.MustParseAddr("10.77.0.20"), Up: 60}
	fmt.Println(inv.Observe(o), inv.Observe(o))
	// Output: true false
}
