//go:build linux

package nft

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The kernel's `meta day` and `meta hour` keys (enum nft_meta_keys in
// include/uapi/linux/netfilter/nf_tables.h, since Linux 5.4), which
// google/nftables and x/sys do not name.
const (
	metaKeyTimeDay  expr.MetaKey = 31 // NFT_META_TIME_DAY: u8, 0 Sunday
	metaKeyTimeHour expr.MetaKey = 32 // NFT_META_TIME_HOUR: u32, seconds of the UTC day
)

// classCounters names the counters the classes' checks use: only those of
// checks some class has, so a ruleset without them is as it was.
func classCounters(o Options) []string {
	var window, size bool
	for i := range o.Classes {
		window = window || o.Classes[i].HasWindow
		size = size || o.Classes[i].HasSize
	}
	var names []string
	if window {
		names = append(names, counterClassWindow)
	}
	if size {
		names = append(names, counterClassSize)
	}
	if len(rateClasses(o)) > 0 {
		names = append(names, counterClassRate)
	}
	return names
}

// classChain names the chain of class c's checks.
func classChain(c int) string { return fmt.Sprintf("class_%d", c) }

// addClassChains adds one chain per class with checks of fast-pathed
// packets, and to the accepted chain (which every fast-pathed packet
// enters) one jump per such class: `ct mark & mask == class-c jump
// class_c`; then the rules of the classes' new-flow rates. A packet that passes its
// class's checks returns and is accepted at the end of the accepted chain.
// One chain per class keeps the cost of a fast-pathed packet at one
// comparison per class, however many checks the other classes have.
func addClassChains(nl *nftables.Conn, t *nftables.Table, o Options, method QueueMethod, add func(*nftables.Chain, string, ...expr.Any)) {
	accepted := &nftables.Chain{Name: chainAccepted, Table: t}
	west := kernelWestOfUTC()
	for c := range o.Classes {
		cl := &o.Classes[c]
		if !cl.fastPathChecks() || c >= o.Marks.MaxClasses() {
			continue
		}
		chain := nl.AddChain(&nftables.Chain{Name: classChain(c), Table: t})
		for _, r := range classRules(cl, o, method, west) {
			add(chain, r.comment, r.exprs...)
		}
		add(accepted, "", concat(
			ctMarkField(o.Marks),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(o.Marks.Accepted(uint16(c)))},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: classChain(c)},
		)...)
	}
	// The rates: new flows are checked in their chain; verdicts record
	// the openings first thing in the verdict chain.
	for _, r := range classRateRules(o) {
		add(&nftables.Chain{Name: chainClassRate, Table: t}, r.comment, r.exprs...)
	}
	for _, r := range openingRules(o) {
		add(&nftables.Chain{Name: chainVerdict, Table: t}, r.comment, r.exprs...)
	}
}

// classRules are the checks of one class, in order: its window and packet
// sizes drop in the kernel; its byte bound queues the packet again,
// Tripped, for userspace to cut the flow.
func classRules(cl *Class, o Options, method QueueMethod, westOfUTC int64) []rule {
	var rules []rule
	if cl.HasWindow {
		for _, p := range kernelPieces(closed(cl.Open), westOfUTC) {
			rules = append(rules, rule{"outside the time window", concat(
				&expr.Meta{Key: metaKeyTimeDay, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.Day}},
				hourRange(p.From, p.To),
				counterRef(counterClassWindow),
				&expr.Verdict{Kind: expr.VerdictDrop},
			)})
		}
	}
	if cl.HasSize {
		rules = append(rules, sizeRules(cl)...)
	}
	if cl.Bytes > 0 {
		rules = append(rules, rule{fmt.Sprintf("more than %d bytes", cl.Bytes), concat(
			&expr.Ct{Key: expr.CtKeyBYTES, Register: 1},
			// Counters are host-order numbers; compared big-endian.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
			&expr.Cmp{Op: expr.CmpOpGt, Register: 1, Data: binaryutil.BigEndian.PutUint64(cl.Bytes)},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^o.Marks.Mask), Xor: nativeU32(o.Marks.Tripped())},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
			counterRef(counterTripped),
			queueExprs(method, o),
		)})
	}
	return rules
}

// hourRange matches `meta hour >= from meta hour < to`, leaving out a
// bound at the day's start or end. The key is a host-order number,
// compared big-endian.
func hourRange(from, to uint32) []expr.Any {
	var out []expr.Any
	if from == 0 && to >= daySeconds {
		return nil
	}
	out = append(out,
		&expr.Meta{Key: metaKeyTimeHour, Register: 1},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
	)
	if from > 0 {
		out = append(out, &expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(from)})
	}
	if to < daySeconds {
		out = append(out, &expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(to)})
	}
	return out
}

// sizeRules drop a packet below the class's lower size bound (`meta len <
// min`), and one above its upper bound unless it is TCP (`meta l4proto !=
// tcp meta len > max`): GRO merges forwarded TCP segments into one larger
// packet (and GSO keeps a local sender's unsplit), so a TCP packet's length
// here is not one on the wire; merged, it is still never below the bound.
// UDP and ICMP keep their lengths (UDP GRO on a forwarding path needs
// rx-udp-gro-forwarding, off by default). `meta len` is the IP packet's
// length, header included, as the engine's.
func sizeRules(cl *Class) []rule {
	length := func(op expr.CmpOp, v uint16) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyLEN, Register: 1},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: op, Register: 1, Data: binaryutil.BigEndian.PutUint32(uint32(v))},
		}
	}
	return []rule{
		{"packet below the size bound", concat(length(expr.CmpOpLt, cl.SizeMin), counterRef(counterClassSize), &expr.Verdict{Kind: expr.VerdictDrop})},
		{"packet above the size bound", concat(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			length(expr.CmpOpGt, cl.SizeMax),
			counterRef(counterClassSize),
			&expr.Verdict{Kind: expr.VerdictDrop},
		)},
	}
}

// kernelWestOfUTC reads the kernel's time zone (sys_tz, which `meta day`
// uses) as seconds west of UTC. It is 0 unless something set it with
// settimeofday (an RTC kept in local time); if it cannot be read, 0.
func kernelWestOfUTC() int64 {
	var tz struct{ minutesWest, dstTime int32 }
	if _, _, errno := syscall.RawSyscall(unix.SYS_GETTIMEOFDAY, 0, uintptr(unsafe.Pointer(&tz)), 0); errno != 0 {
		return 0
	}
	return int64(tz.minutesWest) * 60
}
