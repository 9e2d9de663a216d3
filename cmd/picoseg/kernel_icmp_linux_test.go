package main

// Kernel tests of ICMP errors about fast-pathed flows: conntrack hands an
// error the quoted flow's entry (state related) and its accepted mark, so
// without picoseg's rule the fast path would accept a device's forged
// error about a flow it is no end of.

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/lab"
)

// inetChecksum is the Internet checksum of b (RFC 1071).
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// fragNeeded is an ICMP "fragmentation needed" (MTU 1400) quoting a TCP
// packet from qsrc to qdst: the IP header and the first 8 bytes of TCP.
func fragNeeded(qsrc, qdst netip.AddrPort) []byte {
	inner := make([]byte, 28)
	inner[0], inner[8], inner[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(inner[2:], 1500)
	copy(inner[12:16], qsrc.Addr().AsSlice())
	copy(inner[16:20], qdst.Addr().AsSlice())
	binary.BigEndian.PutUint16(inner[10:], inetChecksum(inner[:20]))
	binary.BigEndian.PutUint16(inner[20:], qsrc.Port())
	binary.BigEndian.PutUint16(inner[22:], qdst.Port())
	msg := append([]byte{3, 4, 0, 0, 0, 0, 0x05, 0x78}, inner...)
	binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	return msg
}

// packetTooBig is an ICMPv6 "packet too big" (MTU 1280) quoting a TCP
// packet from qsrc to qdst: the IPv6 header and the first 8 bytes of TCP.
// The kernel fills in the checksum of a raw ICMPv6 socket.
func packetTooBig(qsrc, qdst netip.AddrPort) []byte {
	inner := make([]byte, 48)
	inner[0], inner[6], inner[7] = 0x60, unix.IPPROTO_TCP, 64
	binary.BigEndian.PutUint16(inner[4:], 1400)
	copy(inner[8:24], qsrc.Addr().AsSlice())
	copy(inner[24:40], qdst.Addr().AsSlice())
	binary.BigEndian.PutUint16(inner[40:], qsrc.Port())
	binary.BigEndian.PutUint16(inner[42:], qdst.Port())
	return append([]byte{2, 0, 0, 0, 0, 0, 0x05, 0x00}, inner...)
}

// sendICMP sends an ICMP or ICMPv6 message (by dst's family) from host,
// from its own address, through a raw socket.
func (f *fixture) sendICMP(host string, dst netip.Addr, msg []byte) {
	f.t.Helper()
	err := f.lab.Host(host).Do(func() error {
		family, proto := unix.AF_INET6, unix.IPPROTO_ICMPV6
		var to unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
		if dst.Is4() {
			family, proto, to = unix.AF_INET, unix.IPPROTO_ICMP, &unix.SockaddrInet4{Addr: dst.As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW, proto)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, to)
	})
	if err != nil {
		f.t.Fatalf("sending ICMP from %s: %v", host, err)
	}
}

var icmpLine = regexp.MustCompile(`ICMP .*unreachable|ICMP6, packet too big`)

// forgedErrors is one address family of TestKernelForgedICMPErrorOfFastPathedFlow.
type forgedErrors struct {
	fixture func(t *testing.T) *fixture
	policy  func(t *testing.T) string
	addr    func(h *lab.Host) netip.Addr
	error   func(qsrc, qdst netip.AddrPort) []byte
}

// TestKernelForgedICMPErrorOfFastPathedFlow: the admin's allowed connection
// to the hub is fast-pathed. plug1, which is no end of it, sends the admin
// "fragmentation needed" (IPv6: "packet too big") errors quoting it, to
// shrink its path MTU (with another code, to cut it). Without picoseg they
// arrive (the control); with picoseg they do not, while the hub's own
// errors about the connection still arrive, also after the daemon was
// killed and started again mid-flow (its flow table empty, the connection
// still fast-pathed).
func TestKernelForgedICMPErrorOfFastPathedFlow(t *testing.T) {
	for name, fam := range map[string]forgedErrors{
		"ipv4": {newFixture, func(t *testing.T) string { return labPolicy(t, nil) },
			func(h *lab.Host) netip.Addr { return h.Addr }, fragNeeded},
		"ipv6": {func(t *testing.T) *fixture { return newFixtureIPv6(t, true) }, func(t *testing.T) string {
			return labPolicy(t, func(s string) string {
				s = strings.Replace(s, `networks = ["10.88.0.0/24"]`, `networks = ["10.88.0.0/24", "fd00:88::/64"]`, 1)
				s = strings.Replace(s, `networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`, 1)
				s = strings.Replace(s, `ip = ["10.88.0.10"]`, `ip = ["10.88.0.10", "fd00:88::10"]`, 1)
				return strings.Replace(s, `ip = ["10.77.0.30"]`, `ip = ["10.77.0.30", "fd00:77::30"]`, 1)
			})
		}, func(h *lab.Host) netip.Addr { return h.Addr6 }, packetTooBig},
	} {
		t.Run(name, func(t *testing.T) { fam.run(t) })
	}
}

func (fam forgedErrors) run(t *testing.T) {
	f := fam.fixture(t)
	f.discard("hub", 80)
	admin := fam.addr(f.lab.Host("lan"))
	hubWeb := netip.AddrPortFrom(fam.addr(f.lab.Host("hub")), 80)
	var local netip.AddrPort
	connect := func() {
		t.Helper()
		c, err := f.lab.Host("lan").Dial(f.ctx, "tcp", hubWeb.String())
		if err != nil {
			t.Fatalf("admin -> hub tcp/80: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		local = netip.MustParseAddrPort(c.LocalAddr().String())
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	// errorsFrom sends three errors quoting the admin's connection from
	// host and returns those the admin saw.
	errorsFrom := func(host string) []string {
		t.Helper()
		s := f.sniff("lan", "(icmp or icmp6) and src host "+fam.addr(f.lab.Host(host)).String())
		for range 3 {
			f.sendICMP(host, admin, fam.error(local, hubWeb))
		}
		return s.lines(icmpLine)
	}

	connect()
	if got := errorsFrom("plug1"); len(got) != 3 {
		t.Fatalf("control: without picoseg the admin saw %d of plug1's 3 forged errors", len(got))
	}

	policy := fam.policy(t)
	f.start(policy)
	connect()
	time.Sleep(200 * time.Millisecond)
	before := f.status().Kernel["fast_path"]
	if got := errorsFrom("plug1"); len(got) != 0 {
		t.Errorf("plug1's forged errors about the admin's connection reached the admin:\n%v", got)
	}
	if got := errorsFrom("hub"); len(got) != 3 {
		t.Errorf("the admin saw %d of the hub's 3 errors about its own connection", len(got))
	}
	if after := f.status().Kernel["fast_path"]; after != before {
		t.Errorf("errors took the fast path (fast_path %d -> %d)", before, after)
	}

	// Killed and started again: the connection stays fast-pathed, the new
	// daemon's flow table has never seen it.
	f.signal(syscall.SIGKILL)
	<-f.daemon.Done()
	f.start(policy)
	if got := errorsFrom("hub"); len(got) != 3 {
		t.Errorf("after a restart the admin saw %d of the hub's 3 errors about its running connection", len(got))
	}
	if got := errorsFrom("plug1"); len(got) != 0 {
		t.Errorf("after a restart plug1's forged errors reached the admin:\n%v", got)
	}
}

// portUnreachable is an ICMP "port unreachable" quoting a UDP packet from
// qsrc to qdst: the IP header and the UDP header.
func portUnreachable(qsrc, qdst netip.AddrPort) []byte {
	inner := make([]byte, 28)
	inner[0], inner[8], inner[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(inner[2:], 29)
	copy(inner[12:16], qsrc.Addr().AsSlice())
	copy(inner[16:20], qdst.Addr().AsSlice())
	binary.BigEndian.PutUint16(inner[10:], inetChecksum(inner[:20]))
	binary.BigEndian.PutUint16(inner[20:], qsrc.Port())
	binary.BigEndian.PutUint16(inner[22:], qdst.Port())
	binary.BigEndian.PutUint16(inner[24:], 9)
	msg := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, inner...)
	binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	return msg
}

// TestKernelForgedICMPErrorOfGatewayConnection: the gateway's own
// connections are not judged, and the kernel takes an error about one as a
// reply. plug1 sends "port unreachable" about the gateway's UDP connection
// to a WAN server: without picoseg the gateway's socket fails with
// ECONNREFUSED (the control); with picoseg it does not, while the server's
// own error still arrives, and so does plug1's error about the gateway's
// connection to plug1 (but not the hub's).
func TestKernelForgedICMPErrorOfGatewayConnection(t *testing.T) {
	f := newFixture(t)
	for _, h := range []string{"wan", "plug1"} {
		// Listening, so that their kernels send no error of their own.
		c, err := f.lab.Host(h).ListenPacket("udp", ":9999")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// refused reports whether the gateway's connection to peer hears of
	// the "port unreachable" that from sends about it.
	refused := func(peer, from string) bool {
		t.Helper()
		server := netip.AddrPortFrom(f.lab.Host(peer).Addr, 9999)
		c, err := f.lab.Gateway.Dial(f.ctx, "udp", server.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		time.Sleep(50 * time.Millisecond)
		f.sendICMP(from, local.Addr(), portUnreachable(local, server))
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = c.Read(make([]byte, 16))
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	if !refused("wan", "plug1") {
		t.Fatal("control: without picoseg plug1's forged error did not reach the gateway's connection")
	}
	f.start(labPolicy(t, nil))
	if refused("wan", "plug1") {
		t.Error("with picoseg plug1's forged error cut the gateway's connection to the WAN server")
	}
	if !refused("wan", "wan") {
		t.Error("the WAN server's own error about the gateway's connection was lost")
	}
	if !refused("plug1", "plug1") {
		t.Error("plug1's error about the gateway's connection to plug1 was lost")
	}
	if refused("plug1", "hub") {
		t.Error("the hub's forged error cut the gateway's connection to plug1")
	}
}
