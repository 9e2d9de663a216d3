package nft

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// TableName is the name of picoseg's table in the inet family.
const TableName = "picoseg"

// ErrUnsupported is returned on systems without nftables.
var ErrUnsupported = errors.New("nft: nftables is only available on Linux")

// QueueMethod says how the ruleset hands packets to userspace.
type QueueMethod uint8

// The queue methods Probe can find.
const (
	// QueueNative is the nftables `queue` expression (module nft_queue).
	QueueNative QueueMethod = iota + 1
	// QueueXtables is the xtables NFQUEUE target through nft_compat.
	QueueXtables
)

// String returns "native" or "xtables".
func (q QueueMethod) String() string {
	switch q {
	case QueueNative:
		return "native"
	case QueueXtables:
		return "xtables"
	}
	return fmt.Sprintf("QueueMethod(%d)", uint8(q))
}

// Options configures the ruleset.
type Options struct {
	// QueueBase is the first NFQUEUE number.
	QueueBase uint16
	// DNS queues the DNS queries and answers of accepted flows, and the
	// gateway's own resolver's answers (dns_linux.go): the policy has
	// "dns:" destinations.
	DNS bool
	// Queues is how many queues, starting at QueueBase, share the load. The
	// kernel picks the queue from a hash of the addresses that is the same
	// for both directions, so one flow always lands in one queue.
	Queues int
	// Marks is the mark field picoseg owns. A zero Mask means DefaultMarkMask.
	Marks Marks
	// FailClosed ("on_daemon_down = closed") drops queued packets while no
	// daemon listens on the queue; otherwise the queue is bypassed and they
	// are accepted. Flows already accepted keep their fast path either way.
	FailClosed bool
	// NewFlowRate is the per-device budget of new flows (packets in
	// conntrack state new, and SYNs on accepted flows) per second; 0
	// disables the per-device guard. A device is what the kernel sees, not
	// the address it claims: the ingress interface and, where the frame has
	// an Ethernet header, its source MAC (on a bridge, every device behind
	// it has its own budget).
	NewFlowRate uint32
	// NewFlowBurst is the guard's burst in packets; 0 means NewFlowRate.
	NewFlowBurst uint32
	// GlobalNewFlowRate caps the new flows of all devices together that
	// reach the queue, per second; 0 disables the cap. It sits above the
	// per-device guard: many devices (or many forged MACs) at once cannot
	// overrun the queue either.
	GlobalNewFlowRate uint32
	// GlobalNewFlowBurst is the global cap's burst; 0 means
	// GlobalNewFlowRate.
	GlobalNewFlowBurst uint32
	// ReversePathInterfaces are the ingress interfaces whose packets must
	// come from an address routed back through the same interface (a
	// strict reverse-path check, `fib saddr . iif oif missing drop`). List
	// the zones' own interfaces, not a WAN with several uplinks or policy
	// routing, where a genuine reply may arrive on another uplink.
	ReversePathInterfaces []string
	// Bridges are the zones' bridges whose ports get the ARP and neighbour
	// discovery checks (table `bridge picoseg`); none means no such table.
	Bridges []string
	// Bindings are the devices the policy knows by MAC and address: on the
	// bridges, ARP and neighbour advertisements claiming one of these
	// addresses must come from its MAC.
	Bindings []Binding
	// GatewayAddrs are the gateway's own addresses: no bridge port may
	// claim them in ARP or a neighbour advertisement.
	GatewayAddrs []netip.Addr
	// PortRouters are the devices on the bridges' ports that may send
	// router advertisements, redirects and DHCP server messages (a network
	// whose router or DHCP server sits on a port), each on its own zone's
	// bridges only; from any other port, or another bridge, they are
	// dropped: the gateway is the zones' router.
	PortRouters []PortRouter
	// NeighbourRate is the ARP and neighbour discovery budget of one bridge
	// port, in packets per second; 0 means DefaultNeighbourRate.
	NeighbourRate uint32
	// NeighbourBurst is that budget's burst; 0 means 2 * NeighbourRate.
	NeighbourBurst uint32

	// bridgePorts are the ports of Bridges, read by Install.
	bridgePorts []string
	// portBridge names the bridge of each of bridgePorts.
	portBridge map[string]string
	// Classes are the kernel checks of each pico class, indexed by class
	// (see Class): a fast-pathed flow of class c is held to Classes[c]
	// packet by packet. The byte bound needs conntrack accounting.
	Classes []Class
}

// Queue numbers fit a uint16, and xt_NFQ_info_v3 counts them in a uint16.
const maxQueues = 1 << 16

func (o Options) normalized() (Options, error) {
	if o.Marks.Mask == 0 {
		o.Marks = DefaultMarks()
	}
	if err := o.Marks.Validate(); err != nil {
		return o, err
	}
	if o.Queues <= 0 {
		return o, fmt.Errorf("nft: queues = %d, need at least 1", o.Queues)
	}
	if int(o.QueueBase)+o.Queues > maxQueues {
		return o, fmt.Errorf("nft: queues %d..%d exceed the largest queue number %d",
			o.QueueBase, int(o.QueueBase)+o.Queues-1, maxQueues-1)
	}
	if n := len(o.Classes); n > o.Marks.MaxClasses() {
		return o, fmt.Errorf("nft: %d pico classes, but mark_mask %#x holds %d", n, o.Marks.Mask, o.Marks.MaxClasses())
	}
	if o.NewFlowRate > 0 && o.NewFlowBurst == 0 {
		o.NewFlowBurst = o.NewFlowRate
	}
	if o.GlobalNewFlowRate > 0 && o.GlobalNewFlowBurst == 0 {
		o.GlobalNewFlowBurst = o.GlobalNewFlowRate
	}
	if o.NeighbourRate == 0 {
		o.NeighbourRate = DefaultNeighbourRate
	}
	if o.NeighbourBurst == 0 {
		o.NeighbourBurst = 2 * o.NeighbourRate
	}
	for _, r := range o.PortRouters {
		if len(r.MAC) != 6 {
			return o, fmt.Errorf("nft: port router %q is not a 6-byte Ethernet address", r.MAC)
		}
		if r.Bridge == "" || len(r.Bridge) > 15 {
			return o, fmt.Errorf("nft: port router %s: %q is not an interface name", r.MAC, r.Bridge)
		}
	}
	for _, b := range o.Bindings {
		if len(b.MAC) != 6 {
			return o, fmt.Errorf("nft: binding of %v: MAC %q is not a 6-byte Ethernet address", b.Addrs, b.MAC)
		}
	}
	for _, name := range append(append([]string(nil), o.Bridges...), o.ReversePathInterfaces...) {
		if name == "" || len(name) >= ifNameSize {
			return o, fmt.Errorf("nft: bad interface name %q", name)
		}
	}
	return o, nil
}

// Binding is a device the policy knows by its MAC and addresses.
type Binding struct {
	MAC   net.HardwareAddr
	Addrs []netip.Addr
}

// PortRouter is a device allowed to act as router and DHCP server from the
// ports of one bridge.
type PortRouter struct {
	Bridge string
	MAC    net.HardwareAddr
}

// DefaultNeighbourRate is the per-port ARP and neighbour discovery budget
// (packets per second) unless Options.NeighbourRate says otherwise. A device
// resolves a handful of neighbours a second at most; a port sending more is
// flooding (an ARP flood fills every neighbour table and the CPU).
const DefaultNeighbourRate = 25

// ifNameSize is IFNAMSIZ: interface names are at most 15 bytes and a NUL.
const ifNameSize = 16

// Counter is one named counter of the ruleset.
type Counter struct {
	Packets, Bytes uint64
}

// Counters are the ruleset's named counters.
type Counters struct {
	// FastPath counts packets of accepted flows that stayed in the kernel.
	FastPath Counter
	// FlowDropped counts packets of flows whose conntrack mark says DROPPED.
	FlowDropped Counter
	// GuardDropped counts new-flow packets dropped by the per-device guard.
	GuardDropped Counter
	// GuardFull counts new-flow packets dropped because the guard's device
	// set was full and the shared budget of the devices outside it was
	// spent (a source forging many MACs).
	GuardFull Counter
	// GlobalDropped counts new-flow packets dropped by the global cap.
	GlobalDropped Counter
	// InvalidDropped counts packets conntrack found invalid, dropped before
	// the queue.
	InvalidDropped Counter
	// ReversePathDropped counts packets whose source address is not routed
	// back through the interface they came in on (spoofed), dropped.
	ReversePathDropped Counter
	// ARPSpoof and NDSpoof count ARP packets and IPv6 neighbour
	// discovery messages from a bridge port that claimed an address bound
	// to another device or to the gateway, whose link-layer address
	// option named another MAC than the frame's sender (or were
	// malformed), dropped.
	ARPSpoof, NDSpoof Counter
	// ARPFlood and NDFlood count ARP and neighbour discovery packets over a
	// bridge port's budget, dropped.
	ARPFlood, NDFlood Counter
	// RogueRouter counts router advertisements and redirects (ICMP and
	// ICMPv6) from a bridge port, RogueDHCP DHCPv4 and DHCPv6 server
	// messages from one, dropped (unless from a zone's port_routers).
	RogueRouter, RogueDHCP Counter
	// Queued counts packets handed to NFQUEUE.
	Queued Counter
	// VerdictDropped counts packets that came back from userspace with the
	// DROPPED mark and were dropped after it was recorded in conntrack.
	VerdictDropped Counter
	// Tripped counts packets of fast-pathed flows queued again because
	// they broke a class check.
	Tripped Counter
	// ClassWindow counts packets of fast-pathed flows dropped because
	// their class's time window was closed.
	ClassWindow Counter
	// ClassSize counts packets of fast-pathed flows dropped because their
	// length was outside their class's size bounds.
	ClassSize Counter
	// ClassRate counts new flows dropped because they repeated an
	// opening of a class whose source was over the class's rate.
	ClassRate Counter
}

// Names of the counter objects in the table.
const (
	counterFastPath       = "fastpath"
	counterFlowDropped    = "flow_dropped"
	counterGuardDropped   = "guard_dropped"
	counterQueued         = "queued"
	counterVerdictDropped = "verdict_dropped"
	counterTripped        = "tripped"
	counterGuardFull      = "guard_full"
	counterGlobalDropped  = "global_dropped"
	counterInvalid        = "invalid_dropped"
	counterReversePath    = "rpf_dropped"
	counterARPSpoof       = "arp_spoof"
	counterARPFlood       = "arp_flood"
	counterNDSpoof        = "nd_spoof"
	counterNDFlood        = "nd_flood"
	counterRogueRouter    = "rogue_router"
	counterRogueDHCP      = "rogue_dhcp"
	counterClassWindow    = "class_window_dropped"
	counterClassSize      = "class_size_dropped"
	counterClassRate      = "class_rate_dropped"
)

func (c *Counters) byName(name string) *Counter {
	switch name {
	case counterFastPath:
		return &c.FastPath
	case counterFlowDropped:
		return &c.FlowDropped
	case counterGuardDropped:
		return &c.GuardDropped
	case counterQueued:
		return &c.Queued
	case counterVerdictDropped:
		return &c.VerdictDropped
	case counterTripped:
		return &c.Tripped
	case counterGuardFull:
		return &c.GuardFull
	case counterGlobalDropped:
		return &c.GlobalDropped
	case counterInvalid:
		return &c.InvalidDropped
	case counterReversePath:
		return &c.ReversePathDropped
	case counterARPSpoof:
		return &c.ARPSpoof
	case counterARPFlood:
		return &c.ARPFlood
	case counterNDSpoof:
		return &c.NDSpoof
	case counterNDFlood:
		return &c.NDFlood
	case counterRogueRouter:
		return &c.RogueRouter
	case counterRogueDHCP:
		return &c.RogueDHCP
	case counterClassWindow:
		return &c.ClassWindow
	case counterClassSize:
		return &c.ClassSize
	case counterClassRate:
		return &c.ClassRate
	}
	return nil
}

// Names of the chains and sets in the table.
const (
	chainForward  = "forward"
	chainAccepted = "accepted"
	chainSetMark  = "setmark"
	chainVerdict  = "verdict"
	chainNewFlow  = "newflow"
	setGuardMAC   = "guard_mac"
	setGuardIf    = "guard_if"
	setRPF        = "rpf_ifaces"
)
