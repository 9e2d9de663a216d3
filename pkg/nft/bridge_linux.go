//go:build linux

package nft

import (
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The table `bridge picoseg` guards the neighbour protocols on the zones'
// bridges. picoseg's inet table never sees ARP, and IPv6 neighbour
// discovery is link-local, so a device on a bridge could otherwise answer
// for another device's address or the gateway's (poisoning their neighbour
// caches, to sit in the middle of their traffic) and flood ARP at line
// rate. The bridge family sees every frame with the port it came in on
// (`iif` is the port), before br_netfilter.
//
// The ports are those of the listed bridges when the table is installed
// (interfaces whose master is the bridge): `meta ibrname` would name the
// bridge instead, but needs nft_meta_bridge, which kernels such as this
// project's CI lack. The daemon watches the interfaces and installs the
// table again when a port joins or leaves a listed bridge, a listed bridge
// is created, or the gateway's addresses on them change, so a port added
// later is covered within a fraction of a second.
//
//	chain prerouting: frames from a port of a listed bridge
//	  ARP -> chain arp: per-port budget; Ethernet/IPv4 ARP only; a sender
//	         address bound to a device (or the gateway's own) must come
//	         with that device's MAC
//	  ICMPv6 RS/RA/NS/NA/redirect -> chain nd: router advertisements and
//	         redirects only from @routers; per-port budget; the target of a
//	         neighbour advertisement, if bound, must come from its device's
//	         MAC, and so must a solicitation's bound source; a link-layer
//	         address option must name the frame's sender
//	  ICMP redirects, DHCPv4 and DHCPv6 server messages: only from @routers
//
// On a zone's bridge the gateway is the router and the DHCP server. A
// device sending router advertisements, redirects or DHCP offers is
// impersonating it: it makes its neighbours (and, for redirects, the
// gateway's own hosts) send it their traffic, or hands them another DNS
// server. Those are dropped unless they come from a MAC the zone lists in
// port_routers (a network whose router or DHCP server really sits on a
// port), counted (rogue_router, rogue_dhcp) and raised as alerts.
//
// Addresses no binding covers (devices the policy knows only by address,
// DHCP clients) are not checked; they are the engine's and the inventory's
// concern. The gateway's own ARP, NDP, router advertisements and DHCP
// replies leave through the bridge's output hook, not a port's prerouting,
// and are not checked here.
const (
	bridgeChainPrerouting = "prerouting"
	bridgeChainARP        = "arp"
	bridgeChainND         = "nd"
	setPorts              = "ports"
	setOwned4             = "owned4"
	setBind4              = "bind4"
	setOwned6             = "owned6"
	setBind6              = "bind6"
	setARPRate            = "arp_rate"
	setNDRate             = "nd_rate"
	setRouters            = "routers"
	setOwnLLAddr          = "own_lladdr"
)

const (
	setIDPorts = 11 + iota
	setIDOwned4
	setIDBind4
	setIDOwned6
	setIDBind6
	setIDARPRate
	setIDNDRate
	setIDRouters
	setIDOwnLLAddr
)

// elemChunk is how many set elements one netlink message carries.
const elemChunk = 1024

// neighbourRateSize bounds the per-port rate sets: ports of a gateway's
// bridges, not devices.
const neighbourRateSize = 1024

// More 32-bit registers for concatenated keys: a MAC fills two, an IPv6
// address four.
const (
	reg32x2 = 10
	reg32x4 = 12
)

// ICMPv6 neighbour discovery types, and ICMP's redirect.
const (
	icmp6RouterSolicit    = 133
	icmp6RouterAdvert     = 134
	icmp6NeighbourSolicit = 135
	icmp6NeighbourAdvert  = 136
	icmp6Redirect         = 137
	icmpRedirect          = 5
)

// Neighbour discovery options (RFC 4861 4.6.1): the source and target
// link-layer address options, whose length on Ethernet is one unit of 8
// bytes (type, length, 6-byte MAC).
const (
	ndOptSourceLLAddr = 1
	ndOptTargetLLAddr = 2
)

// The fixed part of the neighbour discovery messages, before their options:
// a router solicitation is 8 bytes (type, code, checksum, reserved), a
// neighbour solicitation or advertisement 24 (and the target address).
const (
	rsOptions = 8
	nsOptions = 24
	naOptions = 24
)

// ownLLAddrTimeout and ownLLAddrSize bound the set of frame senders'
// MACs (see lladdrRules): an entry is needed only for the packet that
// added it.
const (
	ownLLAddrTimeout = time.Second
	ownLLAddrSize    = 16384
)

// bridgeTable queues the transaction that replaces `bridge picoseg`: add,
// delete and, when o lists bridges, add again with its sets and chains. It
// returns the table, or nil when there is none.
func bridgeTable(nl *nftables.Conn, o Options) *nftables.Table {
	t := &nftables.Table{Family: nftables.TableFamilyBridge, Name: TableName}
	nl.AddTable(t)
	nl.DelTable(t)
	if len(o.Bridges) == 0 {
		return nil
	}
	nl.AddTable(t)
	for _, name := range []string{counterARPSpoof, counterARPFlood, counterNDSpoof, counterNDFlood, counterRogueRouter, counterRogueDHCP} {
		nl.AddObj(&nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}
	for _, s := range neighbourSets(t, o) {
		_ = nl.AddSet(s.set, nil)
		// A netlink attribute holds at most 64 kB: the elements go in
		// messages of elemChunk (each at most ~40 bytes).
		for elems := s.elems; len(elems) > 0; {
			n := min(len(elems), elemChunk)
			_ = nl.SetAddElements(s.set, elems[:n])
			elems = elems[n:]
		}
	}
	accept := nftables.ChainPolicyAccept
	pre := nl.AddChain(&nftables.Chain{
		Name: bridgeChainPrerouting, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &accept,
	})
	arp := nl.AddChain(&nftables.Chain{Name: bridgeChainARP, Table: t})
	nd := nl.AddChain(&nftables.Chain{Name: bridgeChainND, Table: t})
	for _, c := range []struct {
		chain *nftables.Chain
		rules [][]expr.Any
	}{
		{pre, bridgePreroutingRules()},
		{arp, arpRules(o)},
		{nd, ndRules(o)},
	} {
		for _, exprs := range c.rules {
			nl.AddRule(&nftables.Rule{Table: t, Chain: c.chain, Exprs: exprs})
		}
	}
	return t
}

type setWithElems struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

func neighbourSets(t *nftables.Table, o Options) []setWithElems {
	ports := make([]nftables.SetElement, 0, len(o.bridgePorts))
	for _, p := range o.bridgePorts {
		ports = append(ports, nftables.SetElement{Key: ifname(p)})
	}
	var owned4, bind4, owned6, bind6 []nftables.SetElement
	for _, b := range o.Bindings {
		mac := make([]byte, 8) // 6 bytes padded to two registers
		copy(mac, b.MAC)
		for _, a := range b.Addrs {
			a = a.Unmap()
			key := a.AsSlice()
			if a.Is4() {
				owned4 = append(owned4, nftables.SetElement{Key: key})
				bind4 = append(bind4, nftables.SetElement{Key: append(key, mac...)})
			} else {
				owned6 = append(owned6, nftables.SetElement{Key: key})
				bind6 = append(bind6, nftables.SetElement{Key: append(key, mac...)})
			}
		}
	}
	for _, a := range o.GatewayAddrs {
		if a = a.Unmap(); a.Is4() {
			owned4 = append(owned4, nftables.SetElement{Key: a.AsSlice()})
		} else {
			owned6 = append(owned6, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	plain := func(name string, id uint32, key nftables.SetDatatype, elems []nftables.SetElement) setWithElems {
		return setWithElems{&nftables.Set{Table: t, ID: id, Name: name, KeyType: key,
			Concatenation: len(nftables.ConcatSetTypeElements(key)) > 1}, dedup(elems)}
	}
	rate := func(name string, id uint32) setWithElems {
		return setWithElems{set: &nftables.Set{Table: t, ID: id, Name: name, KeyType: nftables.TypeIFIndex,
			Dynamic: true, HasTimeout: true, Timeout: guardTimeout, Size: neighbourRateSize}}
	}
	routers := make([]nftables.SetElement, 0, len(o.PortRouters))
	for _, r := range o.PortRouters {
		// `iifname . ether saddr`, for each port of the router's own
		// bridge (the kernel here has no `meta ibrname`): the name fills
		// four registers, the MAC starts on the fifth and is padded to
		// two. A port that joins later is covered by the next install,
		// which the daemon's interface watch makes.
		for _, port := range o.bridgePorts {
			if o.portBridge[port] == r.Bridge {
				routers = append(routers, nftables.SetElement{Key: append(ifname(port), r.MAC[0], r.MAC[1], r.MAC[2], r.MAC[3], r.MAC[4], r.MAC[5], 0, 0)})
			}
		}
	}
	pair := nftables.MustConcatSetType(nftables.TypeEtherAddr, nftables.TypeEtherAddr)
	return []setWithElems{
		plain(setPorts, setIDPorts, nftables.TypeIFName, ports),
		plain(setOwned4, setIDOwned4, nftables.TypeIPAddr, owned4),
		plain(setBind4, setIDBind4, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeEtherAddr), bind4),
		plain(setOwned6, setIDOwned6, nftables.TypeIP6Addr, owned6),
		plain(setBind6, setIDBind6, nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeEtherAddr), bind6),
		rate(setARPRate, setIDARPRate),
		rate(setNDRate, setIDNDRate),
		plain(setRouters, setIDRouters, nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr), dedup(routers)),
		{set: &nftables.Set{Table: t, ID: setIDOwnLLAddr, Name: setOwnLLAddr, KeyType: pair, Concatenation: true,
			Dynamic: true, HasTimeout: true, Timeout: ownLLAddrTimeout, Size: ownLLAddrSize}},
	}
}

// dedup drops repeated keys: the kernel refuses an element added twice in
// one transaction (two devices listing one address is a policy error the
// compiler reports; the gateway's address may also be a device's).
func dedup(elems []nftables.SetElement) []nftables.SetElement {
	seen := make(map[string]bool, len(elems))
	out := elems[:0]
	for _, e := range elems {
		if !seen[string(e.Key)] {
			seen[string(e.Key)] = true
			out = append(out, e)
		}
	}
	return out
}

// bridgePreroutingRules send the neighbour protocols of the listed bridges'
// ports to their chains and drop the router's and DHCP server's messages
// a port has no business sending; every other frame passes untouched.
func bridgePreroutingRules() [][]expr.Any {
	return [][]expr.Any{
		{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: setPorts, SetID: setIDPorts, Invert: true},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{
			// The packet's protocol, not the frame's EtherType bytes: the
			// kernel takes a VLAN tag (a priority tag, VID 0, included)
			// out of the frame before the bridge, and reading the bytes
			// would see the tag and let a tagged ARP reply past the checks
			// while its receivers still process it.
			&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(unix.ETH_P_ARP)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: bridgeChainARP},
		},
		{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{icmp6RouterSolicit}, ToData: []byte{icmp6Redirect}},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: bridgeChainND},
		},
		// An ICMP redirect tells its receiver to send to another router.
		notFromPortRouter(unix.IPPROTO_ICMP, []byte{icmpRedirect}, counterRogueRouter),
		// DHCP server messages: DHCPv4 replies (port 67 to 68) and
		// DHCPv6 server messages (547 to 546), `udp sport . udp dport`.
		notFromPortRouter(unix.IPPROTO_UDP, []byte{0, 67, 0, 68}, counterRogueDHCP),
		notFromPortRouter(unix.IPPROTO_UDP, []byte{0x02, 0x23, 0x02, 0x22}, counterRogueDHCP),
	}
}

// notFromPortRouter drops a packet of IP protocol proto whose transport
// header starts with head unless its frame comes from one of the port
// routers of the zone whose bridge it entered: `meta l4proto P @th,0,N ==
// head iifname . ether saddr != @routers counter drop`. Keyed by the
// port, a device trusted as the router of one zone is no router on
// another zone's bridge.
func notFromPortRouter(proto byte, head []byte, counter string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: uint32(len(head))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: head},
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg32x0},
		&expr.Payload{DestRegister: reg32x4, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Lookup{SourceRegister: reg32x0, SetName: setRouters, SetID: setIDRouters, Invert: true},
		counterRef(counter),
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func portBudget(o Options, set string, setID uint32, counter string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
		&expr.Dynset{SrcRegKey: 1, SetName: set, SetID: setID, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{&expr.Limit{
			Type: expr.LimitTypePkts, Rate: uint64(o.NeighbourRate), Over: true, Unit: expr.LimitTimeSecond, Burst: o.NeighbourBurst,
		}}},
		counterRef(counter),
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// arpRules: `add @arp_rate { iif limit rate over R/s } drop`; `arp hlen .
// arp plen != 6 . 4 drop` (the offsets below assume Ethernet and IPv4, as
// every receiver's ARP code does); `arp saddr ip @owned4 arp saddr ip . arp
// saddr ether != @bind4 drop`.
func arpRules(o Options) [][]expr.Any {
	return [][]expr.Any{
		portBudget(o, setARPRate, setIDARPRate, counterARPFlood),
		{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 2},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{6, 4}},
			counterRef(counterARPSpoof),
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
		{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: setOwned4, SetID: setIDOwned4},
			&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
			&expr.Payload{DestRegister: reg32x1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6},
			&expr.Lookup{SourceRegister: reg32x0, SetName: setBind4, SetID: setIDBind4, Invert: true},
			counterRef(counterARPSpoof),
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
	}
}

// ndRules: router advertisements and redirects only from @routers; `add
// @nd_rate { iif limit rate over R/s } drop`; for a neighbour
// advertisement, `@th,64,128 @owned6 @th,64,128 . ether saddr != @bind6
// drop` (the target address, bound to the frame's sender MAC); for a
// solicitation, `ip6 saddr @owned6 ip6 saddr . ether saddr != @bind6
// drop`; then the link-layer address options (lladdrRules).
func ndRules(o Options) [][]expr.Any {
	rules := [][]expr.Any{
		// Before the budget: a flood of them is counted as what it is.
		notFromPortRouter(unix.IPPROTO_ICMPV6, []byte{icmp6RouterAdvert}, counterRogueRouter),
		notFromPortRouter(unix.IPPROTO_ICMPV6, []byte{icmp6Redirect}, counterRogueRouter),
		portBudget(o, setNDRate, setIDNDRate, counterNDFlood),
		// An advertisement speaks for its target address.
		ndBindingRule(icmp6NeighbourAdvert, expr.PayloadBaseTransportHeader, 8),
		// A solicitation updates its receivers' entry for its source
		// address from its link-layer option. (The unspecified source of
		// duplicate address detection is no bound address.)
		ndBindingRule(icmp6NeighbourSolicit, expr.PayloadBaseNetworkHeader, 8),
	}
	return append(rules, lladdrRules()...)
}

// lladdrRules hold the link-layer address options to the frame's sender.
// A receiver takes the MAC of a neighbour from the option, not from the
// frame: a device could advertise its own address with a third device's
// MAC (redirecting the gateway's traffic for it there, or into nothing),
// or solicit with one. nftables compares a register with constants only,
// so the sender's MAC is paired with itself in @own_lladdr first (`update
// @own_lladdr { ether saddr . ether saddr }`, an entry that lives a
// second), and the option's MAC must make that pair: `ether saddr .
// @th,208,48 != @own_lladdr drop`.
//
// Only the first option is read. An advertisement on an Ethernet link
// carries one option, the target link-layer address, or none: one whose
// first option is anything else, or that carries more than that one
// option (a second one, which some stacks would take instead), is dropped.
// A solicitation (or router solicitation) from a specified address
// carries the source link-layer address option alone, as RFC 4861 stacks
// send it, or no option: one whose first option is another (a stack reads
// every option, so a source link-layer option behind a nonce would be
// taken unchecked) or that carries a second option is dropped. The options
// a solicitation from the unspecified address may carry (a nonce, for
// duplicate address detection; never a link-layer option, which receivers
// refuse from it) are left alone. A message cut short inside its option is
// left to its receivers, which refuse it. Drops count as nd_spoof.
func lladdrRules() [][]expr.Any {
	own := func(icmpType byte, optAt uint32) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{icmpType}},
			&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Payload{DestRegister: reg32x2, Base: expr.PayloadBaseTransportHeader, Offset: optAt + 2, Len: 6},
			&expr.Lookup{SourceRegister: reg32x0, SetName: setOwnLLAddr, SetID: setIDOwnLLAddr, Invert: true},
			counterRef(counterNDSpoof),
			&expr.Verdict{Kind: expr.VerdictDrop},
		}
	}
	first := func(icmpType byte, optAt uint32, opt byte, op expr.CmpOp) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{icmpType}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: optAt, Len: 2},
			&expr.Cmp{Op: op, Register: 1, Data: []byte{opt, 1}},
		}
	}
	drop := []expr.Any{counterRef(counterNDSpoof), &expr.Verdict{Kind: expr.VerdictDrop}}
	// The IPv6 source is not the unspecified address.
	specified := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 16)},
	}
	return [][]expr.Any{
		{
			&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Payload{DestRegister: reg32x2, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Dynset{SrcRegKey: reg32x0, SetName: setOwnLLAddr, SetID: setIDOwnLLAddr, Operation: unix.NFT_DYNSET_OP_UPDATE},
		},
		// A payload beyond the packet's end ends the rule unmatched: an
		// advertisement without options passes the first two.
		concat(first(icmp6NeighbourAdvert, naOptions, ndOptTargetLLAddr, expr.CmpOpNeq), drop),
		concat(beyond(icmp6NeighbourAdvert, naOptions+8), drop), // any byte past the one option
		own(icmp6NeighbourAdvert, naOptions),
		concat(specified, first(icmp6NeighbourSolicit, nsOptions, ndOptSourceLLAddr, expr.CmpOpNeq), drop),
		concat(specified, beyond(icmp6NeighbourSolicit, nsOptions+8), drop),
		concat(specified, first(icmp6RouterSolicit, rsOptions, ndOptSourceLLAddr, expr.CmpOpNeq), drop),
		concat(specified, beyond(icmp6RouterSolicit, rsOptions+8), drop),
		concat(first(icmp6NeighbourSolicit, nsOptions, ndOptSourceLLAddr, expr.CmpOpEq), own(icmp6NeighbourSolicit, nsOptions)[2:]),
		concat(first(icmp6RouterSolicit, rsOptions, ndOptSourceLLAddr, expr.CmpOpEq), own(icmp6RouterSolicit, rsOptions)[2:]),
	}
}

// beyond matches an ICMPv6 message of icmpType that has a byte at offset
// (every byte is >= 0; the load alone decides: a load past the packet's
// end ends the rule unmatched).
func beyond(icmpType byte, offset uint32) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{icmpType}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 1},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0}},
	}
}

// ndBindingRule drops a neighbour discovery message of icmpType whose
// address (16 bytes at offset in base) is bound to a device, unless the
// frame comes from that device's MAC.
func ndBindingRule(icmpType byte, base expr.PayloadBase, offset uint32) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{icmpType}},
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: 16},
		&expr.Lookup{SourceRegister: 1, SetName: setOwned6, SetID: setIDOwned6},
		&expr.Payload{DestRegister: reg32x0, Base: base, Offset: offset, Len: 16},
		&expr.Payload{DestRegister: reg32x4, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Lookup{SourceRegister: reg32x0, SetName: setBind6, SetID: setIDBind6, Invert: true},
		counterRef(counterNDSpoof),
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// bridgePorts returns the ports of the named bridges in the caller's network
// namespace, sorted, and the bridge of each: the interfaces whose master is
// one of them (an RTM_GETLINK dump, so it does not depend on which namespace
// /sys shows). A bridge that does not exist (yet), or an interface that is
// no bridge, has none.
func bridgePorts(bridges []string) ([]string, map[string]string) {
	if len(bridges) == 0 {
		return nil, nil
	}
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, nil
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, nil
	}
	names := map[int32]string{}
	masters := map[int32]int32{}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		index := int32(binary.NativeEndian.Uint32(m.Data[4:8])) // ifinfomsg.ifi_index
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFLA_IFNAME:
				names[index] = strings.TrimRight(string(a.Value), "\x00")
			case unix.IFLA_MASTER:
				if len(a.Value) >= 4 {
					masters[index] = int32(binary.NativeEndian.Uint32(a.Value))
				}
			}
		}
	}
	var ports []string
	bridgeOf := map[string]string{}
	for index, master := range masters {
		if slices.Contains(bridges, names[master]) {
			ports = append(ports, names[index])
			bridgeOf[names[index]] = names[master]
		}
	}
	sort.Strings(ports)
	return ports, bridgeOf
}
