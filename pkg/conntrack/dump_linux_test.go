//go:build linux

package conntrack

import (
	"encoding/binary"
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
