//go:build linux

package nft

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"

	"github.com/picoseg/picoseg/internal/testnetns"
)

// kernelNetNS creates a fresh named network namespace for one test and
// returns its name and an open fd; both are cleaned up with the test. It
// skips the test unless it runs as root with the ip and nft tools at hand.
func kernelNetNS(t *testing.T) (string, int) {
	t.Helper()
	testnetns.NeedRoot(t)
	ns := testnetns.New(t, "picoseg-nft")
	return ns.Name, ns.FD
}

func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// probedNetNS is a fresh namespace with a connection to it and the queue
// method its kernel supports.
func probedNetNS(t *testing.T) (ns string, conn *Conn, method QueueMethod) {
	t.Helper()
	ns, fd := kernelNetNS(t)
	conn, err := Dial(fd)
	if err != nil {
		t.Fatal(err)
	}
	if method, err = Probe(conn); err != nil {
		t.Fatal(err)
	}
	return ns, conn, method
}

func TestKernelProbe(t *testing.T) {
	_, _, m := probedNetNS(t)
	t.Logf("queue method on this kernel: %v", m)
}

// wantRuleset is `nft list ruleset` for testOptions, with the queue
// statement replaced by <queue> (nft prints the xtables target of an inet
// table differently from version to version; TestKernelInstall checks it
// through netlink instead).
const wantRuleset = `table inet picoseg {
	counter fastpath {
		packets 0 bytes 0
	}

	counter flow_dropped {
		packets 0 bytes 0
	}

	counter guard_dropped {
		packets 0 bytes 0
	}

	counter queued {
		packets 0 bytes 0
	}

	counter verdict_dropped {
		packets 0 bytes 0
	}

	counter tripped {
		packets 0 bytes 0
	}

	counter guard_full {
		packets 0 bytes 0
	}

	counter global_dropped {
		packets 0 bytes 0
	}

	counter invalid_dropped {
		packets 0 bytes 0
	}

	counter rpf_dropped {
		packets 0 bytes 0
	}

	set bare_ack4 {
		type mark . mark
		flags constant
		elements = { 0x28000045 . 0x00000050,
			     0x2c000045 . 0x00000060,
			     0x30000045 . 0x00000070,
			     0x34000045 . 0x00000080,
			     0x38000045 . 0x00000090,
			     0x3c000045 . 0x000000a0,
			     0x40000045 . 0x000000b0,
			     0x44000045 . 0x000000c0,
			     0x48000045 . 0x000000d0,
			     0x4c000045 . 0x000000e0,
			     0x50000045 . 0x000000f0 }
	}

	set bare_ack6 {
		type mark . mark
		flags constant
		elements = { 0x00061400 . 0x00000050,
			     0x00061800 . 0x00000060,
			     0x00061c00 . 0x00000070,
			     0x00062000 . 0x00000080,
			     0x00062400 . 0x00000090,
			     0x00062800 . 0x000000a0,
			     0x00062c00 . 0x000000b0,
			     0x00063000 . 0x000000c0,
			     0x00063400 . 0x000000d0,
			     0x00063800 . 0x000000e0,
			     0x00063c00 . 0x000000f0 }
	}

	set guard_mac {
		type iface_index . ether_addr
		size 4096
		flags dynamic,timeout
		timeout 1m
	}

	set guard_if {
		type iface_index
		size 4096
		flags dynamic,timeout
		timeout 1m
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		meta mark set meta mark & 0xff00ffff
		ct state invalid counter name "invalid_dropped" drop
		ct status expected / expected,confirmed ct mark set ct mark & 0xff00ffff
		tcp flags syn / syn,ack ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		tcp flags syn / syn,ack ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "syn on an accepted flow: judge the opening"
		meta l4proto icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		meta l4proto icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "error about an accepted flow: judge who sends it"
		meta l4proto ipv6-icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		meta l4proto ipv6-icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "error about an accepted flow: judge who sends it"
		ct mark & 0x00ff0000 == 0x00fe0000 jump inspecting
		ct mark & 0x00ff0000 >= 0x00020000 ct mark & 0x00ff0000 < 0x00030000 counter name "fastpath" jump accepted
		ct mark & 0x00ff0000 == 0x00010000 counter name "flow_dropped" drop
		ct state new jump newflow
		counter name "queued" <queue>
	}

	chain accepted {
		accept
	}

	chain setmark {
		ct mark set ct mark & 0xff00ffff
		meta mark & 0x00010000 != 0x00000000 ct mark set ct mark | 0x00010000
		meta mark & 0x00020000 != 0x00000000 ct mark set ct mark | 0x00020000
		meta mark & 0x00040000 != 0x00000000 ct mark set ct mark | 0x00040000
		meta mark & 0x00080000 != 0x00000000 ct mark set ct mark | 0x00080000
		meta mark & 0x00100000 != 0x00000000 ct mark set ct mark | 0x00100000
		meta mark & 0x00200000 != 0x00000000 ct mark set ct mark | 0x00200000
		meta mark & 0x00400000 != 0x00000000 ct mark set ct mark | 0x00400000
		meta mark & 0x00800000 != 0x00000000 ct mark set ct mark | 0x00800000
	}

	chain verdict {
		type filter hook forward priority filter + 10; policy accept;
		meta mark & 0x00ff0000 == 0x00ff0000 meta mark set meta mark & 0xff00ffff accept
		meta mark & 0x00ff0000 == 0x00fe0000 ct direction reply meta mark set meta mark & 0xff00ffff accept
		meta mark & 0x00ff0000 != 0x00000000 jump setmark
		meta mark & 0x00ff0000 == 0x00010000 counter name "verdict_dropped" drop
	}

	chain newflow {
		add @guard_mac { iif . ether saddr limit rate over 50/second burst 100 packets } counter name "guard_dropped" drop
		iif . ether saddr != @guard_mac limit rate over 50/second burst 100 packets counter name "guard_full" drop
		meta iiftype != ether add @guard_if { iif limit rate over 50/second burst 100 packets } counter name "guard_dropped" drop
		limit rate over 500/second burst 1000 packets counter name "global_dropped" drop
	}

	chain inspecting {
		ct direction reply ct state established ct packets < 24 accept comment "reply on a flow under inspection: no checker reads it"
		ct direction original tcp flags ! fin,syn,rst ip length . tcp doff @bare_ack4 accept comment "opener's segment without payload on a flow under inspection"
		meta nfproto ipv6 ct direction original tcp flags ! fin,syn,rst @nh,32,24 . tcp doff @bare_ack6 accept comment "opener's segment without payload on a flow under inspection"
	}

	chain input {
		type filter hook input priority filter; policy accept;
		meta iiftype loopback accept comment "loopback"
		meta mark set meta mark & 0xff00ffff
		ct state invalid counter name "invalid_dropped" drop
		meta l4proto icmp ct direction reply ct state related jump newflow
		meta l4proto icmp ct direction reply ct state related counter name "queued" <queue> comment "error about the gateway's own connection: judge who sends it"
		meta l4proto ipv6-icmp ct direction reply ct state related jump newflow
		meta l4proto ipv6-icmp ct direction reply ct state related counter name "queued" <queue> comment "error about the gateway's own connection: judge who sends it"
		ct direction reply ct state established,related accept comment "replies to the gateway's own connections"
		ct status expected / expected,confirmed ct mark set ct mark & 0xff00ffff
		tcp flags syn / syn,ack ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		tcp flags syn / syn,ack ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "syn on an accepted flow: judge the opening"
		meta l4proto icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		meta l4proto icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "error about an accepted flow: judge who sends it"
		meta l4proto ipv6-icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 jump newflow
		meta l4proto ipv6-icmp ct state related ct mark & 0x00ff0000 >= 0x00020000 counter name "queued" <queue> comment "error about an accepted flow: judge who sends it"
		ct mark & 0x00ff0000 == 0x00fe0000 jump inspecting
		ct mark & 0x00ff0000 >= 0x00020000 ct mark & 0x00ff0000 < 0x00030000 counter name "fastpath" jump accepted
		ct mark & 0x00ff0000 == 0x00010000 counter name "flow_dropped" drop
		ct state new jump newflow
		counter name "queued" <queue>
	}

	chain input_verdict {
		type filter hook input priority filter + 10; policy accept;
		meta mark & 0x00ff0000 == 0x00ff0000 meta mark set meta mark & 0xff00ffff accept
		meta mark & 0x00ff0000 == 0x00fe0000 ct direction reply meta mark set meta mark & 0xff00ffff accept
		meta mark & 0x00ff0000 != 0x00000000 jump setmark
		meta mark & 0x00ff0000 == 0x00010000 counter name "verdict_dropped" drop
	}
}
`

const foreignTable = `table ip foreign {
	chain forward {
		type filter hook forward priority filter; policy accept;
		counter packets 0 bytes 0
	}
}
`

var (
	// nft warns about tables holding xtables expressions.
	nftWarning = regexp.MustCompile(`(?m)^# Warning: .*\n`)
	// What nft prints for a queue statement: the native statement, or
	// libxtables' complaint about the xtables target in an inet table
	// (two lines, and an empty one when the statement ends its chain).
	nftQueueNative  = regexp.MustCompile(`queue( flags [a-z,]+)? (num|to) [0-9-]+`)
	nftQueueXtables = regexp.MustCompile(`libxtables: [^\n]*\nXT target NFQUEUE not found\n(\n|( comment))?`)
)

func normalize(ruleset string) string {
	s := nftWarning.ReplaceAllString(ruleset, "")
	s = nftQueueNative.ReplaceAllString(s, "<queue>")
	return nftQueueXtables.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasSuffix(m, " comment") {
			return "<queue> comment"
		}
		return "<queue>\n"
	})
}

func TestKernelInstall(t *testing.T) {
	ns, conn, method := probedNetNS(t)
	if got := nftIn(t, ns, "list", "ruleset"); got != "" {
		t.Fatalf("Probe left a table behind:\n%s", got)
	}
	addForeign := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	addForeign.Stdin = strings.NewReader(foreignTable)
	if out, err := addForeign.CombinedOutput(); err != nil {
		t.Fatalf("add foreign table: %v\n%s", err, out)
	}

	for round := range 2 { // the second install replaces the first
		rs, err := Install(conn, testOptions, method)
		if err != nil {
			t.Fatalf("install round %d: %v", round, err)
		}
		want := foreignTable + wantRuleset
		if diff := cmp.Diff(want, normalize(nftIn(t, ns, "list", "ruleset"))); diff != "" {
			t.Fatalf("round %d: nft list ruleset (-want +got):\n%s", round, diff)
		}
		checkQueueRule(t, conn, method)
		cs, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if cs != (Counters{}) {
			t.Errorf("fresh counters = %+v, want zero", cs)
		}
	}

	if err := Remove(conn); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(foreignTable, nftIn(t, ns, "list", "ruleset")); diff != "" {
		t.Fatalf("after Remove (-want +got):\n%s", diff)
	}
	if err := Remove(conn); err != nil {
		t.Fatalf("Remove without a table: %v", err)
	}
}

// checkQueueRule reads the queue rule back through netlink and checks the
// queue numbers and flags the kernel stored.
func checkQueueRule(t *testing.T, conn *Conn, method QueueMethod) {
	t.Helper()
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	rules, err := conn.nl.GetRules(table, &nftables.Chain{Name: chainForward, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	last := rules[len(rules)-1].Exprs
	q := last[len(last)-1]
	switch method {
	case QueueNative:
		got, ok := q.(*expr.Queue)
		if !ok || got.Num != 100 || got.Total != 4 || got.Flag != expr.QueueFlagBypass {
			t.Errorf("queue expression = %#v", q)
		}
	case QueueXtables:
		got, ok := q.(*expr.Target)
		if !ok || got.Name != "NFQUEUE" || got.Rev != 3 {
			t.Fatalf("queue expression = %#v", q)
		}
		info, ok := got.Info.(*xt.Unknown)
		if !ok || len(*info) < 6 {
			t.Fatalf("target info = %#v", got.Info)
		}
		b := []byte(*info)
		num, total, flags := binary.NativeEndian.Uint16(b), binary.NativeEndian.Uint16(b[2:]), binary.NativeEndian.Uint16(b[4:])
		if num != 100 || total != 4 || flags != xtNFQFlagBypass || !bytes.Equal(b[6:], make([]byte, len(b)-6)) {
			t.Errorf("xt_NFQ_info_v3 = num %d total %d flags %#x (%x), want 100 4 0x1", num, total, flags, b)
		}
	}
}

// TestKernelClassCheck: the kernel takes the class byte check as built
// (ct bytes compared big-endian, the tripped mark, the queue).
func TestKernelClassCheck(t *testing.T) {
	ns, conn, method := probedNetNS(t)
	opts := testOptions
	opts.Classes = []Class{{}, {Bytes: 5_000_000}}
	if _, err := Install(conn, opts, method); err != nil {
		t.Fatalf("install with a class check: %v", err)
	}
	out := nftIn(t, ns, "list", "chain", "inet", TableName, chainAccepted)
	if want := "ct mark & 0x00ff0000 == 0x00030000 jump class_1"; !strings.Contains(out, want) {
		t.Errorf("accepted chain lacks %q:\n%s", want, out)
	}
	out = nftIn(t, ns, "list", "chain", "inet", TableName, classChain(1))
	for _, want := range []string{"ct bytes > 5000000 meta mark set meta mark | 0x00ff0000", `counter name "tripped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("class chain lacks %q:\n%s", want, out)
		}
	}
	// The window and size checks, as nft reads them back (it shows hours
	// in its own zone).
	t.Setenv("TZ", "UTC")
	opts.Classes = append(opts.Classes, Class{HasWindow: true, Open: []WeekSpan{{From: 10 * 3600, To: 20 * 3600}}, HasSize: true, SizeMin: 40, SizeMax: 1500})
	if _, err := Install(conn, opts, method); err != nil {
		t.Fatalf("install with window and size checks: %v", err)
	}
	out = nftIn(t, ns, "list", "chain", "inet", TableName, classChain(2))
	for _, want := range []string{
		`meta day "Thursday" meta hour < "10:00" counter name "class_window_dropped" drop`,
		`meta day "Thursday" meta hour >= "20:00" counter name "class_window_dropped" drop`,
		`meta day "Friday" counter name "class_window_dropped" drop`,
		`meta day "Wednesday" counter name "class_window_dropped" drop`,
		`meta length < 40 counter name "class_size_dropped" drop`,
		`meta l4proto != tcp meta length > 1500 counter name "class_size_dropped" drop`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("class chain lacks %q:\n%s", want, out)
		}
	}
}

// fullOptions turn on every part of the ruleset.
var fullOptions = Options{
	QueueBase: 100, Queues: 4, NewFlowRate: 50, NewFlowBurst: 100, Marks: Marks{Mask: 0x00ff0000},
	GlobalNewFlowRate: 500, GlobalNewFlowBurst: 1000,
	ReversePathInterfaces: []string{"br-iot", "lan0"},
	Bridges:               []string{"br-iot"},
	Bindings: []Binding{
		{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x11}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd00:77::11")}},
		{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.21")}},
	},
	GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd00:77::1")},
	PortRouters:  []PortRouter{{Bridge: "br-test", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}}},
}

// TestKernelInstallFull: the kernel takes every rule as built, and nft
// reads them back as the rules their comments name.
func TestKernelInstallFull(t *testing.T) {
	ns, conn, method := probedNetNS(t)
	rs, err := Install(conn, fullOptions, method)
	if err != nil {
		t.Fatal(err)
	}
	got := normalize(nftIn(t, ns, "list", "ruleset"))
	for _, want := range []string{
		"meta mark set meta mark & 0xff00ffff",
		"ct state invalid counter name \"invalid_dropped\" drop",
		"iifname @rpf_ifaces fib saddr . iif oif 0 counter name \"rpf_dropped\" drop",
		"ct status expected / expected,confirmed ct mark set ct mark & 0xff00ffff",
		"ct state new jump newflow",
		"add @guard_mac { iif . ether saddr limit rate over 50/second burst 100 packets } counter name \"guard_dropped\" drop",
		"iif . ether saddr != @guard_mac limit rate over 50/second burst 100 packets counter name \"guard_full\" drop",
		"limit rate over 500/second burst 1000 packets counter name \"global_dropped\" drop",
		"table bridge picoseg",
		"add @arp_rate { iif limit rate over 25/second burst 50 packets } counter name \"arp_flood\" drop",
		"counter name \"arp_spoof\" drop",
		"counter name \"nd_spoof\" drop",
		"icmpv6 type 133-137 jump nd",
		"icmp type redirect iifname . ether saddr != @routers counter name \"rogue_router\" drop",
		"udp sport 67 udp dport 68 iifname . ether saddr != @routers counter name \"rogue_dhcp\" drop",
		"udp sport 547 udp dport 546 iifname . ether saddr != @routers counter name \"rogue_dhcp\" drop",
		"icmpv6 type nd-router-advert iifname . ether saddr != @routers counter name \"rogue_router\" drop",
		"icmpv6 type nd-redirect iifname . ether saddr != @routers counter name \"rogue_router\" drop",
		"update @own_lladdr { ether saddr . ether saddr }",
		"@th,0,8 0x88 @th,192,16 != 0x201 counter name \"nd_spoof\" drop",
		"@th,0,8 0x88 @th,256,8 >= 0x0 counter name \"nd_spoof\" drop",
		"@th,0,8 0x88 ether saddr . @th,208,48 != @own_lladdr counter name \"nd_spoof\" drop",
		"@th,0,8 0x87 @th,192,16 0x101 ether saddr . @th,208,48 != @own_lladdr counter name \"nd_spoof\" drop",
		"@th,0,8 0x85 @th,64,16 0x101 ether saddr . @th,80,48 != @own_lladdr counter name \"nd_spoof\" drop",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("ruleset:\n%s", got)
	}
	if _, err := rs.Counters(); err != nil {
		t.Fatal(err)
	}
	if err := Remove(conn); err != nil {
		t.Fatal(err)
	}
	if got := nftIn(t, ns, "list", "ruleset"); got != "" {
		t.Errorf("Remove left:\n%s", got)
	}
}
