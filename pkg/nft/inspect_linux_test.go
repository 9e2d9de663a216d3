//go:build linux

package nft

import (
	"bytes"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// segment is a packet as the bare-ACK rules see it.
type segment struct {
	family byte // NFPROTO_IPV4 or NFPROTO_IPV6
	dir    byte // conntrack direction
	nh, th []byte
}

// tcpv4 builds an IPv4 header of ihl words and a TCP header of doff words
// with flags, followed by payload bytes of data: total length as on the wire.
func tcpv4(ihl, doff, data int, flags byte) segment {
	nh := make([]byte, 4*ihl)
	nh[0] = 0x40 | byte(ihl)
	total := 4*ihl + 4*doff + data
	nh[2], nh[3] = byte(total>>8), byte(total)
	nh[9] = unix.IPPROTO_TCP
	return segment{family: unix.NFPROTO_IPV4, nh: nh, th: tcpHeader(doff, data, flags)}
}

// tcpv6 builds an IPv6 header whose next header is next (TCP, or an
// extension header) and a TCP header of doff words with flags.
func tcpv6(next byte, doff, data int, flags byte) segment {
	nh := make([]byte, 40)
	nh[0] = 0x60
	plen := 4*doff + data
	nh[4], nh[5], nh[6], nh[7] = byte(plen>>8), byte(plen), next, 64
	return segment{family: unix.NFPROTO_IPV6, nh: nh, th: tcpHeader(doff, data, flags)}
}

func tcpHeader(doff, data int, flags byte) []byte {
	th := make([]byte, 4*doff+data)
	th[12], th[13] = byte(doff<<4), flags
	return th
}

// accepts runs one bare-ACK rule's expressions over s, the way the kernel
// evaluates them: registers of four bytes, a load zeroing the rest of its
// last register, the lookup reading the key from consecutive registers.
func accepts(t *testing.T, r rule, elems []nftables.SetElement, s segment) bool {
	t.Helper()
	regs := map[uint32][]byte{}
	load := func(reg uint32, b []byte) {
		padded := make([]byte, (len(b)+3)/4*4)
		copy(padded, b)
		for i := 0; i < len(padded); i += 4 {
			regs[reg+uint32(i/4)] = padded[i : i+4]
		}
	}
	for _, e := range r.exprs {
		switch e := e.(type) {
		case *expr.Meta:
			switch e.Key {
			case expr.MetaKeyNFPROTO:
				load(e.Register, []byte{s.family})
			case expr.MetaKeyL4PROTO:
				load(e.Register, []byte{unix.IPPROTO_TCP})
			default:
				t.Fatalf("meta key %v", e.Key)
			}
		case *expr.Ct:
			if e.Key != expr.CtKeyDIRECTION {
				t.Fatalf("ct key %v", e.Key)
			}
			load(e.Register, []byte{s.dir})
		case *expr.Payload:
			src := s.nh
			if e.Base == expr.PayloadBaseTransportHeader {
				src = s.th
			}
			load(e.DestRegister, src[e.Offset:e.Offset+e.Len])
		case *expr.Bitwise:
			v := regs[e.SourceRegister]
			out := append([]byte{}, v...)
			for i := 0; i < int(e.Len); i++ {
				out[i] = v[i]&e.Mask[i] ^ e.Xor[i]
			}
			regs[e.DestRegister] = out
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq {
				t.Fatalf("cmp op %v", e.Op)
			}
			if !bytes.Equal(regs[e.Register][:len(e.Data)], e.Data) {
				return false
			}
		case *expr.Lookup:
			key := append(append([]byte{}, regs[e.SourceRegister]...), regs[e.SourceRegister+1]...)
			found := false
			for _, el := range elems {
				found = found || bytes.Equal(el.Key, key)
			}
			if !found {
				return false
			}
		case *expr.Verdict:
			return e.Kind == expr.VerdictAccept
		default:
			t.Fatalf("unexpected expression %T", e)
		}
	}
	return false
}

// The bare-ACK rules take a TCP segment from the opener with exactly no
// payload and nothing else: not a segment whose length is a bare ACK's
// with options but whose header is shorter (data behind it), not one with
// IP options or IPv6 extension headers, not an opening or an end.
func TestBareACKRules(t *testing.T) {
	sets := bareACKSets(&nftables.Table{Name: TableName})
	rules := inspectingRules()
	v4, v6 := rules[1], rules[2]
	const ack, fin, syn, rst, psh = 0x10, 0x01, 0x02, 0x04, 0x08
	reply := func(s segment) segment { s.dir = ctDirReply; return s }
	for _, tc := range []struct {
		name string
		seg  segment
		want bool
	}{
		{"v4 bare ACK", tcpv4(5, 5, 0, ack), true},
		{"v4 bare ACK with timestamps (52 bytes)", tcpv4(5, 8, 0, ack), true},
		{"v4 bare ACK with the longest options", tcpv4(5, 15, 0, ack), true},
		{"v4 12 bytes of data, no options (52 bytes)", tcpv4(5, 5, 12, ack|psh), false},
		{"v4 one byte of data", tcpv4(5, 5, 1, ack), false},
		{"v4 data behind options", tcpv4(5, 8, 4, ack), false},
		{"v4 with IP options, as long as a bare ACK with one option word", tcpv4(6, 5, 0, ack), false},
		{"v4 FIN", tcpv4(5, 5, 0, ack|fin), false},
		{"v4 SYN", tcpv4(5, 5, 0, syn), false},
		{"v4 RST", tcpv4(5, 5, 0, rst), false},
		{"v4 bare ACK from the responder (the reply rule's, not this)", reply(tcpv4(5, 5, 0, ack)), false},
		{"v6 bare ACK", tcpv6(unix.IPPROTO_TCP, 5, 0, ack), true},
		{"v6 bare ACK with timestamps", tcpv6(unix.IPPROTO_TCP, 8, 0, ack), true},
		{"v6 12 bytes of data, no options", tcpv6(unix.IPPROTO_TCP, 5, 12, ack), false},
		{"v6 behind a hop-by-hop header", tcpv6(0, 5, 0, ack), false},
		{"v6 FIN", tcpv6(unix.IPPROTO_TCP, 5, 0, ack|fin), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := accepts(t, v4, sets[0].elems, tc.seg) || accepts(t, v6, sets[1].elems, tc.seg)
			if got != tc.want {
				t.Errorf("accepted in the kernel = %v, want %v", got, tc.want)
			}
		})
	}
}
