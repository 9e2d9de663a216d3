package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Pos is where something was written: file, 1-based line and column.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as FILE:LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Mode says whether picoseg drops what it denies.
type Mode uint8

const (
	// ModeEnforce drops denied traffic.
	ModeEnforce Mode = iota
	// ModeMonitor decides and alerts exactly as enforce would, but never drops.
	ModeMonitor
)

// String returns "enforce" or "monitor".
func (m Mode) String() string {
	if m == ModeMonitor {
		return "monitor"
	}
	return "enforce"
}

// Config is a whole policy as written: the main file and everything it
// includes, decoded strictly and validated, with every name resolvable.
// It holds no compiled indexes; package policy builds those.
type Config struct {
	// Files lists the main file and then each included file, in load order.
	Files    []string
	Daemon   Daemon
	Zones    []Zone
	Segments []Segment
	Groups   []Group
	Devices  []Device
	Allows   []Allow
	// Alert, Inventory and Metrics are the main file's [alert],
	// [inventory] and [metrics] tables.
	Alert     Alert
	Inventory Inventory
	Metrics   Metrics
	// Gateway is the main file's [gateway] table: the gateway's addresses
	// and the services it allows by default.
	Gateway Gateway
}

// Daemon holds the [daemon] table. Zero values are replaced by the
// documented defaults by the loader.
type Daemon struct {
	Mode Mode
	// Timezone is where hours and days are evaluated; time.Local by default.
	Timezone     *time.Location
	TimezoneName string
	// MarkMask is the set of packet/connection mark bits picoseg owns.
	// Default 0x000000f8: clear of Calico, pbr, Tailscale, kube-proxy and
	// mwan3 (the table is on nft.DefaultMarkMask).
	MarkMask uint32
	// OnDaemonDown is "open" (default: new flows bypass the queue while no
	// daemon listens) or "closed" (new flows are dropped).
	OnDaemonDown string
	// OnQueueFull is "open" (default: accept when the queue overflows) or
	// "drop".
	OnQueueFull string
	// Queues is the number of NFQUEUE queues to fan out over (default 2),
	// numbered from QueueBase (default 4200).
	Queues    int
	QueueBase uint16
	// NewFlowRate is the kernel's per-source guard on new flows sent to the
	// queue (default 200/s, burst 400): one flooding device cannot starve
	// the queue for the others.
	NewFlowRate Rate
	// FlowTableSize bounds the userspace flow table (default 65536).
	FlowTableSize int
	// QueueMaxLen is each kernel queue's length in packets (default 4096);
	// beyond it OnQueueFull decides.
	QueueMaxLen uint32
	// Socket is the status socket path (default /run/picoseg/picoseg.sock).
	Socket string
	// Lock is the file the daemon holds an exclusive lock on while it
	// runs; "" means DefaultLock.
	Lock string
	// User, when set, is the unprivileged user the daemon becomes once it
	// has started, keeping only CAP_NET_ADMIN.
	User string
	Pos  Pos
}

// Zone is a named part of the network.
type Zone struct {
	Name       string
	Interfaces []string
	Networks   []netip.Prefix
	// BridgeFilter turns on br_netfilter for the zone's bridges so that
	// same-bridge (east-west) traffic reaches picoseg.
	BridgeFilter bool
	// PortRouters are the MACs of devices on the zone's bridge ports that
	// may send router advertisements, redirects and DHCP server messages
	// (the network's router or DHCP server sits on a port). From any other
	// port they are dropped: the gateway is the zone's router.
	PortRouters [][6]byte
	Pos         Pos
}

// SegmentAction is what a [[segment]] decides for traffic between two zones.
type SegmentAction uint8

const (
	// SegmentDeny drops everything from the zone to the zone.
	SegmentDeny SegmentAction = iota
	// SegmentAllow accepts everything from the zone to the zone.
	SegmentAllow
	// SegmentMicro hands the flow to the micro layer: only what an [[allow]]
	// rule permits passes.
	SegmentMicro
)

var segmentActionNames = [...]string{"deny", "allow", "micro"}

// String returns the action's policy-file spelling.
func (a SegmentAction) String() string { return segmentActionNames[a] }

// Segment is one zone-to-zone rule. From or To may be "*" for any zone;
// To may be "gateway" (GatewayZoneName) for the gateway itself, which "*"
// does not include.
type Segment struct {
	From, To string
	Action   SegmentAction
	Pos      Pos
}

// Group is a named set of devices.
type Group struct {
	Name string
	Pos  Pos
}

// Device is one known device. It is identified by MAC first, then by IP.
type Device struct {
	Name   string
	HasMAC bool
	MAC    [6]byte
	IPs    []netip.Addr
	Groups []string
	Pos    Pos
}

// EndpointKind says what an allow rule's from or to names.
type EndpointKind uint8

const (
	// EndpointAny is "any": every address.
	EndpointAny EndpointKind = iota
	// EndpointDevice is "device:NAME".
	EndpointDevice
	// EndpointGroup is "group:NAME".
	EndpointGroup
	// EndpointZone is "zone:NAME".
	EndpointZone
	// EndpointNet is "net:CIDR".
	EndpointNet
	// EndpointGateway is "gateway": the gateway's own addresses (to only).
	EndpointGateway
)

// Endpoint is one side of an allow rule.
type Endpoint struct {
	Kind   EndpointKind
	Name   string       // device, group or zone name
	Prefix netip.Prefix // for EndpointNet, masked
	Pos    Pos
}

// String returns the endpoint in policy-file spelling ("group:cameras").
func (e Endpoint) String() string {
	switch e.Kind {
	case EndpointDevice:
		return "device:" + e.Name
	case EndpointGroup:
		return "group:" + e.Name
	case EndpointZone:
		return "zone:" + e.Name
	case EndpointNet:
		return "net:" + e.Prefix.String()
	case EndpointGateway:
		return "gateway"
	}
	return "any"
}

// Service is one entry of an allow rule's services: "tcp/554",
// "udp/5000-5010", "icmp", "icmpv6", "tcp" (any port), "any".
// Proto 0 means any protocol. For tcp and udp, PortLo..PortHi is the
// destination port range (0-65535 when no port was written).
type Service struct {
	Proto  uint8
	PortLo uint16
	PortHi uint16
}

// TimeRange is a daily window in minutes since midnight, [Start, End).
// End < Start means the window wraps past midnight ("22:00-06:00").
type TimeRange struct {
	Start, End int
}

// Weekdays is a bit set of days, bit time.Sunday .. time.Saturday.
// Zero means every day.
type Weekdays uint8

// Has reports whether d is in the set (an empty set has every day).
func (w Weekdays) Has(d time.Weekday) bool { return w == 0 || w&(1<<uint(d)) != 0 }

// SizeRange bounds packet sizes in bytes, inclusive.
type SizeRange struct {
	Min, Max int
}

// Budget is an amount of bytes per period ("2GB per 24h").
type Budget struct {
	Bytes int64
	Per   time.Duration
}

// Rate is a count per period ("10/s", "600/m"). Zero Count means unset.
type Rate struct {
	Count int
	Per   time.Duration
}

// Allow is one micro-layer rule with its optional pico constraints.
type Allow struct {
	Name     string
	From, To Endpoint
	// Services lists what the rule permits; empty means any service.
	Services []Service
	// Pico constraints; zero values mean unconstrained.
	Hours          []TimeRange
	Days           Weekdays
	PacketSize     *SizeRange
	MaxFlowBytes   int64
	MaxDeviceBytes *Budget
	MinDeviceBytes *Budget
	MaxNewFlows    Rate
	// FanOut bounds how many distinct peers, and distinct ports on one
	// peer, one device reaches under the rule within a window.
	FanOut FanOut
	// App is the rule's application constraint, nil for none.
	App *AppRule
	Pos Pos
}

// FanOut is a rule's bound on one device's fan-out: at most MaxPeers
// distinct destination addresses, and at most MaxPorts distinct
// destination ports on any one of them, among the flows it opened under
// the rule in the last Window. Zero means no bound.
type FanOut struct {
	MaxPeers int
	MaxPorts int
	Window   time.Duration
}

// Set reports whether the rule has a fan-out bound.
func (f FanOut) Set() bool { return f.MaxPeers > 0 || f.MaxPorts > 0 }

// Fan-out limits. Each device under a rule with a fan-out bound has a
// table of the peers (and ports) it reached, sized by the bound: the
// limits keep that table small, and a device that needs more is one
// whose fan-out is not worth bounding.
const (
	MaxFanOutPeers = 1024
	MaxFanOutPorts = 1024
	// MaxFanOutEntries bounds max_peers × max_ports when both are set.
	MaxFanOutEntries = 4096
	// DefaultFanOutWindow is fanout_window's default.
	DefaultFanOutWindow = time.Minute
)

// HasPico reports whether the rule carries any pico constraint.
func (a *Allow) HasPico() bool {
	return len(a.Hours) > 0 || a.Days != 0 || a.PacketSize != nil || a.MaxFlowBytes > 0 ||
		a.MaxDeviceBytes != nil || a.MinDeviceBytes != nil || a.MaxNewFlows.Count > 0 || a.FanOut.Set() ||
		a.App != nil
}
