//go:build linux

package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// Names of the chains that judge traffic to the gateway itself.
const (
	chainInput        = "input"
	chainInputVerdict = "input_verdict"
)

// arphrdLoopback is ARPHRD_LOOPBACK, the hardware type of lo.
const arphrdLoopback = 772

// addInputChains judges traffic to the gateway itself (SSH, the web UI,
// the resolver, anything listening) with the same layers as forwarded
// traffic: without them every service on the router would be reachable
// from every zone whatever the policy says. The input hook gets what the
// forward hook has: a base chain that fast-paths and drops by conntrack
// mark and queues new flows, and a later-priority verdict chain that
// records the engine's verdict in the conntrack mark. Two kinds of packet
// pass before that:
//
//   - loopback: the gateway talking to itself is no zone's traffic;
//   - replies to the gateway's own connections (conntrack direction
//     "reply": the gateway sent the flow's first packet, from the output
//     hook, which picoseg does not judge). Conntrack decides the
//     direction from the first packet it saw, so a device cannot make its
//     own flow a "reply": a lone ACK it sends is picked up as a new flow
//     in the original direction, and queued.
func addInputChains(nl *nftables.Conn, t *nftables.Table, o Options, method QueueMethod) {
	input, verdict := addHookChains(nl, t, nftables.ChainHookInput, chainInput, chainInputVerdict)
	for _, r := range inputRules(o, method) {
		addRule(nl, t, input, r)
	}
	for _, r := range verdictRules(o.Marks) {
		addRule(nl, t, verdict, r)
	}
}

// addHookChains adds the two base chains of a hook picoseg judges in:
// name at filter priority, and verdictName after it, which records the
// daemon's verdicts (verdictRules).
func addHookChains(nl *nftables.Conn, t *nftables.Table, hook *nftables.ChainHook, name, verdictName string) (base, verdict *nftables.Chain) {
	accept := nftables.ChainPolicyAccept
	base = nl.AddChain(&nftables.Chain{
		Name: name, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	verdict = nl.AddChain(&nftables.Chain{
		Name: verdictName, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: verdictPriority(), Policy: &accept,
	})
	return base, verdict
}

// addRule adds r at the end of chain c, with its comment.
func addRule(nl *nftables.Conn, t *nftables.Table, c *nftables.Chain, r rule) {
	nr := &nftables.Rule{Table: t, Chain: c, Exprs: r.exprs}
	if r.comment != "" {
		nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.comment)
	}
	nl.AddRule(nr)
}

// inputRules are the rules of the input base chain: loopback, the forward
// chain's cleaning (a forged source is dropped before anything trusts it),
// replies to the gateway's own connections, then the forward chain's
// judging, so that both hooks judge alike. The cleaning comes before the
// replies: a device spoofing the upstream resolver's address must not have
// its "answers" to the gateway's queries accepted as replies.
func inputRules(o Options, method QueueMethod) []rule {
	rules := []rule{{"loopback", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint16(arphrdLoopback)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}}}
	rules = append(rules, cleaningRules(o)...)
	rules = append(rules, gatewayErrorRules(o, method)...)
	rules = append(rules, repliesRule())
	return append(rules, judgingRules(o, method)...)
}

// repliesRule accepts the replies to the gateway's own connections, which
// picoseg does not judge: conntrack takes the direction from the first
// packet it saw, so a device cannot make its own flow a reply.
func repliesRule() rule {
	return rule{"replies to the gateway's own connections", []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}}, // IP_CT_DIR_REPLY
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: nativeU32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: nativeU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: nativeU32(0)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}}
}

// gatewayErrorRules queue the ICMP and ICMPv6 errors about the gateway's
// own connections, which repliesRule would accept unjudged: `meta l4proto
// icmp ct direction reply ct state related queue` (and icmpv6). Conntrack
// hands an error the entry of the connection it quotes, so a device could
// otherwise cut the gateway's connections or shrink their path MTU with a
// forged error, speaking for a connection it is no end of. The engine
// accepts an error from the connection's peer or from a router towards it.
// Errors are rare; with the guard on they count against their sender's
// budget like openings.
func gatewayErrorRules(o Options, method QueueMethod) []rule {
	return errorRules(o, method, "error about the gateway's own connection: judge who sends it",
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}}, // IP_CT_DIR_REPLY
		ctStateIs(expr.CtStateBitRELATED),
	)
}
