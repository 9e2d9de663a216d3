package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

func TestDropCounterAlerts(t *testing.T) {
	var w kernelDropWatch
	var got []alert.Alert
	raise := func(a alert.Alert) { got = append(got, a) }
	w.check(nft.Counters{}, raise)
	if len(got) != 0 {
		t.Fatalf("zero counters raised %v", got)
	}
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 2}, NDSpoof: nft.Counter{Packets: 1}, ARPFlood: nft.Counter{Packets: 40}}, raise)
	if len(got) != 2 || got[0].Type != alert.TypeARPSpoof || got[0].Count != 3 || got[1].Type != alert.TypeARPFlood || got[1].Count != 40 {
		t.Fatalf("alerts %+v, want arp_spoof x3 and arp_flood x40", got)
	}
	got = nil
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 2}, NDSpoof: nft.Counter{Packets: 1}, ARPFlood: nft.Counter{Packets: 40}}, raise)
	if len(got) != 0 {
		t.Errorf("unchanged counters raised %v", got)
	}
	// A reinstalled table counts from zero: the next spoof is one, not
	// lost below the old total.
	w.check(nft.Counters{}, raise)
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 1}}, raise)
	if len(got) != 1 || got[0].Count != 1 {
		t.Errorf("after a reinstall: %+v, want one arp_spoof", got)
	}
	got = nil
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 1}, ReversePathDropped: nft.Counter{Packets: 5}}, raise)
	if len(got) != 1 || got[0].Type != alert.TypeSpoofedAddress || got[0].Count != 5 || got[0].Layer != engine.LayerIdentify {
		t.Errorf("reverse-path drops: %+v, want one spoofed_address x5 from the identify layer", got)
	}
	got = nil
	w.check(nft.Counters{ARPSpoof: nft.Counter{Packets: 1}, ReversePathDropped: nft.Counter{Packets: 5}, RogueRouter: nft.Counter{Packets: 2}, RogueDHCP: nft.Counter{Packets: 1}}, raise)
	if len(got) != 1 || got[0].Type != alert.TypeRogueRouter || got[0].Count != 3 {
		t.Errorf("router advertisements and DHCP offers from ports: %+v, want one rogue_router x3", got)
	}
}

// A reload that adds a device (a new MAC binding for the bridge table)
// reinstalls the ruleset; one that changes nothing the ruleset uses does not.
func TestWithPolicyNoticesNewBindings(t *testing.T) {
	pol := &policy.Policy{Devices: []policy.Device{{Name: "cam", HasMAC: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x11}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.11")}}}}
	base := withPolicy(nft.Options{Queues: 1}, pol, ifaces{}, time.Now())
	if len(base.Bindings) != 1 || base.Bindings[0].MAC.String() != "02:00:00:00:00:11" {
		t.Fatalf("bindings %+v", base.Bindings)
	}
	if !sameKernelPath(base, withPolicy(base, pol, ifaces{}, time.Now())) {
		t.Error("the same policy changed the ruleset")
	}
	more := *pol
	more.Devices = append(append([]policy.Device(nil), pol.Devices...), policy.Device{Name: "plug", HasMAC: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x21}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.21")}})
	if sameKernelPath(base, withPolicy(base, &more, ifaces{}, time.Now())) {
		t.Error("a new device's binding did not change the ruleset")
	}
}

// Monitor mode drops nothing, in the kernel either; switching a policy to
// enforce brings the guard and the checks back on the next reload.
func TestMonitorModeInstallsNoKernelDrops(t *testing.T) {
	pol := &policy.Policy{
		Mode:    config.ModeMonitor,
		Zones:   []policy.Zone{{Name: "iot", Local: true, Interfaces: []string{"br-iot"}}},
		Devices: []policy.Device{{Name: "cam", HasMAC: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x11}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.11")}}},
	}
	base := baseOptions(config.Daemon{Queues: 1, NewFlowRate: config.Rate{Count: 200, Per: time.Second}}, nft.DefaultMarks())
	if base.NewFlowRate == 0 || base.GlobalNewFlowRate == 0 {
		t.Fatalf("the base options have no guard (%+v): the test checks nothing", base)
	}
	mon := withPolicy(base, pol, ifaces{}, time.Now())
	if mon.NewFlowRate != 0 || mon.GlobalNewFlowRate != 0 || len(mon.ReversePathInterfaces) != 0 || len(mon.Bridges) != 0 || len(mon.Bindings) != 0 {
		t.Errorf("monitor mode installs kernel drops: %+v", mon)
	}
	enforce := *pol
	enforce.Mode = config.ModeEnforce
	enf := withPolicy(base, &enforce, ifaces{}, time.Now())
	if enf.NewFlowRate != base.NewFlowRate || len(enf.ReversePathInterfaces) != 1 || len(enf.Bindings) != 1 {
		t.Errorf("enforce mode lost the kernel checks: %+v", enf)
	}
	if sameKernelPath(mon, enf) {
		t.Error("switching monitor to enforce would not reinstall the ruleset")
	}
}

// A local zone's port routers reach the bridge table's options, and a
// reload that changes them reinstalls the ruleset.
func TestWithPolicyTakesPortRouters(t *testing.T) {
	pol := &policy.Policy{Zones: []policy.Zone{
		{Name: "iot", Local: true, Interfaces: []string{"br-iot"}, PortRouters: [][6]byte{{2, 0, 0, 0, 0, 0x99}}},
	}}
	o := withPolicy(nft.Options{Queues: 1}, pol, ifaces{}, time.Now())
	if len(o.PortRouters) != 1 || o.PortRouters[0].MAC.String() != "02:00:00:00:00:99" || o.PortRouters[0].Bridge != "br-iot" {
		t.Fatalf("port routers %v, want the zone's one", o.PortRouters)
	}
	none := *pol
	none.Zones = []policy.Zone{{Name: "iot", Local: true, Interfaces: []string{"br-iot"}}}
	if sameKernelPath(o, withPolicy(o, &none, ifaces{}, time.Now())) {
		t.Error("removing a port router did not change the ruleset")
	}
}
