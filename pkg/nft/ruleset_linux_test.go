//go:build linux

package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recorder is an nftables connection that records the netlink messages of
// a transaction instead of sending them to the kernel, and acknowledges
// each of them.
type recorder struct {
	msgs []netlink.Message
}

func (r *recorder) conn(t *testing.T) *Conn {
	t.Helper()
	nl, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		r.msgs = append(r.msgs, req...)
		acks := make([]netlink.Message, 0, len(req))
		for _, m := range req {
			if m.Header.Flags&netlink.Acknowledge != 0 {
				acks = append(acks, netlink.Message{
					Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID},
					Data:   []byte{0, 0, 0, 0},
				})
			}
		}
		return acks, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return NewConn(nl)
}

// message is a decoded nf_tables request: its type and, for rules, the
// chain and the raw expressions.
type message struct {
	kind  string
	name  string // table, chain, set or object name
	chain string
	exprs [][]byte
}

func (m message) String() string {
	if m.kind == "rule" {
		return fmt.Sprintf("rule %s (%d exprs)", m.chain, len(m.exprs))
	}
	return m.kind + " " + m.name
}

func decode(t *testing.T, msgs []netlink.Message) []message {
	t.Helper()
	var out []message
	for _, nm := range msgs {
		typ := uint16(nm.Header.Type)
		if typ>>8 != unix.NFNL_SUBSYS_NFTABLES {
			continue // batch begin and end
		}
		kinds := map[uint16]string{
			unix.NFT_MSG_NEWTABLE: "add table", unix.NFT_MSG_DELTABLE: "del table",
			unix.NFT_MSG_NEWCHAIN: "add chain", unix.NFT_MSG_NEWRULE: "rule",
			unix.NFT_MSG_NEWSET: "add set", unix.NFT_MSG_NEWOBJ: "add obj",
		}
		m := message{kind: kinds[typ&0xff]}
		if m.kind == "" {
			m.kind = fmt.Sprintf("msg %d", typ&0xff)
		}
		ad, err := netlink.NewAttributeDecoder(nm.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		for ad.Next() {
			switch {
			case m.kind == "rule" && ad.Type() == unix.NFTA_RULE_CHAIN:
				m.chain = ad.String()
			case m.kind == "rule" && ad.Type() == unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						m.exprs = append(m.exprs, nad.Bytes())
					}
					return nil
				})
			case m.kind != "rule" && ad.Type() == 1 && m.kind != "add obj" && m.kind != "add set":
				// NFTA_TABLE_NAME, and NFTA_CHAIN_TABLE for chains.
				if m.kind == "add chain" {
					continue
				}
				m.name = ad.String()
			case m.kind == "add chain" && ad.Type() == unix.NFTA_CHAIN_NAME,
				m.kind == "add set" && ad.Type() == unix.NFTA_SET_NAME,
				m.kind == "add obj" && ad.Type() == unix.NFTA_OBJ_NAME:
				m.name = ad.String()
			}
		}
		if err := ad.Err(); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func rulesOf(msgs []message, chain string) [][][]byte {
	var out [][][]byte
	for _, m := range msgs {
		if m.kind == "rule" && m.chain == chain {
			out = append(out, m.exprs)
		}
	}
	return out
}

// diffExprs compares recorded expressions with the wanted ones, rule by
// rule, naming the first differing expression.
func diffExprs(t *testing.T, chain string, got [][][]byte, want [][]expr.Any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("chain %s: %d rules, want %d", chain, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Errorf("chain %s rule %d: %d expressions, want %d", chain, i, len(got[i]), len(want[i]))
			continue
		}
		for j, w := range want[i] {
			wb, err := expr.Marshal(byte(nftables.TableFamilyINet), w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[i][j], wb) {
				t.Errorf("chain %s rule %d expression %d (%T):\n got %x\nwant %x", chain, i, j, w, got[i][j], wb)
			}
		}
	}
}

func le32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// ctMark and metaMark load the field 0x00ff0000 into register 1.
var (
	ctMark = []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0x00ff0000), Xor: le32(0)},
	}
	metaMark = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0x00ff0000), Xor: le32(0)},
	}
)

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func wantForward(queue expr.Any) [][]expr.Any {
	return [][]expr.Any{
		// meta mark set meta mark & 0xff00ffff
		{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff00ffff), Xor: le32(0)},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
		},
		// ct state invalid counter name "invalid_dropped" drop
		{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(1), Xor: le32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
			&expr.Objref{Type: 1, Name: "invalid_dropped"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
		// ct status & (expected|confirmed) == expected ct mark set ct mark & 0xff00ffff
		{
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(9), Xor: le32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(1)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff00ffff), Xor: le32(0)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		},
		// ... jump newflow, then ... queue
		join(wantSYNMatch(), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "newflow"}}),
		wantSYNRule(queue),
		// meta l4proto icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 jump newflow, then ... queue
		join(wantErrorMatch(unix.IPPROTO_ICMP), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "newflow"}}),
		join(wantErrorMatch(unix.IPPROTO_ICMP), []expr.Any{&expr.Objref{Type: 1, Name: "queued"}, queue}),
		join(wantErrorMatch(unix.IPPROTO_ICMPV6), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "newflow"}}),
		join(wantErrorMatch(unix.IPPROTO_ICMPV6), []expr.Any{&expr.Objref{Type: 1, Name: "queued"}, queue}),
		// ct mark & 0x00ff0000 == 0x00fe0000 jump inspecting
		join(ctMark, []expr.Any{
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00fe0000)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "inspecting"},
		}),
		// ct mark & 0x00ff0000 >= 0x00020000 ct mark & 0x00ff0000 < 0x00030000
		// counter name "fastpath" jump accepted: class 0 only, no Tripped
		join(ctMark, []expr.Any{
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0x00, 0x02, 0x00, 0x00}},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: []byte{0x00, 0x03, 0x00, 0x00}},
			&expr.Objref{Type: 1, Name: "fastpath"},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "accepted"},
		}),
		// ct mark & 0x00ff0000 == 0x00010000 counter name "flow_dropped" drop
		join(ctMark, []expr.Any{
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00010000)},
			&expr.Objref{Type: 1, Name: "flow_dropped"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}),
		// ct state new jump newflow
		{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(8), Xor: le32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "newflow"},
		},
		{&expr.Objref{Type: 1, Name: "queued"}, queue},
	}
}

// wantNewFlow is the newflow chain for testOptions (50/s, burst 100).
func wantNewFlow() [][]expr.Any {
	limit := func() *expr.Limit {
		return &expr.Limit{Type: expr.LimitTypePkts, Rate: 50, Over: true, Unit: expr.LimitTimeSecond, Burst: 100}
	}
	ether := func(op expr.CmpOp) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
			&expr.Cmp{Op: op, Register: 1, Data: []byte{1, 0}},
		}
	}
	key := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIF, Register: 8},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
	}
	return [][]expr.Any{
		// meta iiftype ether add @guard_mac { iif . ether saddr limit rate over 50/second burst 100 packets } counter name "guard_dropped" drop
		join(ether(expr.CmpOpEq), key, []expr.Any{
			&expr.Dynset{SrcRegKey: 8, SetName: "guard_mac", SetID: 1, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{limit()}},
			&expr.Objref{Type: 1, Name: "guard_dropped"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}),
		// meta iiftype ether iif . ether saddr != @guard_mac limit rate over 50/second burst 100 packets counter name "guard_full" drop
		join(ether(expr.CmpOpEq), key, []expr.Any{
			&expr.Lookup{SourceRegister: 8, SetName: "guard_mac", SetID: 1, Invert: true},
			limit(),
			&expr.Objref{Type: 1, Name: "guard_full"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}),
		// meta iiftype != ether add @guard_if { iif limit rate over 50/second burst 100 packets } counter name "guard_dropped" drop
		join(ether(expr.CmpOpNeq), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Dynset{SrcRegKey: 1, SetName: "guard_if", SetID: 2, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{limit()}},
			&expr.Objref{Type: 1, Name: "guard_dropped"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}),
		// limit rate over 500/second burst 1000 packets counter name "global_dropped" drop
		{
			&expr.Limit{Type: expr.LimitTypePkts, Rate: 500, Over: true, Unit: expr.LimitTimeSecond, Burst: 1000},
			&expr.Objref{Type: 1, Name: "global_dropped"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
	}
}

func wantSYNMatch() []expr.Any {
	return join([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
	}, ctMark, []expr.Any{
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0x00, 0x02, 0x00, 0x00}},
	})
}

// wantErrorMatch matches an ICMP or ICMPv6 error (conntrack state
// related) about a flow whose conntrack mark says accepted: it is queued
// before the fast path, so that the engine checks who sends it.
func wantErrorMatch(proto byte) []expr.Any {
	return join([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(4), Xor: le32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
	}, ctMark, []expr.Any{
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0x00, 0x02, 0x00, 0x00}},
	})
}

// wantSYNRule queues a SYN without ACK on a flow whose conntrack mark says
// accepted, instead of fast-pathing it.
func wantSYNRule(queue expr.Any) []expr.Any {
	return join(wantSYNMatch(), []expr.Any{&expr.Objref{Type: 1, Name: "queued"}, queue})
}

var testOptions = Options{QueueBase: 100, Queues: 4, NewFlowRate: 50, NewFlowBurst: 100,
	GlobalNewFlowRate: 500, GlobalNewFlowBurst: 1000, Marks: Marks{Mask: 0x00ff0000}}

func TestInstallMessages(t *testing.T) {
	xtInfo := func(flags uint16) *xt.Unknown {
		b := make([]byte, 8)
		binary.NativeEndian.PutUint16(b[0:], 100)
		binary.NativeEndian.PutUint16(b[2:], 4)
		binary.NativeEndian.PutUint16(b[4:], flags)
		u := xt.Unknown(b)
		return &u
	}
	for _, tc := range []struct {
		name       string
		method     QueueMethod
		failClosed bool
		queue      expr.Any
	}{
		{"native bypass", QueueNative, false, &expr.Queue{Num: 100, Total: 4, Flag: expr.QueueFlagBypass}},
		{"native fail-closed", QueueNative, true, &expr.Queue{Num: 100, Total: 4}},
		{"xtables bypass", QueueXtables, false, &expr.Target{Name: "NFQUEUE", Rev: 3, Info: xtInfo(0x1)}},
		{"xtables fail-closed", QueueXtables, true, &expr.Target{Name: "NFQUEUE", Rev: 3, Info: xtInfo(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			opts := testOptions
			opts.FailClosed = tc.failClosed
			if _, err := Install(rec.conn(t), opts, tc.method); err != nil {
				t.Fatal(err)
			}
			msgs := decode(t, rec.msgs)

			var order []string
			for _, m := range msgs {
				if m.kind != "rule" {
					order = append(order, m.String())
				}
			}
			wantOrder := []string{
				"add table picoseg", "del table picoseg", "add table picoseg",
				"add obj fastpath", "add obj flow_dropped", "add obj guard_dropped", "add obj queued", "add obj verdict_dropped", "add obj tripped",
				"add obj guard_full", "add obj global_dropped", "add obj invalid_dropped", "add obj rpf_dropped",
				"add chain forward", "add chain accepted", "add chain setmark", "add chain verdict", "add chain newflow",
				"add set bare_ack4", "msg 12 picoseg", "add set bare_ack6", "msg 12 picoseg", "add chain inspecting",
				"add set guard_mac", "add set guard_if",
				"add chain input", "add chain input_verdict",
				// No bridges: a stale bridge table is deleted, none added.
				"add table picoseg", "del table picoseg",
			}
			if diff := cmp.Diff(wantOrder, order); diff != "" {
				t.Errorf("transaction (-want +got):\n%s", diff)
			}

			diffExprs(t, "forward", rulesOf(msgs, "forward"), wantForward(tc.queue))
			diffExprs(t, "newflow", rulesOf(msgs, "newflow"), wantNewFlow())
			diffExprs(t, "accepted", rulesOf(msgs, "accepted"), [][]expr.Any{{&expr.Verdict{Kind: expr.VerdictAccept}}})
			diffExprs(t, "verdict", rulesOf(msgs, "verdict"), [][]expr.Any{
				// meta mark & 0x00ff0000 == 0x00ff0000 meta mark set meta mark & 0xff00ffff accept
				join(metaMark, []expr.Any{
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00ff0000)},
					&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff00ffff), Xor: le32(0)},
					&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
					&expr.Verdict{Kind: expr.VerdictAccept},
				}),
				// meta mark & 0x00ff0000 == 0x00fe0000 ct direction reply meta mark set meta mark & 0xff00ffff accept
				join(metaMark, []expr.Any{
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00fe0000)},
					&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
					&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff00ffff), Xor: le32(0)},
					&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
					&expr.Verdict{Kind: expr.VerdictAccept},
				}),
				// meta mark & 0x00ff0000 != 0 jump setmark
				join(metaMark, []expr.Any{
					&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
					&expr.Verdict{Kind: expr.VerdictJump, Chain: "setmark"},
				}),
				// meta mark & 0x00ff0000 == 0x00010000 counter name "verdict_dropped" drop
				join(metaMark, []expr.Any{
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00010000)},
					&expr.Objref{Type: 1, Name: "verdict_dropped"},
					&expr.Verdict{Kind: expr.VerdictDrop},
				}),
			})
			if n := len(rulesOf(msgs, "setmark")); n != 1+8 {
				t.Errorf("setmark has %d rules, want 9 (clear + one per mask bit)", n)
			}
		})
	}
}

// A pico class with a byte bound gets a kernel check before the accepted
// chain's accept: over the bound, the packet is marked Tripped and queued.
func TestInstallClassRules(t *testing.T) {
	for _, tc := range []struct {
		method QueueMethod
		queue  expr.Any
	}{
		{QueueNative, &expr.Queue{Num: 100, Total: 4, Flag: expr.QueueFlagBypass}},
		{QueueXtables, nil},
	} {
		t.Run(tc.method.String(), func(t *testing.T) {
			var rec recorder
			opts := testOptions
			opts.Classes = []Class{{}, {Bytes: 5_000_000}}
			if _, err := Install(rec.conn(t), opts, tc.method); err != nil {
				t.Fatal(err)
			}
			msgs := decode(t, rec.msgs)
			diffExprs(t, "accepted", rulesOf(msgs, "accepted"), [][]expr.Any{
				{
					&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0x00ff0000), Xor: le32(0)},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0x00030000)}, // class 1
					&expr.Verdict{Kind: expr.VerdictJump, Chain: "class_1"},
				},
				{&expr.Verdict{Kind: expr.VerdictAccept}},
			})
			got := rulesOf(msgs, "class_1")
			if len(got) != 1 {
				t.Fatalf("class chain has %d rules, want the byte check", len(got))
			}
			want := []expr.Any{
				&expr.Ct{Key: expr.CtKeyBYTES, Register: 1},
				&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
				&expr.Cmp{Op: expr.CmpOpGt, Register: 1, Data: []byte{0, 0, 0, 0, 0, 0x4c, 0x4b, 0x40}},
				&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff00ffff), Xor: le32(0x00ff0000)},
				&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
				&expr.Objref{Type: 1, Name: "tripped"},
			}
			if tc.queue != nil {
				want = append(want, tc.queue)
				diffExprs(t, "class_1", got, [][]expr.Any{want})
			} else if len(got[0]) != len(want)+1 {
				t.Errorf("xtables class rule has %d expressions, want %d", len(got[0]), len(want)+1)
			}
		})
	}
}

func TestInstallSetMarkRules(t *testing.T) {
	var rec recorder
	opts := Options{Queues: 1, Marks: Marks{Mask: 0x70}}
	if _, err := Install(rec.conn(t), opts, QueueXtables); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	setBit := func(bit uint32) []expr.Any {
		// meta mark & bit != 0 ct mark set ct mark | bit
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(bit), Xor: le32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(^bit), Xor: le32(bit)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		}
	}
	diffExprs(t, "setmark", rulesOf(msgs, "setmark"), [][]expr.Any{
		// ct mark set ct mark & 0xffffff8f
		{
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xffffff8f), Xor: le32(0)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		},
		setBit(0x10),
		setBit(0x20),
		setBit(0x40),
	})
	// Without a rate there is no guard: no guard sets and no guard rules.
	for _, m := range msgs {
		if m.kind == "add set" && m.name != setBareACK4 && m.name != setBareACK6 {
			t.Errorf("unexpected %v", m)
		}
	}
	if n := len(rulesOf(msgs, "forward")); n != 10 {
		t.Errorf("forward has %d rules, want 10 (clear, invalid, syn, expected, icmp and icmpv6 errors, inspecting, fast path, flow dropped, queue)", n)
	}
}

func TestInstallRejectsBadOptions(t *testing.T) {
	var rec recorder
	for _, tc := range []struct {
		opts   Options
		method QueueMethod
		want   string
	}{
		{Options{Queues: 1, Marks: Marks{Mask: 0x0f0f}}, QueueNative, "not contiguous"},
		{Options{Queues: 0}, QueueNative, "at least 1"},
		{Options{Queues: 1}, 0, "unknown queue method"},
	} {
		_, err := Install(rec.conn(t), tc.opts, tc.method)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Install(%+v, %v) error = %v, want %q", tc.opts, tc.method, err, tc.want)
		}
	}
	if len(rec.msgs) != 0 {
		t.Errorf("rejected options still sent %d messages", len(rec.msgs))
	}
}

func TestRemoveMessages(t *testing.T) {
	var rec recorder
	if err := Remove(rec.conn(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range decode(t, rec.msgs) {
		got = append(got, m.String())
	}
	if diff := cmp.Diff([]string{"add table picoseg", "del table picoseg", "add table picoseg", "del table picoseg"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The reverse-path check comes right after the invalid drop, only for the
// listed interfaces: `iifname @rpf_ifaces fib saddr . iif oif 0 counter
// name "rpf_dropped" drop`.
func TestInstallReversePathRule(t *testing.T) {
	var rec recorder
	opts := Options{Queues: 1, ReversePathInterfaces: []string{"br-iot", "lan0"}}
	if _, err := Install(rec.conn(t), opts, QueueXtables); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	fwd := rulesOf(msgs, "forward")
	if len(fwd) < 3 {
		t.Fatalf("forward has %d rules", len(fwd))
	}
	diffExprs(t, "forward", fwd[2:3], [][]expr.Any{{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: "rpf_ifaces", SetID: setIDRPF},
		&expr.Fib{Register: 1, ResultOIF: true, FlagSADDR: true, FlagIIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(0)},
		&expr.Objref{Type: 1, Name: "rpf_dropped"},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	var sets []string
	for _, m := range msgs {
		if m.kind == "add set" {
			sets = append(sets, m.name)
		}
	}
	if diff := cmp.Diff([]string{"bare_ack4", "bare_ack6", "rpf_ifaces"}, sets); diff != "" {
		t.Errorf("sets (-want +got):\n%s", diff)
	}
}

// The fast path takes the classes the ruleset checks and nothing above
// them: not Tripped, not a value another program left in the field.
func TestClassesEnd(t *testing.T) {
	m := Marks{Mask: 0x000000f8} // values 0..31 in bits 3..7
	for _, tt := range []struct {
		classes []Class
		want    uint32
	}{
		{nil, 3 << 3},                       // class 0 alone
		{[]Class{{}, {Bytes: 5e6}}, 4 << 3}, // classes 0 and 1
		{make([]Class, 28), 30 << 3},        // every class: up to Inspecting, excluded
		{make([]Class, 40), 30 << 3},        // more than fit: still never Inspecting
	} {
		if got := classesEnd(Options{Marks: m, Classes: tt.classes}); got != tt.want {
			t.Errorf("%d classes: end %#x, want %#x", len(tt.classes), got, tt.want)
		}
		if end := classesEnd(Options{Marks: m, Classes: tt.classes}); end > m.Inspecting() {
			t.Errorf("%d classes: end %#x passes Inspecting %#x", len(tt.classes), end, m.Inspecting())
		}
	}
}
