//go:build linux

package conntrack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestRequestEncoding(t *testing.T) {
	f := Flow{Proto: unix.IPPROTO_TCP, Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("198.51.100.2"), SrcPort: 0x1234, DstPort: 8080}
	req, err := request(f, ipctnlMsgCtNew, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(ctaMark, 0x00020000)
		ae.Uint32(ctaMarkMask, 0x00ff0000)
	})
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8) || req.Header.Flags != netlink.Request|netlink.Acknowledge {
		t.Errorf("header = %+v", req.Header)
	}
	// Attribute headers (length, type) are in host byte order, as netlink
	// is; the values inside are in network order. On a big-endian router
	// (mips) the headers read the other way round.
	nla := func(length, typ uint16, value ...byte) []byte {
		return append(binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, length), typ), value...)
	}
	const nested = 0x8000
	want := slices.Concat(
		[]byte{unix.AF_INET, 0, 0, 0},           // nfgenmsg
		nla(0x34, nested|1),                     // CTA_TUPLE_ORIG
		nla(0x14, nested|1),                     // CTA_TUPLE_IP
		nla(0x08, 1, 192, 0, 2, 2),              // CTA_IP_V4_SRC
		nla(0x08, 2, 198, 51, 100, 2),           // CTA_IP_V4_DST
		nla(0x1c, nested|2),                     // CTA_TUPLE_PROTO
		nla(0x05, 1, 6, 0, 0, 0),                // CTA_PROTO_NUM
		nla(0x06, 2, 0x12, 0x34, 0, 0),          // CTA_PROTO_SRC_PORT
		nla(0x06, 3, 0x1f, 0x90, 0, 0),          // CTA_PROTO_DST_PORT
		nla(0x08, 8, 0x00, 0x02, 0x00, 0x00),    // CTA_MARK
		nla(0x08, 0x15, 0x00, 0xff, 0x00, 0x00), // CTA_MARK_MASK
	)
	if !bytes.Equal(req.Data, want) {
		t.Fatalf("message:\n got %x\nwant %x", req.Data, want)
	}

	icmp6 := Flow{Proto: unix.IPPROTO_ICMPV6, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), SrcPort: 77, DstPort: 128 << 8}
	req, err = request(icmp6, ipctnlMsgCtDelete, func(*netlink.AttributeEncoder) {})
	if err != nil {
		t.Fatal(err)
	}
	if req.Data[0] != unix.AF_INET6 || !bytes.Contains(req.Data, nla(0x06, ctaProtoICMPv6ID, 0, 77)) ||
		!bytes.Contains(req.Data, nla(0x05, ctaProtoICMPv6Type, 128)) {
		t.Fatalf("ICMPv6 message: %x", req.Data)
	}
}

// TestKernelFlows makes a TCP and an ICMP flow between two namespaces and
// lists, re-marks and deletes them in the server's conntrack table.
func TestKernelFlows(t *testing.T) {
	client, server := clientServer(t, "picoseg-ct")
	// Conntrack only tracks in a namespace whose rules need it.
	server.Run(t, "nft", "add table inet track; add chain inet track in { type filter hook input priority 0; ct state established counter; }")

	server.Listen(t, "tcp4", "192.0.2.2:8080")
	conn := client.Dial(t, "tcp4", "192.0.2.2:8080")
	client.Do(t, func() { sendEcho(t, "192.0.2.2") })

	c := openIn(t, server)

	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	find := func(proto uint8) (Flow, bool) {
		t.Helper()
		flows, err := c.Flows(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			if f.Proto == proto && (proto != unix.IPPROTO_TCP || f.SrcPort == local.Port()) {
				return f, true
			}
		}
		return Flow{}, false
	}
	tcp, ok := find(unix.IPPROTO_TCP)
	if !ok {
		t.Fatal("TCP flow not in the conntrack table")
	}
	if tcp.Src != netip.MustParseAddr("192.0.2.1") || tcp.Dst != netip.MustParseAddr("192.0.2.2") || tcp.DstPort != 8080 || tcp.ID == 0 {
		t.Fatalf("TCP flow = %v", tcp)
	}

	// Foreign bits (mwan3 0x3f00) survive picoseg's changes.
	if err := c.SetMark(tcp, 0x3f00, 0x3f00); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMark(tcp, 0x00020000, 0x00ff0000); err != nil {
		t.Fatal(err)
	}
	if got, _ := find(unix.IPPROTO_TCP); got.Mark != 0x00023f00 {
		t.Fatalf("mark = %#08x, want 0x00023f00", got.Mark)
	}

	icmp, ok := find(unix.IPPROTO_ICMP)
	if !ok {
		t.Fatal("ICMP flow not in the conntrack table")
	}
	if icmp.DstPort != 8<<8 || icmp.SrcPort != 77 { // echo request, code 0, id 77
		t.Errorf("ICMP flow = %v, want type 8 in DstPort", icmp)
	}
	if err := c.SetMark(icmp, 0x00010000, 0x00ff0000); err != nil {
		t.Fatalf("mark ICMP flow: %v", err)
	}

	n, err := c.ClearMarks(0x00ff0000)
	if err != nil || n != 2 {
		t.Fatalf("ClearMarks = %d, %v; want 2", n, err)
	}
	if got, _ := find(unix.IPPROTO_TCP); got.Mark != 0x3f00 {
		t.Fatalf("mark after ClearMarks = %#08x, want 0x3f00", got.Mark)
	}

	stale := tcp
	stale.ID++
	if err := c.Delete(stale); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete with another id = %v, want ErrNotFound", err)
	}
	if err := c.Delete(tcp); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(unix.IPPROTO_TCP); ok {
		t.Fatal("TCP flow still tracked after Delete")
	}
	if err := c.Delete(tcp); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
}

// sendEcho sends one ICMP echo request with id 77 from a raw socket.
func sendEcho(t *testing.T, dst string) {
	t.Helper()
	pc, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		t.Error(err)
		return
	}
	defer pc.Close()
	msg := []byte{8, 0, 0, 0, 0, 77, 0, 1} // echo request, id 77, seq 1
	sum := 0
	for i := 0; i < len(msg); i += 2 {
		sum += int(msg[i])<<8 | int(msg[i+1])
	}
	sum = sum>>16 + sum&0xffff
	sum = ^(sum + sum>>16) & 0xffff
	msg[2], msg[3] = byte(sum>>8), byte(sum)
	if _, err := pc.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
		t.Error(err)
	}
}

// TestKernelLargeDump lists a table of thousands of entries, which the
// kernel sends over many reads.
func TestKernelLargeDump(t *testing.T) {
	client, server := clientServer(t, "picoseg-ct")
	server.Run(t, "nft", "add table inet track; add chain inet track in { type filter hook input priority 0; ct state new counter; }")
	const flows = 3000
	client.Do(t, func() {
		for i := 0; i < flows; i++ {
			c, err := net.Dial("udp4", fmt.Sprintf("192.0.2.2:%d", 20000+i))
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("x"))
			c.Close()
		}
	})
	c := openIn(t, server)
	seen := map[uint16]bool{}
	if err := c.Each(context.Background(), func(f Flow) error {
		if f.Proto == unix.IPPROTO_UDP && f.DstPort >= 20000 && f.Src == netip.MustParseAddr("192.0.2.1") {
			seen[f.DstPort] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != flows {
		t.Fatalf("dump listed %d of %d flows", len(seen), flows)
	}
	// A dump stopped early leaves the connection clean for the next one.
	stop := errors.New("stop")
	if err := c.Each(context.Background(), func(Flow) error { return stop }); err != stop {
		t.Fatalf("stopped dump: %v", err)
	}
	all, err := c.Flows(context.Background())
	if err != nil || len(all) < flows {
		t.Fatalf("dump after a stopped one: %d flows, %v", len(all), err)
	}
}
