//go:build linux

package conntrack

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// entry encodes a conntrack entry as a dump carries it: the attributes of
// one IPCTNL_MSG_CT_NEW message after its nfgenmsg.
func entry(t *testing.T, orig, reply Flow, mark, id uint32) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Nested(ctaTupleOrig, func(ae *netlink.AttributeEncoder) error { encodeTuple(ae, orig); return nil })
	ae.Nested(ctaTupleReply, func(ae *netlink.AttributeEncoder) error { encodeTuple(ae, reply); return nil })
	ae.Uint32(ctaMark, mark)
	ae.Uint32(ctaID, id)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A port-forwarded entry yields its original tuple (what SetMark and
// Delete address) and its reply source (where the flow really goes).
func TestParseFlowReadsTheReplyTuple(t *testing.T) {
	a := netip.MustParseAddr
	orig := Flow{Proto: unix.IPPROTO_TCP, Src: a("198.51.100.2"), SrcPort: 40000, Dst: a("198.51.100.1"), DstPort: 8080}
	reply := Flow{Proto: unix.IPPROTO_TCP, Src: a("10.88.0.10"), SrcPort: 80, Dst: a("198.51.100.2"), DstPort: 40000}
	var f Flow
	if !parseFlow(entry(t, orig, reply, 0x20000, 9), &f) {
		t.Fatal("entry not parsed")
	}
	want := orig
	want.ReplySrc, want.ReplySrcPort, want.Mark, want.ID = a("10.88.0.10"), 80, 0x20000, 9
	if f != want {
		t.Fatalf("parsed %+v\nwant   %+v", f, want)
	}
	if _, dst, dport := f.Judged(); dst != a("10.88.0.10") || dport != 80 {
		t.Fatalf("judged as -> %v:%d, want the forward's target 10.88.0.10:80", dst, dport)
	}

	// A reply of another family is garbage, not a destination.
	reply6 := Flow{Proto: unix.IPPROTO_TCP, Src: a("2001:db8::1"), SrcPort: 80, Dst: a("2001:db8::2"), DstPort: 40000}
	f = Flow{}
	if !parseFlow(entry(t, orig, reply6, 0, 1), &f) || f.ReplySrc.IsValid() {
		t.Fatalf("mixed-family entry: %+v", f)
	}
}

// TestKernelDNATReplyTuple forwards a port with a DNAT rule and finds the
// forward's target in the dumped flow's reply tuple.
func TestKernelDNATReplyTuple(t *testing.T) {
	client, server := clientServer(t, "picoseg-ct")
	server.Run(t, "nft", "add table ip nat; add chain ip nat pre { type nat hook prerouting priority dstnat; }; add rule ip nat pre tcp dport 8081 dnat to 192.0.2.2:8080")

	server.Listen(t, "tcp4", "192.0.2.2:8080")
	conn := client.Dial(t, "tcp4", "192.0.2.2:8081")

	c := openIn(t, server)
	flows, err := c.Flows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	for _, f := range flows {
		if f.Proto != unix.IPPROTO_TCP || f.SrcPort != local.Port() {
			continue
		}
		if f.DstPort != 8081 || f.ReplySrc != netip.MustParseAddr("192.0.2.2") || f.ReplySrcPort != 8080 {
			t.Fatalf("forwarded flow = %v, reply source %v:%d; want the original port 8081 and the reply from :8080", f, f.ReplySrc, f.ReplySrcPort)
		}
		if _, _, dport := f.Judged(); dport != 8080 {
			t.Fatalf("judged port %d, want 8080 (after the DNAT)", dport)
		}
		// Marks and deletes still address the original tuple.
		if err := c.SetMark(f, 0x00020000, 0x00ff0000); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("forwarded flow not in the dump: %v", flows)
}
