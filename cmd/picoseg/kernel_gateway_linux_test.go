package main

// Integration tests of the gateway's own protection: the input hook judges
// traffic to the gateway, and an address proves nothing outside its zone.
// Each attack has a control that shows the lab delivers it without picoseg.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/daemon"
	"golang.org/x/sys/unix"
)

// gatewayIoT is the gateway's address on the IoT bridge; gatewayLAN on lan0.
var (
	gatewayIoT = netip.MustParseAddr("10.77.0.1")
	gatewayLAN = netip.MustParseAddr("10.88.0.1")
)

// reaches reports whether host opens a TCP connection to dst.
func (f *fixture) reaches(host string, dst netip.AddrPort) bool {
	f.t.Helper()
	err := f.lab.Host(host).TCPConnect(f.ctx, dst, 1500*time.Millisecond)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, syscall.ECONNREFUSED) {
		f.t.Logf("%s -> %v: %v", host, dst, err)
	}
	return err == nil
}

// serveUDP runs a UDP echo server on host:port and returns it.
func (f *fixture) serveUDP(host string, port int) *lab.Server {
	f.t.Helper()
	s, err := f.lab.Host(host).ServeUDP(f.ctx, port)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// udpFrame builds an Ethernet frame holding one IPv4 UDP datagram, with
// whatever addresses the sender chooses: what an attacker on the bridge
// can put on the wire.
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	frame := make([]byte, 14+20+8+len(payload))
	copy(frame[0:6], dstMAC)
	copy(frame[6:12], srcMAC)
	binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_IP)
	ip := frame[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17 // IPv4, 20-byte header; TTL; UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := frame[34:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload))) // checksum 0: none (IPv4)
	copy(udp[8:], payload)
	return frame
}

// sendFrame writes frame as is out of host's eth0, through a packet socket.
func (f *fixture) sendFrame(host string, frame []byte) {
	f.t.Helper()
	err := f.lab.Host(host).Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName(lab.HostIface)
		if err != nil {
			return err
		}
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)})
	})
	if err != nil {
		f.t.Fatalf("sending a raw frame from %s: %v", host, err)
	}
}

// htons turns a number into network byte order in memory, as socket
// addresses want it.
func htons(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }

// received waits up to a second for s to count more than before.
func received(s *lab.Server, before int64) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s.Accepted() > before {
			return true
		}
	}
	return false
}

// gatewayPolicy is the demo policy with the IoT zone allowed to reach one
// port of the gateway: to = "gateway" opens exactly that.
func gatewayPolicy(t *testing.T) string {
	return labPolicy(t, func(s string) string {
		return s + `
[[segment]]
from = "iot"
to = "gateway"
action = "micro"

[[allow]]
name = "plugs-to-gateway-api"
from = "group:plugs"
to = "gateway"
services = ["tcp/8080"]
`
	})
}

// TestKernelGatewayJudged: from the IoT bridge, a service listening on the
// gateway (SSH would be one) is unreachable on any of the gateway's
// addresses, while DHCP (from 0.0.0.0 to 255.255.255.255), DNS and ping to
// the gateway keep working, a `to = "gateway"` rule opens its port only,
// and the replies to the gateway's own connections come back.
func TestKernelGatewayJudged(t *testing.T) {
	f := newFixture(t)
	f.echo("gw", 22)
	f.echo("gw", 8080)
	f.echo("wan", 8443)
	f.echo("plug2", 80)
	dns := f.serveUDP("gw", 53)
	dhcp := f.serveUDP("gw", 67)
	plug1 := f.lab.Host("plug1")
	dhcpDiscover := udpFrame(plug1.MAC, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), 68, 67, []byte("DHCPDISCOVER"))

	// Control: without picoseg the plug reaches every service on the
	// gateway, so the denials below are picoseg's.
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(gatewayIoT, 22), netip.AddrPortFrom(gatewayLAN, 22)} {
		if !f.reaches("plug1", dst) {
			t.Fatalf("lab without picoseg: plug1 cannot reach the gateway's %v", dst)
		}
	}
	before := dhcp.Accepted()
	f.sendFrame("plug1", dhcpDiscover)
	if !received(dhcp, before) {
		t.Fatal("lab without picoseg: a DHCP discover from 0.0.0.0 does not reach the gateway's port 67")
	}

	f.start(gatewayPolicy(t))
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(gatewayIoT, 22), netip.AddrPortFrom(gatewayLAN, 22)} {
		if f.reaches("plug1", dst) {
			t.Errorf("plug1 reached the gateway's %v: no rule allows it", dst)
		}
	}
	if f.reaches("cam", netip.AddrPortFrom(gatewayIoT, 8080)) {
		t.Error("the camera reached the gateway's tcp/8080: the rule is for the plugs")
	}
	if !f.reaches("plug1", netip.AddrPortFrom(gatewayIoT, 8080)) {
		t.Error(`plug1 could not reach the gateway's tcp/8080, which a to = "gateway" rule allows`)
	}
	if !f.reaches("lan", netip.AddrPortFrom(gatewayLAN, 22)) {
		t.Error("the admin could not reach the gateway's SSH, which admin-ssh-gateway allows")
	}

	// The services a network cannot live without.
	if _, err := plug1.UDPProbe(f.ctx, netip.AddrPortFrom(gatewayIoT, 53), []byte("query"), 1500*time.Millisecond); err != nil {
		t.Errorf("DNS to the gateway: %v", err)
	}
	if dns.Accepted() == 0 {
		t.Error("the gateway's resolver heard nothing")
	}
	before = dhcp.Accepted()
	f.sendFrame("plug1", dhcpDiscover)
	if !received(dhcp, before) {
		t.Error("a DHCP discover from 0.0.0.0 to 255.255.255.255 no longer reaches the gateway")
	}
	if err := plug1.Ping(f.ctx, gatewayIoT, 2); err != nil {
		t.Errorf("ping to the gateway: %v", err)
	}

	// The gateway's own connections, out to the internet and in to a
	// device: their replies arrive on the input hook and pass.
	for _, dst := range []string{"198.51.100.2:8443", "10.77.0.22:80"} {
		c, err := f.lab.Gateway.Dial(f.ctx, "tcp", dst)
		if err != nil {
			t.Errorf("the gateway's own connection to %s: %v", dst, err)
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := []byte("ping")
		if _, err := c.Write(buf); err == nil {
			_, err = c.Read(buf)
		}
		if err != nil {
			t.Errorf("the reply to the gateway's own connection to %s: %v", dst, err)
		}
		c.Close()
	}

	var flows []daemon.FlowView
	if err := daemon.Query(f.sock, "flows", &flows); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, fl := range flows {
		seen = append(seen, fl.SrcDevice+" "+fl.Dst+" "+fl.Verdict+" "+fl.Layer+" "+fl.Rule)
	}
	joined := strings.Join(seen, "\n")
	for _, want := range []string{"plug1 10.77.0.1:22 drop micro", "plug1 10.88.0.1:22 drop micro", "plug1 10.77.0.1:53 accept micro default:dns", "plug1 10.77.0.1:8080 accept pico plugs-to-gateway-api"} {
		if !strings.Contains(joined, want) {
			t.Errorf("flows lack %q:\n%s", want, joined)
		}
	}
}

// TestKernelSpoofedZone: a host on the IoT bridge with a MAC the policy
// does not know sends UDP from the address of the admin PC, a LAN device
// known by address only, to the hub, on a port the admin may use. It must
// not reach the hub: that address belongs to the LAN, and this packet
// came in on the IoT bridge.
func TestKernelSpoofedZone(t *testing.T) {
	f := newFixture(t)
	hub := f.lab.Host("hub")
	target := f.serveUDP("hub", 5683)
	spoofed := udpFrame(net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}, hub.MAC,
		f.lab.Host("lan").Addr, hub.Addr, 40000, 5683, []byte("set relay on"))

	// Control: without picoseg the bridge delivers the forged datagram.
	before := target.Accepted()
	f.sendFrame("plug2", spoofed)
	if !received(target, before) {
		t.Fatal("lab without picoseg: the forged datagram does not reach the hub")
	}

	alerts := f.dir + "/alerts.jsonl"
	f.start(labPolicy(t, func(s string) string {
		s = strings.Replace(s, `services = ["tcp/80", "icmp"]`, `services = ["tcp/80", "udp/5683", "icmp"]`, 1)
		return s + "\n[[alert.sink]]\ntype = \"jsonl\"\npath = \"" + alerts + "\"\n"
	}))
	// The admin's own datagram still passes: the rule is real.
	if _, err := f.lab.Host("lan").UDPProbe(f.ctx, netip.AddrPortFrom(hub.Addr, 5683), []byte("hello"), 1500*time.Millisecond); err != nil {
		t.Fatalf("the admin's own datagram to the hub: %v", err)
	}
	before = target.Accepted()
	f.sendFrame("plug2", spoofed)
	if received(target, before) {
		t.Fatal("a datagram from an unknown MAC on the IoT bridge, sent from the LAN admin's address, reached the hub")
	}
	var text string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(alerts)
		if text = string(b); strings.Contains(text, `"spoofed_address"`) {
			break
		}
	}
	if !strings.Contains(text, `"spoofed_address"`) || !strings.Contains(text, `"identify"`) {
		t.Errorf("no spoofed_address alert from the identify layer:\n%s", text)
	}
}
