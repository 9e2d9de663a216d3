package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/picoseg/picoseg/pkg/daemon"
	"github.com/picoseg/picoseg/pkg/inventory"
)

// dhcpWithMUD is a DHCPREQUEST whose client hardware address is chaddr,
// carrying a MUD URL in option 161.
func dhcpWithMUD(chaddr net.HardwareAddr, mudURL string) []byte {
	msg := make([]byte, 240)
	msg[0], msg[1], msg[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte addresses
	copy(msg[28:], chaddr)
	binary.BigEndian.PutUint32(msg[236:], 0x63825363)
	msg = append(msg, 53, 1, 3, 161, byte(len(mudURL)))
	return append(append(msg, mudURL...), 255)
}

// TestKernelDHCPMUDURL: the daemon learns a device's MUD URL from the DHCP
// requests it sends the gateway, for a device it has never seen (a
// broadcast from 0.0.0.0) and for a known one renewing, and a device cannot
// give another device's MAC a MUD URL by naming it in its own request.
func TestKernelDHCPMUDURL(t *testing.T) {
	f := newFixture(t)
	dhcp := f.serveUDP("gw", 67)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug1")
	gwMAC := net.HardwareAddr{0x02, 0, 0, 0, 0x77, 0x01}
	gw := netip.MustParseAddr("10.77.0.1")
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	const camURL, newURL, forged = "https://mud.example.com/acme/cam-100.json", "https://mud.example.net/bulb", "https://evil.example/x"

	// Control: without picoseg a unicast request reaches the gateway's
	// port 67, so what the daemon sees below went the same way.
	before := dhcp.Accepted()
	f.sendFrame("cam", udpFrame(cam.MAC, gwMAC, cam.Addr, gw, 68, 67, dhcpWithMUD(cam.MAC, camURL)))
	if !received(dhcp, before) {
		t.Fatal("lab without picoseg: a DHCP request does not reach the gateway's port 67")
	}

	f.start(labPolicy(t, nil))
	devices := func() map[string]inventory.Device {
		var list []inventory.Device
		if err := daemon.Query(f.sock, "devices", &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]inventory.Device{}
		for _, d := range list {
			out[d.MAC] = d
		}
		return out
	}
	f.sendFrame("cam", udpFrame(newMAC, broadcast, netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), 68, 67, dhcpWithMUD(newMAC, newURL)))
	f.sendFrame("cam", udpFrame(cam.MAC, gwMAC, cam.Addr, gw, 68, 67, dhcpWithMUD(cam.MAC, camURL)))
	if !eventually(func() bool {
		d := devices()
		return d[cam.MAC.String()].MUDURL == camURL && d[newMAC.String()].MUDURL == newURL
	}) {
		t.Fatalf("MUD URLs never recorded: %+v", devices())
	}
	if d := devices()[newMAC.String()]; d.Zone != "iot" {
		t.Errorf("the new device: %+v, want zone iot", d)
	}

	// The plug renews from its own address, naming the camera's MAC as
	// its client address. The plug appearing in the inventory shows the
	// daemon judged the request; the camera's URL must not move.
	f.sendFrame("plug1", udpFrame(plug.MAC, gwMAC, plug.Addr, gw, 68, 67, dhcpWithMUD(cam.MAC, forged)))
	if !eventually(func() bool { _, ok := devices()[plug.MAC.String()]; return ok }) {
		t.Fatalf("the plug's request was never seen: %+v", devices())
	}
	d := devices()
	if d[cam.MAC.String()].MUDURL != camURL || d[plug.MAC.String()].MUDURL != "" {
		t.Errorf("after the plug's forged request: camera %q, plug %q", d[cam.MAC.String()].MUDURL, d[plug.MAC.String()].MUDURL)
	}
}
