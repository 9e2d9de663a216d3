//go:build linux

package nft

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/testnetns"
)

func TestInstallBridgeMessages(t *testing.T) {
	var rec recorder
	opts := Options{Queues: 1, Bridges: []string{"br-test"},
		Bindings:     []Binding{{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x11}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.11")}}},
		GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.77.0.1")},
	}
	if _, err := Install(rec.conn(t), opts, QueueXtables); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	var bridge []string
	inBridge := false
	for _, m := range msgs {
		if m.kind == "add obj" && m.name == "arp_spoof" {
			inBridge = true
		}
		if inBridge && m.kind != "rule" && m.kind != "msg 12" { // set elements
			bridge = append(bridge, m.String())
		}
	}
	want := []string{
		"add obj arp_spoof", "add obj arp_flood", "add obj nd_spoof", "add obj nd_flood", "add obj rogue_router", "add obj rogue_dhcp",
		"add set ports", "add set owned4", "add set bind4", "add set owned6", "add set bind6", "add set arp_rate", "add set nd_rate",
		"add set routers", "add set own_lladdr",
		"add chain prerouting", "add chain arp", "add chain nd",
	}
	if diff := cmp.Diff(want, bridge); diff != "" {
		t.Errorf("bridge table (-want +got):\n%s", diff)
	}
	limit := &expr.Limit{Type: expr.LimitTypePkts, Rate: DefaultNeighbourRate, Over: true, Unit: expr.LimitTimeSecond, Burst: 2 * DefaultNeighbourRate}
	diffExprs(t, "arp", rulesOf(msgs, "arp"), [][]expr.Any{
		// add @arp_rate { iif limit rate over 25/second burst 50 packets } counter name "arp_flood" drop
		{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Dynset{SrcRegKey: 1, SetName: "arp_rate", SetID: setIDARPRate, Operation: unix.NFT_DYNSET_OP_ADD, Exprs: []expr.Any{limit}},
			&expr.Objref{Type: 1, Name: "arp_flood"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
		// arp hlen . arp plen != 6 . 4 counter name "arp_spoof" drop
		{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 2},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{6, 4}},
			&expr.Objref{Type: 1, Name: "arp_spoof"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
		// arp saddr ip @owned4 arp saddr ip . arp saddr ether != @bind4 counter name "arp_spoof" drop
		{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: "owned4", SetID: setIDOwned4},
			&expr.Payload{DestRegister: 8, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6},
			&expr.Lookup{SourceRegister: 8, SetName: "bind4", SetID: setIDBind4, Invert: true},
			&expr.Objref{Type: 1, Name: "arp_spoof"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
	})
	diffExprs(t, "prerouting", rulesOf(msgs, "prerouting")[:1], [][]expr.Any{{
		// iifname != @ports return
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: "ports", SetID: setIDPorts, Invert: true},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	nd := rulesOf(msgs, "nd")
	if len(nd) != 15 {
		t.Fatalf("nd chain has %d rules, want 15 (two router messages, budget, two bindings, ten link-layer option rules)", len(nd))
	}
	// ip6 saddr @owned6 ip6 saddr . ether saddr != @bind6 counter drop
	diffExprs(t, "nd solicitation", nd[4:5], [][]expr.Any{{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{135}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Lookup{SourceRegister: 1, SetName: "owned6", SetID: setIDOwned6},
		&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Payload{DestRegister: reg32x4, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Lookup{SourceRegister: reg32x0, SetName: "bind6", SetID: setIDBind6, Invert: true},
		&expr.Objref{Type: 1, Name: "nd_spoof"},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
}

// The element keys: an address, and an address with its MAC padded to
// whole registers.
func TestNeighbourSetElements(t *testing.T) {
	o := Options{
		Bindings:     []Binding{{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x11}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd00::11")}}},
		GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.11")},
	}
	got := map[string][][]byte{}
	for _, s := range neighbourSets(nil, o) {
		for _, e := range s.elems {
			got[s.set.Name] = append(got[s.set.Name], e.Key)
		}
	}
	want := map[string][][]byte{
		"owned4": {{10, 77, 0, 11}, {10, 77, 0, 1}}, // the repeated address once
		"bind4":  {{10, 77, 0, 11, 2, 0, 0, 0, 0, 0x11, 0, 0}},
		"owned6": {netip.MustParseAddr("fd00::11").AsSlice()},
		"bind6":  {append(netip.MustParseAddr("fd00::11").AsSlice(), 2, 0, 0, 0, 0, 0x11, 0, 0)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("set elements (-want +got):\n%s", diff)
	}
}

// bridgePorts finds a bridge's ports in the namespace it runs in, and
// nothing for an interface that is no bridge.
func TestKernelBridgePorts(t *testing.T) {
	testnetns.NeedRoot(t)
	ns := testnetns.New(t, "picoseg-br")
	ns.Run(t, "ip", "link", "add", "br-x", "type", "bridge")
	for _, p := range []string{"p1", "p0"} {
		ns.Run(t, "ip", "link", "add", p, "type", "veth", "peer", "name", p+"-peer")
		ns.Run(t, "ip", "link", "set", p, "master", "br-x")
	}
	var got, none []string
	ns.Do(t, func() {
		got, _ = bridgePorts([]string{"br-x", "lo"})
		none, _ = bridgePorts([]string{"p0"})
	})
	if diff := cmp.Diff([]string{"p0", "p1"}, got); diff != "" {
		t.Errorf("ports of br-x (-want +got):\n%s", diff)
	}
	if len(none) != 0 {
		t.Errorf("a port has ports itself: %v", none)
	}
}

// A large policy's bindings fit one transaction: ten thousand devices with
// an IPv4 and an IPv6 address each.
func TestKernelInstallManyBindings(t *testing.T) {
	_, conn, method := probedNetNS(t)
	o := Options{Queues: 1, Bridges: []string{"br-iot"}}
	for i := 0; i < 10000; i++ {
		mac := net.HardwareAddr{2, 0x55, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		v4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
		o.Bindings = append(o.Bindings, Binding{MAC: mac, Addrs: []netip.Addr{v4, v6}})
	}
	if _, err := Install(conn, o, method); err != nil {
		t.Fatal(err)
	}
	got, err := conn.nl.GetSetElements(&nftables.Set{Table: &nftables.Table{Family: nftables.TableFamilyBridge, Name: TableName}, Name: setBind6,
		KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeEtherAddr)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10000 {
		t.Errorf("bind6 holds %d elements, want 10000", len(got))
	}
}

// routerOnly is `meta l4proto P @th,0,N == head ether saddr != @routers
// counter name C drop`.
func routerOnly(proto byte, head []byte, counter string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: uint32(len(head))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: head},
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 8},
		&expr.Payload{DestRegister: 12, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Lookup{SourceRegister: 8, SetName: "routers", SetID: setIDRouters, Invert: true},
		&expr.Objref{Type: 1, Name: counter},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Router advertisements, redirects and DHCP server messages from a port
// are dropped unless their frame comes from a port router: the bytes of
// the rules, and the MACs of the routers set.
func TestInstallRogueRouterRules(t *testing.T) {
	var rec recorder
	router := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	opts := Options{Queues: 1, Bridges: []string{"br-test"}, PortRouters: []PortRouter{{Bridge: "br-test", MAC: router}}}
	if _, err := Install(rec.conn(t), opts, QueueXtables); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	diffExprs(t, "prerouting", rulesOf(msgs, "prerouting")[2:], [][]expr.Any{
		// icmpv6 type 133-137 jump nd: router and neighbour solicitations and advertisements, redirects
		{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{137}},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "nd"},
		},
		routerOnly(unix.IPPROTO_ICMP, []byte{5}, "rogue_router"),                   // icmp type redirect
		routerOnly(unix.IPPROTO_UDP, []byte{0, 67, 0, 68}, "rogue_dhcp"),           // udp sport 67 dport 68
		routerOnly(unix.IPPROTO_UDP, []byte{0x02, 0x23, 0x02, 0x22}, "rogue_dhcp"), // udp sport 547 dport 546
	})
	diffExprs(t, "nd", rulesOf(msgs, "nd")[:2], [][]expr.Any{
		routerOnly(unix.IPPROTO_ICMPV6, []byte{134}, "rogue_router"), // icmpv6 type nd-router-advert
		routerOnly(unix.IPPROTO_ICMPV6, []byte{137}, "rogue_router"), // icmpv6 type nd-redirect
	})
	// The routers set pairs the router's MAC with each port of its own
	// bridge, never with another bridge's ports.
	opts.bridgePorts = []string{"p1", "p2", "q1"}
	opts.portBridge = map[string]string{"p1": "br-test", "p2": "br-test", "q1": "br-other"}
	var got [][]byte
	for _, s := range neighbourSets(nil, opts) {
		if s.set.Name == "routers" {
			for _, e := range s.elems {
				got = append(got, e.Key)
			}
		}
	}
	// The port's name, NUL-padded to 16 bytes, then the MAC padded to
	// two registers.
	key := func(port string) []byte {
		return append(append([]byte(port), make([]byte, 16-len(port))...), append(slices.Clone(router), 0, 0)...)
	}
	if diff := cmp.Diff([][]byte{key("p1"), key("p2")}, got); diff != "" {
		t.Errorf("routers (-want +got):\n%s", diff)
	}
}

// The link-layer address options must name the frame's sender: the
// sender's MAC is paired with itself, and the option's MAC must make the
// pair.
func TestInstallLinkLayerOptionRules(t *testing.T) {
	var rec recorder
	if _, err := Install(rec.conn(t), Options{Queues: 1, Bridges: []string{"br-test"}}, QueueXtables); err != nil {
		t.Fatal(err)
	}
	typeIs := func(ty byte) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ty}},
		}
	}
	firstOption := func(at uint32, op expr.CmpOp, opt byte) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: at, Len: 2},
			&expr.Cmp{Op: op, Register: 1, Data: []byte{opt, 1}},
		}
	}
	// ether saddr . @th,(at+2)*8,48 != @own_lladdr counter name "nd_spoof" drop
	optionIsSender := func(at uint32) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 8, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: at + 2, Len: 6},
			&expr.Lookup{SourceRegister: 8, SetName: "own_lladdr", SetID: setIDOwnLLAddr, Invert: true},
			&expr.Objref{Type: 1, Name: "nd_spoof"},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}
	}
	drop := []expr.Any{&expr.Objref{Type: 1, Name: "nd_spoof"}, &expr.Verdict{Kind: expr.VerdictDrop}}
	specified := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 16)},
	}
	byteAt := func(at uint32) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: at, Len: 1},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0}},
		}
	}
	diffExprs(t, "nd", rulesOf(decode(t, rec.msgs), "nd")[5:], [][]expr.Any{
		// update @own_lladdr { ether saddr . ether saddr }
		{
			&expr.Payload{DestRegister: 8, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Dynset{SrcRegKey: 8, SetName: "own_lladdr", SetID: setIDOwnLLAddr, Operation: unix.NFT_DYNSET_OP_UPDATE},
		},
		// icmpv6 type nd-neighbor-advert @th,192,16 != 0x0201 counter name "nd_spoof" drop
		join(typeIs(136), firstOption(24, expr.CmpOpNeq, 2), drop),
		// icmpv6 type nd-neighbor-advert @th,256,8 >= 0 (a byte past the option) counter name "nd_spoof" drop
		join(typeIs(136), byteAt(32), drop),
		join(typeIs(136), optionIsSender(24)),
		// ip6 saddr != :: icmpv6 type nd-neighbor-solicit @th,192,16 != 0x0101 counter name "nd_spoof" drop
		join(specified, typeIs(135), firstOption(24, expr.CmpOpNeq, 1), drop),
		// ip6 saddr != :: icmpv6 type nd-neighbor-solicit @th,256,8 >= 0 counter name "nd_spoof" drop
		join(specified, typeIs(135), byteAt(32), drop),
		// the same for router solicitations, whose options start at 8
		join(specified, typeIs(133), firstOption(8, expr.CmpOpNeq, 1), drop),
		join(specified, typeIs(133), byteAt(16), drop),
		// icmpv6 type nd-neighbor-solicit @th,192,16 == 0x0101 ether saddr . @th,208,48 != @own_lladdr drop
		join(typeIs(135), firstOption(24, expr.CmpOpEq, 1), optionIsSender(24)),
		// icmpv6 type nd-router-solicit @th,64,16 == 0x0101 ether saddr . @th,80,48 != @own_lladdr drop
		join(typeIs(133), firstOption(8, expr.CmpOpEq, 1), optionIsSender(8)),
	})
}
