package main

// Kernel tests of who a flow belongs to: a device answering an allowed
// connection must not use that accept to open a connection of its own, or
// to send its own pings, across a segment that denies it. Each attack runs
// first without picoseg, to prove the lab delivers it, then with picoseg.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/lab"
)

// plugReachablePolicy is rules/demo.toml with the LAN admin allowed to
// reach plug1's web port and to ping it. The IoT zone still may open
// nothing towards the LAN.
func plugReachablePolicy(t *testing.T) string {
	return labPolicy(t, func(s string) string {
		return s + `
[[allow]]
name = "admin-to-plug"
from = "device:admin"
to = "device:plug1"
services = ["tcp/8080", "icmp"]
`
	})
}

// sniffer is tcpdump running in a host's namespace.
type sniffer struct {
	t *testing.T
	p *lab.Process
}

// sniff starts tcpdump on host's interface with filter and waits until it
// listens.
func (f *fixture) sniff(host, filter string) *sniffer {
	f.t.Helper()
	p, err := f.lab.Host(host).Start(f.ctx, "tcpdump", "-l", "-n", "-i", lab.HostIface, filter)
	if err != nil {
		f.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Output(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.Stop()
			f.t.Fatalf("tcpdump did not start:\n%s", p.Output())
		}
	}
	return &sniffer{t: f.t, p: p}
}

// lines stops the capture, after a moment for packets in flight, and
// returns the captured packets' lines that match re.
func (s *sniffer) lines(re *regexp.Regexp) []string {
	time.Sleep(300 * time.Millisecond)
	s.p.Stop()
	var out []string
	for _, l := range strings.Split(s.p.Output(), "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// sendTCPFlags sends, with hping3, one TCP packet with flags ("S", "A",
// ...) from host's port sport to dst.
func (f *fixture) sendTCPFlags(host, flags string, sport uint16, dst netip.AddrPort) {
	f.t.Helper()
	args := []string{"-c", "1", "-s", strconv.Itoa(int(sport)), "-k", "-p", strconv.Itoa(int(dst.Port()))}
	for _, c := range flags {
		args = append(args, "-"+string(c))
	}
	args = append(args, dst.Addr().String())
	if out, err := f.lab.Host(host).Run(f.ctx, "hping3", args...); err != nil && !strings.Contains(out, "packets transmitted") {
		f.t.Fatalf("hping3 %v: %v\n%s", args, err, out)
	}
}

var synLine = regexp.MustCompile(`Flags \[S\]`)

// The plug's bare ACK from its web port is accepted as the reply of the
// admin's allowed connection; its SYN on the same ports is a connection the
// plug opens towards the LAN, which the segment iot -> lan denies.
func TestKernelBareACKOpensNoDoorForASYN(t *testing.T) {
	f := newFixture(t)
	admin := f.lab.Host("lan").Addr
	attack := func(port uint16) []string {
		dst := netip.AddrPortFrom(admin, port)
		s := f.sniff("lan", fmt.Sprintf("tcp and src host %s and port %d", f.lab.Host("plug1").Addr, port))
		f.sendTCPFlags("plug1", "A", 8080, dst)
		f.sendTCPFlags("plug1", "R", 8080, dst)
		f.sendTCPFlags("plug1", "S", 8080, dst)
		return s.lines(synLine)
	}
	if syns := attack(40001); len(syns) == 0 {
		t.Fatal("control: without picoseg the lab did not deliver the plug's SYN")
	}
	f.start(plugReachablePolicy(t))
	if syns := attack(40002); len(syns) != 0 {
		t.Errorf("the plug's SYN reached the LAN host after its bare ACK and RST:\n%s", strings.Join(syns, "\n"))
	}
	// And without the RST in between.
	dst := netip.AddrPortFrom(admin, 40003)
	s := f.sniff("lan", fmt.Sprintf("tcp and src host %s and port 40003", f.lab.Host("plug1").Addr))
	f.sendTCPFlags("plug1", "A", 8080, dst)
	f.sendTCPFlags("plug1", "S", 8080, dst)
	if syns := s.lines(synLine); len(syns) != 0 {
		t.Errorf("the plug's SYN reached the LAN host after its bare ACK:\n%s", strings.Join(syns, "\n"))
	}
	// The admin's own connection to the plug still works.
	f.discard("plug1", 8080)
	if !f.can("lan", "plug1", 8080) {
		t.Error("admin -> plug1 tcp/8080 is allowed but failed")
	}
}

// pinger sends ICMP echo requests from one host through a raw socket, so
// that the test chooses the identifier.
type pinger struct {
	fd int
}

func (f *fixture) pinger(host string) *pinger {
	f.t.Helper()
	p := &pinger{fd: -1}
	err := f.lab.Host(host).Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		p.fd = fd
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { unix.Close(p.fd) })
	return p
}

func (p *pinger) echo(t *testing.T, dst netip.Addr, id, seq uint16) {
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'p', 'i', 'c', 'o'}
	var sum uint32
	for i := 0; i < len(msg); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(msg[i:]))
	}
	sum = sum>>16 + sum&0xffff
	sum += sum >> 16
	binary.BigEndian.PutUint16(msg[2:], ^uint16(sum))
	if err := unix.Sendto(p.fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		t.Errorf("sending an echo request to %s: %v", dst, err)
	}
}

var echoRequestID = regexp.MustCompile(`ICMP echo request, id (\d+)`)

// While the admin pings the plug, the plug's own echo requests to the
// admin (with the admin's identifier, or its own) are its own flows, which
// the segment iot -> lan denies.
func TestKernelPingBackDoesNotRideOnThePing(t *testing.T) {
	f := newFixture(t)
	lanHost, plug := f.lab.Host("lan"), f.lab.Host("plug1")
	fromLAN, fromPlug := f.pinger("lan"), f.pinger("plug1")
	const adminID, plugID = 0x4242, 0x4343
	attack := func() (requests, replies []string) {
		s := f.sniff("lan", "icmp and src host "+plug.Addr.String())
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint16(1); ; seq++ {
				fromLAN.echo(t, plug.Addr, adminID, seq)
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		time.Sleep(500 * time.Millisecond) // the admin's ping is running
		for seq := uint16(1); seq <= 3; seq++ {
			fromPlug.echo(t, lanHost.Addr, adminID, seq)
			fromPlug.echo(t, lanHost.Addr, plugID, seq)
			time.Sleep(100 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		for _, l := range s.lines(regexp.MustCompile(`ICMP echo`)) {
			if m := echoRequestID.FindStringSubmatch(l); m != nil {
				requests = append(requests, m[1])
			} else if strings.Contains(l, fmt.Sprintf("echo reply, id %d,", adminID)) {
				replies = append(replies, l)
			}
		}
		return requests, replies
	}
	requests, replies := attack()
	if got := strings.Join(requests, " "); !strings.Contains(got, strconv.Itoa(adminID)) || !strings.Contains(got, strconv.Itoa(plugID)) || len(replies) == 0 {
		t.Fatalf("control: without picoseg the lab did not deliver the pings (requests with ids %q, %d replies)", got, len(replies))
	}
	f.start(plugReachablePolicy(t))
	requests, replies = attack()
	if len(requests) != 0 {
		t.Errorf("the plug's echo requests reached the LAN host while it pinged the plug: ids %v", requests)
	}
	if len(replies) == 0 {
		t.Error("the admin's allowed ping of the plug got no replies through picoseg")
	}
}
