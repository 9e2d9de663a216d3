package main

// Integration tests of floods and neighbour spoofing on the real kernel:
// a device floods SYNs towards a host the policy denies it, from forged
// random sources and from its own address with a new port each time,
// while another device keeps opening flows it is allowed; and a plug
// forges ARP for the camera.

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/daemon"
	"golang.org/x/sys/unix"
)

// seen counts, in host's namespace, TCP SYNs to port arriving on its
// interface, whoever sent them.
func (f *fixture) seen(host string, port int) func() uint64 {
	f.t.Helper()
	return f.counterIn(host, "inet seen syn", fmt.Sprintf(`table inet seen {
	counter syn { }
	chain pre {
		type filter hook prerouting priority raw;
		tcp dport %d tcp flags & (syn | ack) == syn counter name "syn"
	}
}
`, port))
}

// counterIn loads ruleset in host's namespace and returns a reader of the
// packets of its counter, named "FAMILY TABLE NAME".
func (f *fixture) counterIn(host, counter, ruleset string) func() uint64 {
	f.t.Helper()
	h := f.lab.Host(host)
	cmd := h.Command(f.ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("nft in %s: %v\n%s", host, err, out)
	}
	re := regexp.MustCompile(`packets (\d+)`)
	return func() uint64 {
		out, err := h.Run(f.ctx, "nft", append([]string{"list", "counter"}, strings.Fields(counter)...)...)
		if err != nil {
			f.t.Fatal(err)
		}
		m := re.FindStringSubmatch(out)
		if m == nil {
			f.t.Fatalf("no counter in %s:\n%s", host, out)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
}

// hping sends a few packets with hping3 from host; it exits non-zero when
// nothing answers, which is fine here.
func (f *fixture) hping(host string, args ...string) {
	f.t.Helper()
	out, err := f.lab.Host(host).Command(f.ctx, "hping3", args...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "hping statistic") {
		f.t.Fatalf("hping3 %v: %v\n%s", args, err, out)
	}
}

// connects opens n TCP connections from host to dst, one every gap, and
// returns how many succeeded and their connect times.
func (f *fixture) connects(host string, dst netip.AddrPort, n int, gap time.Duration) (ok int, times []time.Duration) {
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f.lab.Host(host).TCPConnect(f.ctx, dst, 2*time.Second); err == nil {
			ok++
			times = append(times, time.Since(start))
		}
		time.Sleep(gap)
	}
	return ok, times
}

// median is the middle of xs, the zero value for none.
func median[T cmp.Ordered](xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// floodSeconds bounds every flood of these tests.
const floodSeconds = 5

// TestKernelFloodRandomSource: plug1 floods SYNs at full speed towards the
// LAN host (iot -> lan is denied) for five seconds, from random forged
// sources and, at the same time, from its own address with a new source
// port for every packet. With on_queue_full = "drop", no SYN of the flood
// reaches the LAN host; with "open", what reaches it is measured and
// logged (the README documents it). Either way the camera's allowed flows
// to the WAN keep being judged: their success rate and added connect time
// are reported. The control shows that without picoseg plug1's SYNs reach
// the LAN host.
func TestKernelFloodRandomSource(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	for _, mode := range []string{"drop", "open"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.echo("wan", 8443)
			lanSYNs := f.seen("lan", 22)
			lanAddr := f.lab.Host("lan").Addr.String()

			// Control: without picoseg the gateway forwards plug1's SYNs.
			f.hping("plug1", "-S", "-c", "3", "-i", "u20000", "-p", "22", lanAddr)
			if n := lanSYNs(); n != 3 {
				t.Fatalf("control: %d of plug1's 3 SYNs reached the LAN host without picoseg", n)
			}

			f.start(labPolicy(t, func(s string) string {
				return strings.Replace(s, `on_queue_full = "open"`, `on_queue_full = "`+mode+`"`, 1)
			}))
			cam := netip.AddrPortFrom(f.lab.Host("wan").Addr, 8443)
			baseOK, baseTimes := f.connects("cam", cam, 20, 50*time.Millisecond)
			before := lanSYNs()

			var floods []*lab.Process
			for _, args := range [][]string{
				{"timeout", strconv.Itoa(floodSeconds), "hping3", "--flood", "--rand-source", "-S", "-p", "22", lanAddr},
				{"timeout", strconv.Itoa(floodSeconds), "hping3", "--flood", "-S", "-p", "22", lanAddr},
			} {
				p, err := f.lab.Host("plug1").Start(f.ctx, args[0], args[1:]...)
				if err != nil {
					t.Fatal(err)
				}
				floods = append(floods, p)
			}
			start := time.Now()
			time.Sleep(500 * time.Millisecond)
			okDuring, times := f.connects("cam", cam, 40, 50*time.Millisecond)
			for _, p := range floods {
				<-p.Done()
			}
			elapsed := time.Since(start)
			passed := lanSYNs() - before
			st := f.status()
			k := st.Kernel
			t.Logf("on_queue_full=%s, %v of flooding: %d flood SYNs reached the LAN host; kernel dropped %d spoofed (reverse path), %d by the per-device guard, %d over the guard set, %d by the global cap, %d invalid; %d packets reached userspace; queue full dropped %d",
				mode, elapsed.Round(100*time.Millisecond), passed, k["rpf_dropped"], k["guard_dropped"], k["guard_full"], k["global_dropped"], k["invalid_dropped"], queued(st), k["queue_full_dropped"])
			t.Logf("camera -> wan:8443: before the flood %d/20 connected (median %v); during it %d/40 (median %v, %+v added)",
				baseOK, median(baseTimes), okDuring, median(times), median(times)-median(baseTimes))
			if k["rpf_dropped"] == 0 || k["guard_dropped"] == 0 {
				t.Errorf("the kernel dropped %d forged and %d guarded SYNs: the flood never met the checks", k["rpf_dropped"], k["guard_dropped"])
			}
			// Even with "open" nothing may pass: one device puts at most its
			// burst plus its rate (400 + 200/s by default) into the queue,
			// which holds 4096, so in five seconds the flood cannot fill it
			// even if the daemon judged nothing. (With the old per-address
			// guard every forged source had a budget of its own, the queue
			// overflowed and "open" let the overflow through.)
			if passed != 0 {
				t.Errorf("on_queue_full=%s: %d SYNs of the denied flood reached the LAN host", mode, passed)
			}
			if okDuring < 38 {
				t.Errorf("only %d of 40 camera connections passed during plug1's flood", okDuring)
			}
		})
	}
}

// arpFrame is an Ethernet ARP packet: op 1 request, 2 reply.
func arpFrame(op uint16, dst, src, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, 0, 42)
	b = append(b, dst...)
	b = append(b, src...)
	b = append(b, 0x08, 0x06)             // ARP
	b = append(b, 0, 1, 0x08, 0x00, 6, 4) // Ethernet, IPv4
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha...)
	return append(b, tpa.AsSlice()...)
}

// sendFrames writes raw Ethernet frames on host's interface.
func (f *fixture) sendFrames(host string, frames [][]byte) {
	f.t.Helper()
	f.sendFramesOn(f.lab.Host(host), lab.HostIface, frames)
}

// sendFramesOn writes raw Ethernet frames on iface in h's namespace.
func (f *fixture) sendFramesOn(h *lab.Host, iface string, frames [][]byte) {
	f.t.Helper()
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for _, fr := range frames {
			copy(to.Addr[:], fr[:6])
			if err := unix.Sendto(fd, fr, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("sending frames on %s: %v", iface, err)
	}
}

// gatewayNeighbour returns the MAC the gateway's neighbour table holds for
// addr ("" for none).
func (f *fixture) gatewayNeighbour(addr netip.Addr) string {
	f.t.Helper()
	out, err := f.lab.Gateway.Run(f.ctx, "ip", "neigh", "show", addr.String())
	if err != nil {
		f.t.Fatal(err)
	}
	if m := regexp.MustCompile(`lladdr (\S+)`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// TestKernelARPSpoof: plug1 sends the gateway a forged ARP reply claiming
// the camera's address. Without picoseg the gateway's neighbour entry for
// the camera then points at plug1 (the control); with picoseg the reply is
// dropped on the bridge port, counted, and the entry keeps the camera's MAC.
func TestKernelARPSpoof(t *testing.T) {
	f := newFixture(t)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug1")
	gwMAC := f.lab.Sides[lab.SideIoT].MAC
	gwAddr := f.lab.Sides[lab.SideIoT].Addr.Addr()
	forged := arpFrame(2, gwMAC, plug.MAC, plug.MAC, cam.Addr, gwMAC, gwAddr)
	// learn refreshes the gateway's entry for the camera, then waits out
	// the neighbour lock time (1 s), within which a reply is ignored.
	learn := func() {
		t.Helper()
		if _, err := f.lab.Gateway.Run(f.ctx, "ip", "neigh", "replace", cam.Addr.String(), "lladdr", cam.MAC.String(), "dev", "br-iot", "nud", "reachable"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond)
	}

	// The same reply with a priority tag (VLAN 0): the kernel takes the
	// tag out of the frame and the gateway still processes the ARP.
	tagged := append(append(append([]byte(nil), forged[:12]...), 0x81, 0x00, 0x00, 0x00), forged[12:]...)
	for _, frame := range [][]byte{forged, tagged} {
		learn()
		f.sendFrames("plug1", [][]byte{frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(cam.Addr); got != plug.MAC.String() {
			t.Fatalf("control: without picoseg the forged reply (% x...) left the camera's entry at %q, want plug1's %v", frame[12:16], got, plug.MAC)
		}
	}

	f.start(labPolicy(t, nil))
	for _, frame := range [][]byte{forged, tagged} {
		learn()
		f.sendFrames("plug1", [][]byte{frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(cam.Addr); got != cam.MAC.String() {
			t.Errorf("with picoseg the forged reply (% x...) moved the camera's entry to %q", frame[12:16], got)
		}
	}
	// Claiming the gateway's own address is refused too.
	f.sendFrames("plug1", [][]byte{arpFrame(2, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, plug.MAC, plug.MAC, gwAddr, gwMAC, gwAddr)})
	// The camera's own reply still passes.
	f.sendFrames("cam", [][]byte{arpFrame(2, gwMAC, cam.MAC, cam.MAC, cam.Addr, gwMAC, gwAddr)})
	time.Sleep(200 * time.Millisecond)
	if got := f.gatewayNeighbour(cam.Addr); got != cam.MAC.String() {
		t.Errorf("after the camera's own reply the entry is %q", got)
	}
	if n := f.status().Kernel["arp_spoof"]; n != 3 {
		t.Errorf("arp_spoof counted %d packets, want 3 (the forged reply, untagged and tagged, and the claim on the gateway's address)", n)
	}
	// The daemon learns of the drops from the counters and raises an alert.
	var alerts []struct {
		Type string `json:"type"`
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := daemon.Query(f.sock, "alerts", &alerts); err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Type == "arp_spoof" {
				return
			}
		}
	}
	t.Errorf("no arp_spoof alert: %+v", alerts)
}

// TestKernelARPFlood: plug1 sends 2000 ARP requests as fast as it can. They
// are broadcasts: without picoseg every one reaches the camera (the
// control); with picoseg the port's budget lets through at most its burst
// and rate.
func TestKernelARPFlood(t *testing.T) {
	f := newFixture(t)
	plug := f.lab.Host("plug1")
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var frames [][]byte
	for i := 0; i < 2000; i++ {
		tpa := netip.AddrFrom4([4]byte{10, 77, 0, byte(100 + i%100)})
		frames = append(frames, arpFrame(1, bcast, plug.MAC, plug.MAC, plug.Addr, make(net.HardwareAddr, 6), tpa))
	}
	camSees := f.arpSeen("cam")
	f.sendFrames("plug1", frames)
	time.Sleep(300 * time.Millisecond)
	control := camSees()
	if control < 1900 {
		t.Fatalf("control: the camera saw %d of 2000 ARP requests without picoseg", control)
	}

	f.start(labPolicy(t, nil))
	time.Sleep(2 * time.Second) // the budget fills up
	before := camSees()
	start := time.Now()
	f.sendFrames("plug1", frames)
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	got := camSees() - before
	flood := f.status().Kernel["arp_flood"]
	t.Logf("2000 ARP requests in %v: without picoseg the camera saw %d; with picoseg %d, and %d were dropped as a flood", took.Round(time.Millisecond), control, got, flood)
	// Burst 50 plus 25/s for the time the flood took, with slack.
	if limit := uint64(50 + 25*(took.Seconds()+1) + 10); got > limit {
		t.Errorf("the camera saw %d ARP requests of the flood, want at most %d", got, limit)
	}
	if flood < 1000 {
		t.Errorf("arp_flood counted %d, want most of the 2000", flood)
	}
}

// arpSeen counts ARP packets arriving in host's namespace.
func (f *fixture) arpSeen(host string) func() uint64 {
	f.t.Helper()
	return f.counterIn(host, "arp seen frames", "table arp seen {\n\tcounter frames { }\n\tchain in {\n\t\ttype filter hook input priority filter;\n\t\tcounter name \"frames\"\n\t}\n}\n")
}

// udpSeen counts, in host's namespace, UDP datagrams to port from src.
func (f *fixture) udpSeen(host string, src netip.Addr, port int) func() uint64 {
	f.t.Helper()
	return f.counterIn(host, "inet udpseen dgrams", fmt.Sprintf("table inet udpseen {\n\tcounter dgrams { }\n\tchain pre {\n\t\ttype filter hook prerouting priority raw;\n\t\tip saddr %s udp dport %d counter name \"dgrams\"\n\t}\n}\n", src, port))
}

// TestKernelReversePathOnBridge: a device on the IoT bridge sends UDP from
// the LAN admin's address, to a device on the same bridge (bridged, seen
// through br_netfilter) and to the WAN (routed). Both are dropped in the
// kernel before the queue by the reverse-path check, which works on the
// bridge as a whole; the control shows both arrive without picoseg.
func TestKernelReversePathOnBridge(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	f := newFixture(t)
	admin := f.lab.Host("lan").Addr
	hubSees := f.udpSeen("hub", admin, 5353)
	wanSees := f.udpSeen("wan", admin, 5353)
	send := func() {
		for _, dst := range []string{f.lab.Host("hub").Addr.String(), f.lab.Host("wan").Addr.String()} {
			f.hping("plug2", "-2", "-c", "5", "-i", "u20000", "-a", admin.String(), "-p", "5353", dst)
		}
	}
	// Without picoseg (and without br_netfilter, which picoseg turns on for
	// the bridge) both arrive.
	send()
	ctrlHub, ctrlWan := hubSees(), wanSees()
	if ctrlHub != 5 || ctrlWan != 5 {
		t.Fatalf("control: %d of 5 forged datagrams reached the hub and %d of 5 the WAN host without picoseg", ctrlHub, ctrlWan)
	}
	f.start(labPolicy(t, nil))
	send()
	hub, wan := hubSees()-ctrlHub, wanSees()-ctrlWan
	st := f.status()
	t.Logf("forged LAN source from the IoT bridge: %d reached the hub, %d the WAN host; %d dropped by the reverse-path check, %d reached userspace", hub, wan, st.Kernel["rpf_dropped"], queued(st))
	if hub != 0 || wan != 0 {
		t.Errorf("forged datagrams arrived: %d at the hub, %d at the WAN host", hub, wan)
	}
	if st.Kernel["rpf_dropped"] < 10 {
		t.Errorf("the reverse-path check dropped %d, want all 10 (before the queue)", st.Kernel["rpf_dropped"])
	}
}

// naFrame is an unsolicited IPv6 neighbour advertisement (override set)
// from src claiming target with the link-layer address tlla.
func naFrame(dstMAC, srcMAC net.HardwareAddr, src, dst, target netip.Addr, tlla net.HardwareAddr) []byte {
	icmp := []byte{136, 0, 0, 0, 0x20, 0, 0, 0} // type, code, checksum, flags: override
	icmp = append(icmp, target.AsSlice()...)
	icmp = append(icmp, 2, 1) // target link-layer address option
	icmp = append(icmp, tlla...)
	return icmp6Frame(dstMAC, srcMAC, src, dst, icmp)
}

// nsFrame is an IPv6 neighbour solicitation for target, with a source
// link-layer address option: its receiver updates its entry for src.
func nsFrame(dstMAC, srcMAC net.HardwareAddr, src, dst, target netip.Addr, slla net.HardwareAddr) []byte {
	icmp := []byte{135, 0, 0, 0, 0, 0, 0, 0} // type, code, checksum, reserved
	icmp = append(icmp, target.AsSlice()...)
	icmp = append(icmp, 1, 1) // source link-layer address option
	icmp = append(icmp, slla...)
	return icmp6Frame(dstMAC, srcMAC, src, dst, icmp)
}

// icmp6Frame wraps an ICMPv6 message (checksum field zero) in IPv6 and
// Ethernet, with the hop limit 255 neighbour discovery requires.
func icmp6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, icmp []byte) []byte {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += uint32(len(icmp)) + 58
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(icmp[2:], ^uint16(sum))
	b := append([]byte{}, dstMAC...)
	b = append(b, srcMAC...)
	b = append(b, 0x86, 0xdd)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, 58, 255)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	return append(b, icmp...)
}

// TestKernelNDSpoof: plug1 sends the gateway an unsolicited neighbour
// advertisement claiming the camera's IPv6 address. Without picoseg the
// gateway's entry for the camera then points at plug1 (the control); with
// picoseg it is dropped on the bridge port and counted.
func TestKernelNDSpoof(t *testing.T) {
	f := newFixtureIPv6(t, true)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug1")
	side := f.lab.Sides[lab.SideIoT]
	forged := naFrame(side.MAC, plug.MAC, plug.Addr6, side.Addr6.Addr(), cam.Addr6, plug.MAC)
	// A solicitation from the camera's address with plug1's MAC in its
	// option: the gateway updates its entry for the camera from it too.
	solicit := nsFrame(side.MAC, plug.MAC, cam.Addr6, side.Addr6.Addr(), side.Addr6.Addr(), plug.MAC)
	learn := func() {
		t.Helper()
		if _, err := f.lab.Gateway.Run(f.ctx, "ip", "-6", "neigh", "replace", cam.Addr6.String(), "lladdr", cam.MAC.String(), "dev", "br-iot", "nud", "reachable"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond)
	}
	for _, frame := range [][]byte{forged, solicit} {
		learn()
		f.sendFrames("plug1", [][]byte{frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(cam.Addr6); got != plug.MAC.String() {
			t.Fatalf("control: without picoseg the forged message (type %d) left the camera's entry at %q, want plug1's %v", frame[54], got, plug.MAC)
		}
	}
	f.start(labPolicy(t, func(s string) string {
		s = strings.Replace(s, `networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`, 1)
		return strings.Replace(s, `ip = ["10.77.0.11"]`, `ip = ["10.77.0.11", "fd00:77::11"]`, 1)
	}))
	for _, frame := range [][]byte{forged, solicit} {
		learn()
		f.sendFrames("plug1", [][]byte{frame})
		time.Sleep(200 * time.Millisecond)
		if got := f.gatewayNeighbour(cam.Addr6); got != cam.MAC.String() {
			t.Errorf("with picoseg the forged message (type %d) moved the camera's entry to %q", frame[54], got)
		}
	}
	if n := f.status().Kernel["nd_spoof"]; n != 2 {
		t.Errorf("nd_spoof counted %d, want 2 (the advertisement and the solicitation)", n)
	}
}

// TestKernelDADCrossesTheBridge: duplicate address detection sends a
// neighbour solicitation from the unspecified address (::), bridged to the
// other ports and, with br_netfilter, through the forward hook. It is no
// claim to an address: the kernel's reverse-path check lets it through to
// be judged (whether the engine then passes it is the engine's part).
func TestKernelDADCrossesTheBridge(t *testing.T) {
	f := newFixtureIPv6(t, true)
	cam, plug := f.lab.Host("cam"), f.lab.Host("plug2")
	cmd := plug.Command(f.ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet dad {\n\tcounter ns { }\n\tchain pre {\n\t\ttype filter hook prerouting priority raw;\n\t\tip6 saddr :: icmpv6 type nd-neighbor-solicit counter name \"ns\"\n\t}\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	seen := func() string {
		out, err := plug.Run(f.ctx, "nft", "list", "counter", "inet", "dad", "ns")
		if err != nil {
			t.Fatal(err)
		}
		return regexp.MustCompile(`packets \d+`).FindString(out)
	}
	tentative := netip.MustParseAddr("fd00:77::99")
	solicited := netip.MustParseAddr("ff02::1:ff00:99")
	ns := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	ns = append(ns, tentative.AsSlice()...)
	frame := icmp6Frame(net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x99}, cam.MAC, netip.IPv6Unspecified(), solicited, ns)
	f.sendFrames("cam", [][]byte{frame, frame, frame})
	time.Sleep(200 * time.Millisecond)
	if got := seen(); got != "packets 3" {
		t.Fatalf("control: without picoseg plug2 saw %q of the camera's 3 DAD solicitations", got)
	}
	f.start(labPolicy(t, func(s string) string {
		return strings.Replace(s, `networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`, 1)
	}))
	before := f.status().Kernel["queued"]
	f.sendFrames("cam", [][]byte{frame, frame, frame})
	time.Sleep(200 * time.Millisecond)
	st := f.status()
	t.Logf("with picoseg plug2 saw %q in all of the camera's 6 DAD solicitations; %d queued, %d dropped by the reverse-path check", seen(), st.Kernel["queued"]-before, st.Kernel["rpf_dropped"])
	if st.Kernel["rpf_dropped"] != 0 || st.Kernel["queued"]-before < 3 {
		t.Errorf("DAD solicitations from :: were dropped as spoofed in the kernel (%d) instead of being judged (%d queued)", st.Kernel["rpf_dropped"], st.Kernel["queued"]-before)
	}
}

// TestKernelFloodOnTheBridge: a SYN flood between two devices on the IoT
// bridge (east-west, seen through br_netfilter) meets the per-device guard
// too: the frame's source MAC is there to key on. None of it reaches the
// hub, which the plug may not open flows to.
func TestKernelFloodOnTheBridge(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	f := newFixture(t)
	hubSYNs := f.seen("hub", 80)
	hubAddr := f.lab.Host("hub").Addr.String()
	f.hping("plug1", "-S", "-c", "3", "-i", "u20000", "-p", "80", hubAddr)
	if n := hubSYNs(); n != 3 {
		t.Fatalf("control: %d of plug1's 3 SYNs reached the hub without picoseg", n)
	}
	f.start(labPolicy(t, nil))
	before := hubSYNs()
	out, _ := f.lab.Host("plug1").Command(f.ctx, "timeout", "3", "hping3", "--flood", "-S", "-p", "80", hubAddr).CombinedOutput()
	passed := hubSYNs() - before
	st := f.status()
	t.Logf("3 s of SYN flood plug1 -> hub across the bridge: %d reached the hub; %d dropped by the per-device guard, %d over the guard set; %d reached userspace (%s)",
		passed, st.Kernel["guard_dropped"], st.Kernel["guard_full"], queued(st), lastLine(string(out)))
	if passed != 0 {
		t.Errorf("%d SYNs of the denied flood reached the hub", passed)
	}
	if st.Kernel["guard_dropped"] == 0 || st.Kernel["guard_full"] != 0 {
		t.Errorf("guard dropped %d, over the set %d: the bridged flood was not keyed on its device", st.Kernel["guard_dropped"], st.Kernel["guard_full"])
	}
	if q := queued(st); q > 400+3*200+100 {
		t.Errorf("%d packets reached userspace, want at most one device's burst and rate", q)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
