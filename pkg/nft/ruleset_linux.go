//go:build linux

package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is a handle on the nftables netlink interface of one network
// namespace.
type Conn struct {
	nl *nftables.Conn
}

// Dial returns a Conn for the network namespace referenced by netnsFD, or for
// the caller's namespace when netnsFD is 0. Every operation opens and closes
// its own netlink socket.
func Dial(netnsFD int) (*Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(largeBuffers)}
	if netnsFD != 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFD))
	}
	nl, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nft: %w", err)
	}
	return &Conn{nl: nl}, nil
}

// sendBuffer is the send buffer of the nftables socket. One transaction is
// one netlink send, which may not exceed the buffer, and it carries the
// bridge table's bindings: a policy with ten thousand devices needs about
// 1 MB, past the usual wmem_max (208 kB).
const sendBuffer = 32 << 20

// largeBuffers raises the socket's send buffer to sendBuffer, past
// wmem_max when the process may (CAP_NET_ADMIN), else as far as wmem_max.
// The receive buffer too: the kernel answers a transaction with a message
// per set it creates, and a policy with four classes with a rate (sixteen
// sets) overflowed the default one (ENOBUFS: the daemon did not start).
// A failure is not fatal: small transactions still fit.
func largeBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sendBuffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, sendBuffer)
		}
	})
	return nil
}

// NewConn wraps an existing google/nftables connection, for example one made
// with nftables.WithTestDial.
func NewConn(nl *nftables.Conn) *Conn { return &Conn{nl: nl} }

// probeTable is created and deleted within one batch by Probe, so it never
// outlives the transaction.
const probeTable = "picoseg_probe"

// Probe finds out which queue method the kernel supports: the native queue
// expression if nft_queue is there, else the xtables NFQUEUE target. Each
// attempt adds a rule with the expression to a throw-away table and deletes
// the table again in the same transaction, so nothing is left behind.
func Probe(conn *Conn) (QueueMethod, error) {
	probeOpts := Options{QueueBase: 0, Queues: 1}
	native := probeOnce(conn, queueExprs(QueueNative, probeOpts))
	if native == nil {
		return QueueNative, nil
	}
	if errors.Is(native, unix.EPERM) {
		return 0, fmt.Errorf("nft: probe queue method: %w", native)
	}
	xtErr := probeOnce(conn, queueExprs(QueueXtables, probeOpts))
	if xtErr == nil {
		return QueueXtables, nil
	}
	return 0, fmt.Errorf("nft: no queue method works: native queue expression: %v; xtables NFQUEUE target: %w", native, xtErr)
}

func probeOnce(conn *Conn, exprs []expr.Any) error {
	nl := conn.nl
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: probeTable}
	nl.AddTable(t)
	c := nl.AddChain(&nftables.Chain{Name: "probe", Table: t})
	nl.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: exprs})
	nl.DelTable(t)
	return nl.Flush()
}

// Ruleset is an installed picoseg table.
type Ruleset struct {
	conn   *Conn
	table  *nftables.Table
	bridge *nftables.Table // nil without bridges
	opts   Options
	method QueueMethod
}

// Install builds the table `inet picoseg` in one netlink transaction. An
// existing picoseg table is deleted in the same transaction, so installing
// again atomically replaces the ruleset and no packet ever sees a half-built
// table. Other tables are never touched.
func Install(conn *Conn, opts Options, method QueueMethod) (*Ruleset, error) {
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	if method != QueueNative && method != QueueXtables {
		return nil, fmt.Errorf("nft: unknown queue method %v", method)
	}
	o.bridgePorts, o.portBridge = bridgePorts(o.Bridges)
	t := buildRuleset(conn.nl, o, method)
	bt := bridgeTable(conn.nl, o)
	if err := conn.nl.Flush(); err != nil {
		return nil, fmt.Errorf("nft: install tables inet and bridge %s (%v queue): %w", TableName, method, err)
	}
	return &Ruleset{conn: conn, table: t, bridge: bt, opts: o, method: method}, nil
}

// Method returns the queue method the ruleset uses.
func (r *Ruleset) Method() QueueMethod { return r.method }

// Options returns the options the ruleset was built with, defaults filled in.
func (r *Ruleset) Options() Options { return r.opts }

// Remove deletes picoseg's table and nothing else.
func (r *Ruleset) Remove() error {
	return Remove(r.conn)
}

// Remove deletes the tables `inet picoseg` and `bridge picoseg` if they
// exist, for example ones left behind by a daemon that did not stop
// cleanly. Other tables are untouched.
func Remove(conn *Conn) error {
	for _, f := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
		t := &nftables.Table{Family: f, Name: TableName}
		// Adding first makes the delete succeed whether or not the table
		// exists.
		conn.nl.AddTable(t)
		conn.nl.DelTable(t)
	}
	if err := conn.nl.Flush(); err != nil {
		return fmt.Errorf("nft: remove tables inet and bridge %s: %w", TableName, err)
	}
	return nil
}

// Counters reads the ruleset's named counters.
func (r *Ruleset) Counters() (Counters, error) {
	var cs Counters
	objs, err := r.conn.nl.GetNamedObjects(r.table)
	if err != nil {
		return cs, fmt.Errorf("nft: read counters: %w", err)
	}
	if r.bridge != nil {
		more, err := r.conn.nl.GetNamedObjects(r.bridge)
		if err != nil {
			return cs, fmt.Errorf("nft: read counters of table bridge %s: %w", TableName, err)
		}
		objs = append(objs, more...)
	}
	for _, o := range objs {
		n, ok := o.(*nftables.NamedObj)
		if !ok {
			continue
		}
		c, ok := n.Obj.(*expr.Counter)
		if !ok {
			continue
		}
		if dst := cs.byName(n.Name); dst != nil {
			*dst = Counter{Packets: c.Packets, Bytes: c.Bytes}
		}
	}
	return cs, nil
}

// guardTimeout is how long a device stays in the guard set after its first
// new flow; the limiter state goes with it.
const guardTimeout = time.Minute

// guardSize bounds the per-device guard set. Devices are interfaces and the
// MACs behind them, a few hundred on a large home or office network. A
// source forging MACs can fill the set; new flows of devices outside a full
// set then share one budget (the per-device rate) and beyond it are dropped
// and counted (guard_full): a full set never means "limit nothing".
const guardSize = 4096

// Set IDs only need to be unique within one transaction. Fixed values keep
// the recorded netlink messages deterministic.
const (
	setIDGuardMAC = 1
	setIDGuardIf  = 2
	setIDRPF      = 3
)

// 32-bit registers (NFT_REG32_00 and on) hold the parts of a concatenated
// set key side by side; each part starts on a register of its own.
const (
	reg32x0 = 8
	reg32x1 = 9
)

// arphrdEther is ARPHRD_ETHER, the interface type of Ethernet devices and
// bridges (`meta iiftype ether`).
const arphrdEther = 1

// verdictPriority places the verdict chain after the filter chain on the
// same hook, so a packet accepted by userspace reaches it on its way on.
func verdictPriority() *nftables.ChainPriority {
	return nftables.ChainPriorityRef(*nftables.ChainPriorityFilter + 10)
}

// buildRuleset queues the whole transaction on nl and returns the table.
func buildRuleset(nl *nftables.Conn, o Options, method QueueMethod) *nftables.Table {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	// add + delete + add: the delete succeeds whether or not an old table
	// exists, and the transaction swaps old for new atomically.
	nl.AddTable(t)
	nl.DelTable(t)
	nl.AddTable(t)

	for _, name := range []string{counterFastPath, counterFlowDropped, counterGuardDropped, counterQueued, counterVerdictDropped, counterTripped,
		counterGuardFull, counterGlobalDropped, counterInvalid, counterReversePath} {
		nl.AddObj(&nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}

	for _, name := range classCounters(o) {
		nl.AddObj(&nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}

	accept := nftables.ChainPolicyAccept
	forward := nl.AddChain(&nftables.Chain{
		Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	accepted := nl.AddChain(&nftables.Chain{Name: chainAccepted, Table: t})
	setmark := nl.AddChain(&nftables.Chain{Name: chainSetMark, Table: t})
	verdict := nl.AddChain(&nftables.Chain{
		Name: chainVerdict, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: verdictPriority(), Policy: &accept,
	})

	newflow := nl.AddChain(&nftables.Chain{Name: chainNewFlow, Table: t})
	inspecting := addInspectingChain(nl, t)
	if o.NewFlowRate > 0 {
		for _, s := range guardSets(t) {
			// AddSet only queues a message; errors surface from Flush.
			_ = nl.AddSet(s, nil)
		}
	}
	if len(o.ReversePathInterfaces) > 0 {
		s, elems := rpfSet(t, o.ReversePathInterfaces)
		_ = nl.AddSet(s, elems)
	}
	addClassRateSets(nl, t, o)

	add := func(c *nftables.Chain, comment string, exprs ...expr.Any) {
		addRule(nl, t, c, rule{comment, exprs})
	}
	for _, r := range forwardRules(o, method) {
		add(forward, r.comment, r.exprs...)
	}
	for _, r := range newFlowRules(o) {
		add(newflow, r.comment, r.exprs...)
	}
	for _, r := range inspectingRules() {
		add(inspecting, r.comment, r.exprs...)
	}
	// The kernel checks of each pico class (class_linux.go, and the rates
	// in classrate_linux.go); a packet that passes them is accepted here.
	addClassChains(nl, t, o, method, add)
	add(accepted, "", &expr.Verdict{Kind: expr.VerdictAccept})
	for _, exprs := range setMarkRules(o.Marks) {
		add(setmark, "", exprs...)
	}
	for _, r := range verdictRules(o.Marks) {
		add(verdict, r.comment, r.exprs...)
	}
	addInputChains(nl, t, o, method)
	addDNSOutputChains(nl, t, o, method)
	return t
}

func guardSets(t *nftables.Table) []*nftables.Set {
	mk := func(name string, id uint32, key nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{
			Table: t, ID: id, Name: name, KeyType: key, Concatenation: len(nftables.ConcatSetTypeElements(key)) > 1,
			Dynamic: true, HasTimeout: true, Timeout: guardTimeout, Size: guardSize,
		}
	}
	return []*nftables.Set{
		mk(setGuardMAC, setIDGuardMAC, nftables.MustConcatSetType(nftables.TypeIFIndex, nftables.TypeEtherAddr)),
		mk(setGuardIf, setIDGuardIf, nftables.TypeIFIndex),
	}
}

func rpfSet(t *nftables.Table, ifaces []string) (*nftables.Set, []nftables.SetElement) {
	s := &nftables.Set{Table: t, ID: setIDRPF, Name: setRPF, KeyType: nftables.TypeIFName, Constant: true}
	elems := make([]nftables.SetElement, 0, len(ifaces))
	for _, name := range ifaces {
		elems = append(elems, nftables.SetElement{Key: ifname(name)})
	}
	return s, elems
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ bytes,
// NUL-padded.
func ifname(name string) []byte {
	b := make([]byte, ifNameSize)
	copy(b, name)
	return b
}

type rule struct {
	comment string
	exprs   []expr.Any
}

// forwardRules are the rules of the forward base chain, in order.
func forwardRules(o Options, method QueueMethod) []rule {
	return append(cleaningRules(o), judgingRules(o, method)...)
}

// cleaningRules come first in both hooks: nothing from another program or
// a forged source is looked at before it is cleaned or dropped.
func cleaningRules(o Options) []rule {
	rules := []rule{clearPacketMarkRule(o.Marks), invalidRule()}
	if len(o.ReversePathInterfaces) > 0 {
		rules = append(rules, reversePathRule())
	}
	return rules
}

// judgingRules follow the cleaning: the openings that a cached accept must
// not cover (a SYN, an expected connection) are sent to be judged; then
// the fast path, the guard and the queue.
func judgingRules(o Options, method QueueMethod) []rule {
	m := o.Marks
	var rules []rule
	// Before the SYN rule: its queue ends the chain for a SYN, and an
	// expected TCP connection's SYN must not keep the inherited mark.
	rules = append(rules, expectedRule(m))
	rules = append(rules, synRules(o, method)...)
	rules = append(rules, relatedErrorRules(o, method)...)
	rules = append(rules, dnsRules(o, method)...)
	// After the SYN, error and DNS rules, which queue what they match on
	// a flow under inspection too: the kernel passes what no checker
	// reads, and the rest goes on to the queue.
	rules = append(rules, inspectingJump(m))
	rules = append(rules,
		rule{"", concat(
			ctMarkField(m),
			// The field is compared as a number, so it goes big-endian first.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(m.FirstAccepted())},
			// Only the classes this ruleset checks: Tripped, or a value
			// another program wrote into the field, is no accept.
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(classesEnd(o))},
			counterRef(counterFastPath),
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainAccepted},
		)},
		rule{"", concat(
			ctMarkField(m),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(m.Dropped())},
			counterRef(counterFlowDropped),
			&expr.Verdict{Kind: expr.VerdictDrop},
		)},
	)
	if guarded(o) {
		rules = append(rules, rule{"", concat(
			ctStateIs(expr.CtStateBitNEW),
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainNewFlow},
		)})
	}
	// After the device's guard: new flows that repeat an opening of a
	// class with a rate.
	rules = append(rules, classRateJump(o)...)
	rules = append(rules, rule{"", concat(counterRef(counterQueued), queueExprs(method, o))})
	return rules
}

// classesEnd is the field value just past the ruleset's last class: the
// fast path takes [FirstAccepted, classesEnd). Class 0 always exists, and
// the field's top value is Tripped, never a class.
func classesEnd(o Options) uint32 {
	n := max(1, len(o.Classes))
	n = min(n, o.Marks.MaxClasses())
	return o.Marks.value(uint32(valueFirstAccepted + n))
}

func guarded(o Options) bool { return o.NewFlowRate > 0 || o.GlobalNewFlowRate > 0 }

// clearPacketMarkRule clears picoseg's bits of the packet mark of every
// packet: `meta mark set meta mark & ~mask`. Only a verdict from userspace
// may put them there. Without this, bits another program set in the field
// (a mask shared by mistake) would pass the verdict chain as a verdict when
// the queue is bypassed or overflows, or on a fast-pathed packet, and be
// copied into the flow's conntrack mark.
func clearPacketMarkRule(m Marks) rule {
	return rule{"", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^m.Mask), Xor: nativeU32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}}
}

// invalidRule drops what conntrack found invalid (`ct state invalid`): such
// packets have no conntrack entry, so no mark, and would otherwise all reach
// the queue, past the new-flow guard (which keys on `ct state new`).
func invalidRule() rule {
	return rule{"", concat(
		ctStateIs(expr.CtStateBitINVALID),
		counterRef(counterInvalid),
		&expr.Verdict{Kind: expr.VerdictDrop},
	)}
}

// reversePathRule drops packets from the listed interfaces whose source
// address is not routed back through the interface they came in on:
// `meta iifname @rpf_ifaces fib saddr . iif oif 0 drop`. An address proves
// nothing outside its zone: a device on the IoT bridge sending from a LAN
// address is spoofing. Bridged packets (br_netfilter) come in on the bridge
// itself here, so the check works per bridge, not per port. The sources
// networks need that claim no address pass: the kernel's fib accepts
// 0.0.0.0 to the broadcast address (DHCP) and `::` to a multicast group
// (duplicate address detection; TestKernelDADCrossesTheBridge).
func reversePathRule() rule {
	return rule{"", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: setRPF, SetID: setIDRPF},
		&expr.Fib{Register: 1, ResultOIF: true, FlagSADDR: true, FlagIIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(0)},
		counterRef(counterReversePath),
		&expr.Verdict{Kind: expr.VerdictDrop},
	}}
}

// Conntrack status bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
const (
	ipsExpected  = 1 << 0
	ipsConfirmed = 1 << 3
)

// expectedRule clears the picoseg field of the conntrack mark on the first
// packet of an expected connection (`ct status & (expected|confirmed) ==
// expected ct mark set ct mark & ~mask`). Conntrack gives a connection a
// helper expected (FTP data, SIP media) its master's mark, so it would be
// fast-pathed on the master's accept without its own tuple ever being
// judged. Cleared, it goes through the guard and the queue like any new
// flow, and its own verdict is recorded. Only the unconfirmed first packet
// matches, so later packets keep that verdict.
func expectedRule(m Marks) rule {
	return rule{"", []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(ipsExpected | ipsConfirmed), Xor: nativeU32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(ipsExpected)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^m.Mask), Xor: nativeU32(0)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}}
}

func ctStateIs(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(bit), Xor: nativeU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: nativeU32(0)},
	}
}

// synRules queue every TCP packet with SYN set and ACK clear whose flow's
// conntrack mark says accepted, instead of fast-pathing it: `tcp flags &
// (syn|ack) == syn ct mark & mask >= accepted queue`.
//
// Conntrack ignores a SYN that arrives on an ESTABLISHED entry (it does not
// start a new connection in its eyes), so the entry keeps its accepted mark.
// A flow picked up mid-stream (a lone ACK "reply" that userspace accepted)
// would then fast-path the SYN that really opens a connection, possibly from
// the other side and across a denied segment. A SYN is an opening: it is
// always judged. SYNs of flows without a verdict are queued by the rules
// below anyway (after the new-flow guard); dropped flows stay dropped.
func synRules(o Options, method QueueMethod) []rule {
	m := o.Marks
	match := concat(
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		tcpFlagsSYNOnly(),
		ctMarkField(m),
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(m.FirstAccepted())},
	)
	var rules []rule
	if guarded(o) {
		// Such SYNs count against the device's new-flow budget like any
		// opening, or a device could flood the queue with SYNs on the
		// tuple of one accepted flow.
		rules = append(rules, rule{"", concat(match, &expr.Verdict{Kind: expr.VerdictJump, Chain: chainNewFlow})})
	}
	return append(rules, rule{"syn on an accepted flow: judge the opening", concat(
		match,
		counterRef(counterQueued),
		queueExprs(method, o),
	)})
}

// relatedErrorRules queue the ICMP and ICMPv6 errors about accepted flows
// instead of fast-pathing them: `meta l4proto icmp ct state related ct
// mark & mask >= accepted queue` (and icmpv6).
//
// Conntrack hands an error the conntrack entry of the flow it quotes
// (state related), mark included, so the fast path would accept any error
// that quotes an accepted flow: a device could send another host's
// connection a forged "port unreachable" or "fragmentation needed" (cutting
// it or shrinking its path MTU), speaking for a flow it is no end of. The
// engine's checks (the error goes to the quoted packet's sender, from its
// destination or a router) need the queue. Conntrack marks an ICMP packet
// related only as an error (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6 types
// below 128), so the protocol and the state name them all. Errors are rare:
// queueing them costs little. With the guard on they count against their
// device's budget like openings, or a device could flood the queue with
// errors quoting one of its flows.
//
// Errors of flows without a verdict, or with a dropped one, reach the
// queue or the drop by the rules after these.
func relatedErrorRules(o Options, method QueueMethod) []rule {
	return errorRules(o, method, "error about an accepted flow: judge who sends it",
		ctStateIs(expr.CtStateBitRELATED),
		ctMarkField(o.Marks),
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(o.Marks.FirstAccepted())},
	)
}

// errorRules queue the ICMP and ICMPv6 packets that match cond (through
// the guard, when it is on), with comment on the queueing rule.
func errorRules(o Options, method QueueMethod, comment string, cond ...any) []rule {
	var rules []rule
	for _, proto := range []byte{unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6} {
		match := concat(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			concat(cond...),
		)
		if guarded(o) {
			rules = append(rules, rule{"", concat(match, &expr.Verdict{Kind: expr.VerdictJump, Chain: chainNewFlow})})
		}
		rules = append(rules, rule{comment, concat(
			match,
			counterRef(counterQueued),
			queueExprs(method, o),
		)})
	}
	return rules
}

// TCP flag bits in the 14th byte of the TCP header.
const (
	tcpFlagSYN = 0x02
	tcpFlagACK = 0x10
)

// tcpFlagsSYNOnly matches `tcp flags & (syn|ack) == syn`; the caller has
// checked that the transport header is TCP.
func tcpFlagsSYNOnly() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagSYN | tcpFlagACK}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpFlagSYN}},
	}
}

// newFlowRules are the rules of the newflow chain, which every opening
// (conntrack state new, or a SYN on an accepted flow) passes before the
// queue. A packet that is not dropped returns to the forward chain.
//
//  1. Per device, where the frame has an Ethernet header: `add @guard_mac {
//     iif . ether saddr limit rate over R/s }`. On a bridge every device
//     behind it has its own budget; rotating source addresses gains nothing.
//  2. Devices outside a full guard_mac set (a source forging MACs filled
//     it) share one budget: `iif . ether saddr != @guard_mac limit rate
//     over R/s drop`, counted as guard_full.
//  3. Per interface where there is no Ethernet header (tunnels, PPP).
//  4. The global cap on what reaches the queue, over all devices.
func newFlowRules(o Options) []rule {
	var rules []rule
	if o.NewFlowRate > 0 {
		limit := func() *expr.Limit {
			return &expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(o.NewFlowRate), Over: true, Unit: expr.LimitTimeSecond, Burst: o.NewFlowBurst}
		}
		ether := func(op expr.CmpOp) []expr.Any {
			return []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
				&expr.Cmp{Op: op, Register: 1, Data: binaryutil.NativeEndian.PutUint16(arphrdEther)},
			}
		}
		macKey := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: reg32x0},
			&expr.Payload{DestRegister: reg32x1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		}
		rules = append(rules,
			rule{"", concat(ether(expr.CmpOpEq), macKey,
				&expr.Dynset{SrcRegKey: reg32x0, SetName: setGuardMAC, SetID: setIDGuardMAC, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{limit()}},
				counterRef(counterGuardDropped),
				&expr.Verdict{Kind: expr.VerdictDrop},
			)},
			rule{"", concat(ether(expr.CmpOpEq), macKey,
				&expr.Lookup{SourceRegister: reg32x0, SetName: setGuardMAC, SetID: setIDGuardMAC, Invert: true},
				limit(),
				counterRef(counterGuardFull),
				&expr.Verdict{Kind: expr.VerdictDrop},
			)},
			rule{"", concat(ether(expr.CmpOpNeq),
				&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
				&expr.Dynset{SrcRegKey: 1, SetName: setGuardIf, SetID: setIDGuardIf, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{limit()}},
				counterRef(counterGuardDropped),
				&expr.Verdict{Kind: expr.VerdictDrop},
			)},
		)
	}
	if o.GlobalNewFlowRate > 0 {
		rules = append(rules, rule{"", []expr.Any{
			&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(o.GlobalNewFlowRate), Over: true, Unit: expr.LimitTimeSecond, Burst: o.GlobalNewFlowBurst},
			counterRef(counterGlobalDropped),
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	return rules
}

// xt_NFQ_info_v3 flags (include/uapi/linux/netfilter/xt_NFQUEUE.h).
const (
	xtNFQFlagBypass    = 0x01
	xtNFQFlagCPUFanout = 0x02
)

// xtNFQInfoV3 encodes struct xt_NFQ_info_v3 { __u16 queuenum; __u16
// queues_total; __u16 flags; } in host byte order, padded to XT_ALIGN (8
// bytes) as iptables-nft sends it.
func xtNFQInfoV3(num, total, flags uint16) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b[0:], num)
	binary.NativeEndian.PutUint16(b[2:], total)
	binary.NativeEndian.PutUint16(b[4:], flags)
	return b
}

// queueExprs hands the packet to queues QueueBase..QueueBase+Queues-1.
// Without the CPU-fanout flag the kernel spreads flows by a hash of the
// addresses that is the same in both directions, so every packet of a flow
// reaches the same queue (and the same flow table shard). Bypass, unless
// FailClosed, accepts packets while no program listens on the queue.
func queueExprs(method QueueMethod, o Options) []expr.Any {
	switch method {
	case QueueNative:
		var flag expr.QueueFlag
		if !o.FailClosed {
			flag |= expr.QueueFlagBypass
		}
		return []expr.Any{&expr.Queue{Num: o.QueueBase, Total: uint16(o.Queues), Flag: flag}}
	case QueueXtables:
		var flags uint16
		if !o.FailClosed {
			flags |= xtNFQFlagBypass
		}
		info := xt.Unknown(xtNFQInfoV3(o.QueueBase, uint16(o.Queues), flags))
		return []expr.Any{&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}}
	}
	return nil
}

// setMarkRules copy the picoseg field of the packet mark into the conntrack
// mark, keeping the conntrack mark's other bits: first clear the field, then
// set it bit by bit. Copying two registers in one rule (`ct mark set ct mark
// & ~m | meta mark & m`) needs bitwise operations on two registers, which
// google/nftables and older kernels (OpenWrt) lack; the per-bit rules need
// nothing beyond constant masks and run only for packets carrying a verdict.
func setMarkRules(m Marks) [][]expr.Any {
	rules := [][]expr.Any{{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^m.Mask), Xor: nativeU32(0)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}}
	for rest := m.Mask; rest != 0; rest &= rest - 1 {
		bit := uint32(1) << bits.TrailingZeros32(rest)
		rules = append(rules, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(bit), Xor: nativeU32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: nativeU32(0)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			// x & ~bit ^ bit == x | bit
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^bit), Xor: nativeU32(bit)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		})
	}
	return rules
}

// verdictRules are the rules of the verdict base chain. A packet whose mark
// carries no picoseg field (fast path, or "need more packets") passes
// untouched, so its flow stays unjudged and the next packet is queued again.
//
// A packet still marked Tripped was not answered by userspace (the queue
// was bypassed or full, fail-open) or was answered "need more packets":
// its mark is cleared and nothing is recorded, so the flow keeps its class
// mark and its next packet is checked (and queued) again. Copied, Tripped
// (all ones, above every class) would fast-path the flow with no check.
func verdictRules(m Marks) []rule {
	return []rule{
		{"", concat(
			metaMarkField(m),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(m.Tripped())},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^m.Mask), Xor: nativeU32(0)},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
			&expr.Verdict{Kind: expr.VerdictAccept},
		)},
		inspectingVerdictRule(m),
		{"", concat(
			metaMarkField(m),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: nativeU32(0)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainSetMark},
		)},
		// The drop happens after the mark is recorded, so later packets of
		// a confirmed flow are dropped by the forward chain without
		// reaching userspace.
		{"", concat(
			metaMarkField(m),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(m.Dropped())},
			counterRef(counterVerdictDropped),
			&expr.Verdict{Kind: expr.VerdictDrop},
		)},
	}
}

func ctMarkField(m Marks) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(m.Mask), Xor: nativeU32(0)},
	}
}

func metaMarkField(m Marks) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(m.Mask), Xor: nativeU32(0)},
	}
}

func counterRef(name string) expr.Any {
	return &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: name}
}

// Marks live in registers in host byte order.
func nativeU32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

func concat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case expr.Any:
			out = append(out, p)
		case []expr.Any:
			out = append(out, p...)
		}
	}
	return out
}
