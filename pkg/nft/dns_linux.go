package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

const (
	chainDNSOutput        = "dns_output"
	chainDNSOutputVerdict = "dns_output_verdict"
)

// dnsRules queue the DNS packets of accepted flows that the fast path
// would otherwise take, when the policy has "dns:" destinations (Options.DNS):
// `meta l4proto udp udp dport 53 ct mark & mask >= accepted queue` and the
// same for sport 53. They sit before the fast path in the forward and
// input chains.
//
// Queries (dport 53) are queued so that the names table knows every
// outstanding query (a resolver library sends its A and AAAA queries on
// one socket: the second is no new flow). Answers (sport 53) are queued so
// that the table records their addresses before the device receives them:
// the device cannot connect to an address before a rule can know it, and
// a forged answer is dropped before it is delivered. Queries count against
// the sender's new-flow guard like openings; answers do not (they come
// from the resolver's side, whose guard would be every device's).
func dnsRules(o Options, method QueueMethod) []rule {
	if !o.DNS {
		return nil
	}
	var rules []rule
	query := dnsMatch(o, 2)
	if guarded(o) {
		rules = append(rules, rule{"", concat(query, &expr.Verdict{Kind: expr.VerdictJump, Chain: chainNewFlow})})
	}
	return append(rules,
		rule{"dns query on an accepted flow: the names table sees it", concat(query, counterRef(counterQueued), queueExprs(method, o))},
		rule{"dns answer on an accepted flow: recorded before it is delivered", concat(dnsMatch(o, 0), counterRef(counterQueued), queueExprs(method, o))},
	)
}

// dnsMatch matches UDP port 53 at transport offset off (0: source, 2:
// destination) on a flow with an accepted or inspecting mark.
func dnsMatch(o Options, off uint32) []expr.Any {
	m := o.Marks
	return concat(
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)},
		ctMarkField(m),
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(m.FirstAccepted())},
		// Up to Inspecting: a DNS flow is inspected for its life (every
		// query judged), and its answers must reach the names table.
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint32(m.Inspecting())},
	)
}

// addDNSOutputChains queue the gateway's own resolver's answers to devices
// (dnsmasq on the gateway answers through the output hook, which the
// forward and input chains never see), with a verdict chain after it so
// that a drop given by userspace is applied there too. Only answers on
// flows picoseg accepted are queued: the gateway's other traffic, and its
// answers to itself over loopback (never marked), pass untouched.
func addDNSOutputChains(nl *nftables.Conn, t *nftables.Table, o Options, method QueueMethod) {
	if !o.DNS {
		return
	}
	out, verdict := addHookChains(nl, t, nftables.ChainHookOutput, chainDNSOutput, chainDNSOutputVerdict)
	addRule(nl, t, out, rule{"the gateway's dns answer: recorded before it is delivered", concat(dnsMatch(o, 0), counterRef(counterQueued), queueExprs(method, o))})
	for _, r := range verdictRules(o.Marks) {
		addRule(nl, t, verdict, r)
	}
}
