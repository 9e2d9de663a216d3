package main

// Kernel tests of a device impersonating the gateway on the IoT bridge:
// router advertisements, redirects and DHCP server messages from a port,
// and neighbour discovery whose link-layer address option names another
// device. Each attack is sent first without picoseg, to prove the lab
// delivers it.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/daemon"
)

// l4Checksum is the transport checksum over the IPv6 pseudo-header (or,
// for IPv4, the UDP one) and l4.
func l4Checksum(src, dst netip.Addr, proto byte, l4 []byte) uint16 {
	pseudo := append(append([]byte{}, src.AsSlice()...), dst.AsSlice()...)
	pseudo = append(pseudo, 0, proto)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(l4)))
	return inetChecksum(append(pseudo, l4...))
}

// ipFrame wraps a transport message in IPv4 or IPv6 (by the addresses)
// and Ethernet; csumAt is where the message's checksum goes (-1: none).
func ipFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, proto byte, l4 []byte, csumAt int) []byte {
	l4 = append([]byte{}, l4...)
	if csumAt >= 0 {
		binary.BigEndian.PutUint16(l4[csumAt:], l4Checksum(src, dst, proto, l4))
	}
	b := append(append([]byte{}, dstMAC...), srcMAC...)
	if src.Is4() {
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		copy(h[12:], src.AsSlice())
		copy(h[16:], dst.AsSlice())
		binary.BigEndian.PutUint16(h[10:], inetChecksum(h))
		return append(append(append(b, 0x08, 0x00), h...), l4...)
	}
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(l4)))
	b = append(b, proto, 255)
	b = append(append(b, src.AsSlice()...), dst.AsSlice()...)
	return append(b, l4...)
}

// linkLocal is the EUI-64 link-local address of mac.
func linkLocal(mac net.HardwareAddr) netip.Addr {
	a := [16]byte{0xfe, 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]}
	return netip.AddrFrom16(a)
}

// rogueFrames are plug1's attempts to be the IoT zone's router and DHCP
// server towards the camera: a router advertisement (default router,
// multicast to all nodes), an ICMPv6 and an ICMP redirect, a DHCPv4 offer
// and a DHCPv6 advertise.
func rogueFrames(plug, cam *lab.Host, gwAddr netip.Addr) [][]byte {
	allNodes := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	plugLL, camLL := linkLocal(plug.MAC), linkLocal(cam.MAC)
	ra := []byte{134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}
	ra = append(ra, plug.MAC...)
	redirect6 := append([]byte{137, 0, 0, 0, 0, 0, 0, 0}, plugLL.AsSlice()...)
	redirect6 = append(redirect6, netip.MustParseAddr("2001:db8:100::2").AsSlice()...)
	quoted := ipFrame(nil, nil, cam.Addr, netip.MustParseAddr("198.51.100.2"), 17, make([]byte, 8), -1)[2:30]
	redirect4 := append([]byte{5, 1, 0, 0}, plug.Addr.AsSlice()...)
	redirect4 = append(redirect4, quoted...)
	binary.BigEndian.PutUint16(redirect4[2:], inetChecksum(redirect4))
	offer := append([]byte{0, 67, 0, 68, 0, 0, 0, 0, 2, 1, 6, 0}, make([]byte, 236)...)
	binary.BigEndian.PutUint16(offer[4:], uint16(len(offer)))
	advertise := []byte{0x02, 0x23, 0x02, 0x22, 0, 12, 0, 0, 2, 0x12, 0x34, 0x56} // 547 -> 546, advertise
	return [][]byte{
		ipFrame(allNodes, plug.MAC, plugLL, netip.MustParseAddr("ff02::1"), 58, ra, 2),
		ipFrame(cam.MAC, plug.MAC, plugLL, camLL, 58, redirect6, 2),
		ipFrame(cam.MAC, plug.MAC, gwAddr, cam.Addr, 1, redirect4, -1),
		ipFrame(bcast, plug.MAC, plug.Addr, netip.AddrFrom4([4]byte{255, 255, 255, 255}), 17, offer, -1),
		ipFrame(cam.MAC, plug.MAC, plugLL, camLL, 17, advertise, 6),
	}
}

// rogueKind names what a tcpdump line on the camera shows of rogueFrames.
var rogueKind = []struct {
	name string
	re   *regexp.Regexp
}{
	{"router advertisement", regexp.MustCompile(`router advertisement`)},
	{"ICMPv6 redirect", regexp.MustCompile(`ICMP6, redirect`)},
	{"ICMP redirect", regexp.MustCompile(`ICMP redirect`)},
	{"DHCPv4 offer", regexp.MustCompile(`BOOTP/DHCP, Reply`)},
	{"DHCPv6 advertise", regexp.MustCompile(`dhcp6 advertise`)},
}

// TestKernelRogueRouterOnTheBridge: plug1 sends the camera a router
// advertisement, ICMPv6 and ICMP redirects, a DHCPv4 offer and a DHCPv6
// advertise. Without picoseg the camera sees all five (the control); with
// picoseg none, they are counted and raised as rogue_router. A zone that
// lists plug1 in port_routers lets its router advertisement through.
func TestKernelRogueRouterOnTheBridge(t *testing.T) {
	f := newFixtureIPv6(t, true)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug1")
	frames := rogueFrames(plug, cam, f.lab.Sides[lab.SideIoT].Addr.Addr())
	seen := func() map[string]int {
		s := f.sniff("cam", "icmp or icmp6 or udp port 67 or udp port 547")
		f.sendFrames("plug1", frames)
		got := map[string]int{}
		for _, l := range s.lines(regexp.MustCompile(`.`)) {
			for _, k := range rogueKind {
				if k.re.MatchString(l) && strings.Contains(l, " > ") {
					got[k.name]++
				}
			}
		}
		return got
	}
	control := seen()
	for _, k := range rogueKind {
		if control[k.name] != 1 {
			t.Fatalf("control: without picoseg the camera saw %v, want each of the five once", control)
		}
	}
	// Without bridge_filter, frames between two ports never reach the
	// engine: the bridge table alone stands between plug1 and the camera.
	// (With it, the engine judges them too, and no rule allows them.)
	policy := labPolicy(t, func(s string) string {
		s = strings.Replace(s, `bridge_filter = true`, `bridge_filter = false`, 1)
		return strings.Replace(s, `networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`, 1)
	})
	f.start(policy)
	if got := seen(); len(got) != 0 {
		t.Errorf("with picoseg the camera saw %v", got)
	}
	st := f.status()
	if st.Kernel["rogue_router"] != 3 || st.Kernel["rogue_dhcp"] != 2 {
		t.Errorf("rogue_router %d, rogue_dhcp %d; want 3 and 2", st.Kernel["rogue_router"], st.Kernel["rogue_dhcp"])
	}
	waitAlert(t, f, "rogue_router")
	// The gateway's own router advertisement leaves through the bridge, not
	// from a port: it still reaches the camera.
	side := f.lab.Sides[lab.SideIoT]
	gwRA := append([]byte{134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, side.MAC...)
	s := f.sniff("cam", "icmp6")
	f.sendFramesOn(f.lab.Gateway, "br-iot", [][]byte{ipFrame(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, side.MAC, linkLocal(side.MAC), netip.MustParseAddr("ff02::1"), 58, gwRA, 2)})
	if got := s.lines(regexp.MustCompile(`router advertisement`)); len(got) != 1 {
		t.Errorf("the camera saw %d of the gateway's own router advertisement, want 1", len(got))
	}

	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(f.policy, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		reloads := f.status().Reloads
		f.signal(syscall.SIGHUP)
		for deadline := time.Now().Add(5 * time.Second); f.status().Reloads == reloads; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the reload did not happen")
			}
		}
	}
	// plug1 is the LAN's router: that makes it no router on the IoT
	// bridge (a device trusted in one zone is not trusted in another).
	reload(strings.Replace(policy, `interfaces = ["lan0"]`, `interfaces = ["lan0"]
port_routers = ["`+plug.MAC.String()+`"]`, 1))
	if got := seen(); len(got) != 0 {
		t.Errorf("with plug1 a port router of the LAN only, the IoT camera saw %v", got)
	}

	// plug1 is the zone's router after all.
	reload(strings.Replace(policy, `bridge_filter = false`, `bridge_filter = false
port_routers = ["`+plug.MAC.String()+`"]`, 1))
	got := seen()
	for _, k := range rogueKind {
		if got[k.name] != 1 {
			t.Errorf("with plug1 in port_routers the camera saw %v, want each of the five once", got)
			break
		}
	}
	// The reload installed the table again: its counters start from 0.
	if st := f.status(); st.Kernel["rogue_router"] != 0 || st.Kernel["rogue_dhcp"] != 0 {
		t.Errorf("with plug1 in port_routers the bridge dropped rogue_router %d, rogue_dhcp %d; want none", st.Kernel["rogue_router"], st.Kernel["rogue_dhcp"])
	}
}

// waitAlert waits up to 3 s for an alert of type typ.
func waitAlert(t *testing.T, f *fixture, typ string) {
	t.Helper()
	var alerts []struct {
		Type string `json:"type"`
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := daemon.Query(f.sock, "alerts", &alerts); err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Type == typ {
				return
			}
		}
	}
	t.Errorf("no %s alert: %+v", typ, alerts)
}

// ndFrame is a neighbour discovery message of type typ (133 router
// solicitation, 135 solicitation, 136 advertisement with override) for
// target (none for a router solicitation), followed by opts.
func ndFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, typ byte, target netip.Addr, opts ...[]byte) []byte {
	icmp := []byte{typ, 0, 0, 0, 0, 0, 0, 0}
	if typ == 136 {
		icmp[4] = 0x20 // override
	}
	if typ != 133 {
		icmp = append(icmp, target.AsSlice()...)
	}
	for _, o := range opts {
		icmp = append(icmp, o...)
	}
	return icmp6Frame(dstMAC, srcMAC, src, dst, icmp)
}

// nonceOpt is a nonce option (RFC 3971), one unit long.
var nonceOpt = []byte{14, 1, 1, 2, 3, 4, 5, 6}

// lladdrOpt is a source (1) or target (2) link-layer address option.
func lladdrOpt(kind byte, mac net.HardwareAddr) []byte {
	return append([]byte{kind, 1}, mac...)
}

// TestKernelNDLinkLayerOption: plug1 speaks for its own address, from its
// own MAC, but names the camera's MAC in the message's link-layer option:
// an advertisement with it as the target link-layer address (first, or
// after another option), a solicitation and a router solicitation with it
// as the source link-layer address. Each moves the gateway's neighbour
// entry for plug1's address to the camera's MAC without picoseg (the
// control: the gateway would send plug1's traffic to the camera); with
// picoseg none does, and they count as nd_spoof. plug1's honest
// advertisement still passes.
func TestKernelNDLinkLayerOption(t *testing.T) {
	f := newFixtureIPv6(t, true)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug1")
	side := f.lab.Sides[lab.SideIoT]
	gwMAC, gwAddr := side.MAC, side.Addr6.Addr()
	plugLL := linkLocal(plug.MAC)
	attacks := []struct {
		name   string
		victim netip.Addr // whose entry in the gateway moves
		frame  []byte
	}{
		{"advertisement", plug.Addr6, ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 136, plug.Addr6, lladdrOpt(2, cam.MAC))},
		{"advertisement, option second", plug.Addr6, ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 136, plug.Addr6, lladdrOpt(1, plug.MAC), lladdrOpt(2, cam.MAC))},
		{"solicitation", plug.Addr6, ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 135, gwAddr, lladdrOpt(1, cam.MAC))},
		{"router solicitation", plugLL, ndFrame(gwMAC, plug.MAC, plugLL, netip.MustParseAddr("ff02::2"), 133, netip.Addr{}, lladdrOpt(1, cam.MAC))},
		{"solicitation, option behind a nonce", plug.Addr6, ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 135, gwAddr, nonceOpt, lladdrOpt(1, cam.MAC))},
		{"router solicitation, option behind a nonce", plugLL, ndFrame(gwMAC, plug.MAC, plugLL, netip.MustParseAddr("ff02::2"), 133, netip.Addr{}, nonceOpt, lladdrOpt(1, cam.MAC))},
	}
	learn := func(a netip.Addr) {
		t.Helper()
		if _, err := f.lab.Gateway.Run(f.ctx, "ip", "-6", "neigh", "replace", a.String(), "lladdr", plug.MAC.String(), "dev", "br-iot", "nud", "reachable"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond) // the neighbour lock time
	}
	for _, a := range attacks {
		learn(a.victim)
		f.sendFrames("plug1", [][]byte{a.frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(a.victim); got != cam.MAC.String() {
			t.Fatalf("control: without picoseg the %s left the gateway's entry for %s at %q, want the camera's %v", a.name, a.victim, got, cam.MAC)
		}
	}
	f.start(labPolicy(t, func(s string) string {
		s = strings.Replace(s, `networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`, 1)
		return strings.Replace(s, `ip = ["10.77.0.21"]`, `ip = ["10.77.0.21", "fd00:77::21"]`, 1)
	}))
	for _, a := range attacks {
		learn(a.victim)
		f.sendFrames("plug1", [][]byte{a.frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(a.victim); got != plug.MAC.String() {
			t.Errorf("with picoseg the %s moved the gateway's entry for %s to %q", a.name, a.victim, got)
		}
	}
	spoofs := f.status().Kernel["nd_spoof"]
	if spoofs != uint64(len(attacks)) {
		t.Errorf("nd_spoof counted %d, want %d", spoofs, len(attacks))
	}
	// plug1's honest advertisement and solicitation pass (and are no
	// spoof), as does a solicitation for duplicate address detection
	// carrying a nonce.
	for _, honest := range [][]byte{
		ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 136, plug.Addr6, lladdrOpt(2, plug.MAC)),
		ndFrame(gwMAC, plug.MAC, plug.Addr6, gwAddr, 135, gwAddr, lladdrOpt(1, plug.MAC)),
		ndFrame(gwMAC, plug.MAC, netip.IPv6Unspecified(), gwAddr, 135, gwAddr, nonceOpt),
	} {
		f.sendFrames("plug1", [][]byte{honest})
	}
	time.Sleep(200 * time.Millisecond)
	if n := f.status().Kernel["nd_spoof"]; n != spoofs {
		t.Errorf("plug1's honest messages were dropped as spoofs (nd_spoof %d -> %d)", spoofs, n)
	}
}
