package main

// Kernel tests of ICMP errors about fast-pathed flows: conntrack hands an
// error the quoted flow's entry (state related) and its accepted mark, so
// without picoseg's rule the fast path would accept a device's forged
// error about a flow it is no end of.

import (
	"encoding/binary"
	"net/netip"
	"regexp"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// sendICMP sends an ICMP message from host (its own address) to dst
// through a raw socket.
func (f *fixture) sendICMP(host string, dst netip.Addr, msg []byte) {
	f.t.Helper()
	err := f.lab.Host(host).Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	})
	if err != nil {
		f.t.Fatalf("sending ICMP from %s: %v", host, err)
	}
}

var icmpLine = regexp.MustCompile(`ICMP .*unreachable`)

// TestKernelForgedICMPErrorOfFastPathedFlow: the admin's allowed connection
// to the hub is fast-pathed. plug1, which is no end of it, sends the admin
// "fragmentation needed" errors quoting it (to shrink its path MTU, or,
// with another code, to cut it). Without picoseg they arrive (the
// control); with picoseg they do not, while the hub's own errors about the
// connection still arrive, also after the daemon was killed and started
// again mid-flow (its flow table empty, the connection still fast-pathed).
func TestKernelForgedICMPErrorOfFastPathedFlow(t *testing.T) {
	f := newFixture(t)
	f.discard("hub", 80)
	admin, hub := f.lab.Host("lan"), f.lab.Host("hub")
	hubWeb := netip.AddrPortFrom(hub.Addr, 80)
	var local netip.AddrPort
	connect := func() {
		t.Helper()
		c, err := admin.Dial(f.ctx, "tcp", hubWeb.String())
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
		from := f.lab.Host(host).Addr
		s := f.sniff("lan", "icmp and src host "+from.String())
		for range 3 {
			f.sendICMP(host, admin.Addr, fragNeeded(local, hubWeb))
		}
		return s.lines(icmpLine)
	}

	connect()
	if got := errorsFrom("plug1"); len(got) != 3 {
		t.Fatalf("control: without picoseg the admin saw %d of plug1's 3 forged errors", len(got))
	}

	f.start(labPolicy(t, nil))
	connect()
	time.Sleep(200 * time.Millisecond)
	before := f.status().Kernel["fast_path"]
	if got := errorsFrom("plug1"); len(got) != 0 {
		t.Errorf("plug1's forged errors about the admin's connection reached the admin:\n%v", got)
	}
	if got := errorsFrom("hub"); len(got) != 3 {
		t.Errorf("the admin saw %d of the hub's 3 errors about its own connection", len(got))
	}
	if f.status().Kernel["fast_path"] != before {
		t.Errorf("errors took the fast path (fast_path %d -> %d)", before, f.status().Kernel["fast_path"])
	}

	// Killed and started again: the connection stays fast-pathed, the new
	// daemon's flow table has never seen it.
	f.signal(syscall.SIGKILL)
	<-f.daemon.Done()
	f.start(labPolicy(t, nil))
	if got := errorsFrom("hub"); len(got) != 3 {
		t.Errorf("after a restart the admin saw %d of the hub's 3 errors about its running connection", len(got))
	}
	if got := errorsFrom("plug1"); len(got) != 0 {
		t.Errorf("after a restart plug1's forged errors reached the admin:\n%v", got)
	}
}
