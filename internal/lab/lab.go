package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"sync"
)

// Side is the zone a host is attached to, seen from the gateway.
type Side string

// The three sides of the lab gateway.
const (
	SideIoT Side = "iot" // on the bridge br-iot
	SideLAN Side = "lan" // behind lan0
	SideWAN Side = "wan" // behind wan0
)

// Interface names inside the gateway namespace. They are the same in every
// lab, so one policy file fits all labs.
const (
	IfaceIoT = "br-iot"
	IfaceLAN = "lan0"
	IfaceWAN = "wan0"
)

// HostIface is the name of a host's only interface, inside its namespace.
const HostIface = "eth0"

// StateDir is where each lab keeps its record for [Cleanup]: a file named
// after the lab ID. It is fixed, not an option, because Cleanup must see the
// record of every live lab to know which namespaces are not orphans.
const StateDir = "/run/picoseg-lab"

// nsPrefix starts every namespace name the package creates; Cleanup relies on
// it to recognise namespaces whose record is gone.
const nsPrefix = "psl-"

// maxNameLen keeps the gateway-side port name "v-<name>" within the kernel's
// 15-byte interface name limit.
const maxNameLen = 13

// SideNet is the addressing of one side of the gateway.
type SideNet struct {
	Side   Side
	Iface  string           // interface name in the gateway namespace
	Addr   netip.Prefix     // gateway address and prefix, e.g. 10.77.0.1/24
	Addr6  netip.Prefix     // IPv6 gateway address and prefix
	MAC    net.HardwareAddr // MAC of Iface
	Bridge bool             // whether Iface is a bridge (always for IoT)
}

// sideNets returns the fixed addressing of the three sides.
func sideNets() map[Side]SideNet {
	return map[Side]SideNet{
		SideIoT: {Side: SideIoT, Iface: IfaceIoT, Addr: netip.MustParsePrefix("10.77.0.1/24"),
			Addr6: netip.MustParsePrefix("fd00:77::1/64"), MAC: mustMAC("02:00:00:00:77:01"), Bridge: true},
		SideLAN: {Side: SideLAN, Iface: IfaceLAN, Addr: netip.MustParsePrefix("10.88.0.1/24"),
			Addr6: netip.MustParsePrefix("fd00:88::1/64"), MAC: mustMAC("02:00:00:00:88:01")},
		SideWAN: {Side: SideWAN, Iface: IfaceWAN, Addr: netip.MustParsePrefix("198.51.100.1/24"),
			Addr6: netip.MustParsePrefix("2001:db8:100::1/64"), MAC: mustMAC("02:00:00:00:51:01")},
	}
}

// HostSpec describes one host to build.
type HostSpec struct {
	// Name is the host's key in [Lab.Hosts] and the suffix of its namespace:
	// lower-case letters, digits and inner dashes, at most 13 bytes, not "gw".
	Name string
	Side Side
	// Addr is the host's IPv4 address; it must lie in its side's subnet
	// (10.77.0.0/24, 10.88.0.0/24 or 198.51.100.0/24) and not be the gateway.
	Addr netip.Addr
	// MAC is the host's fixed MAC address; it must be unicast.
	MAC net.HardwareAddr
	// Addr6 is the host's IPv6 address when [Options].IPv6 is set. When zero,
	// it is derived from Addr: the side's /64 with the last IPv4 byte written
	// in decimal digits as the interface ID (10.77.0.11 → fd00:77::11).
	Addr6 netip.Addr
}

// Options configures [New].
type Options struct {
	// Hosts to build. Their order is the order of creation.
	Hosts []HostSpec
	// IPv6 adds IPv6 addressing (fd00:77::/64, fd00:88::/64,
	// 2001:db8:100::/64) beside IPv4. Without it, IPv6 is disabled in every
	// namespace, so no router solicitations or neighbour discovery add noise.
	IPv6 bool
	// ID fixes the lab ID (1 to 8 lower-case letters or digits); empty means a
	// random one.
	ID string
}

// DefaultOptions returns the standard lab: four IoT devices on br-iot, one LAN
// host (the admin PC) and one WAN host, with IPv6.
//
//	name   side  IPv4          IPv6              MAC
//	cam    iot   10.77.0.11    fd00:77::11       02:00:00:00:00:11
//	plug1  iot   10.77.0.21    fd00:77::21       02:00:00:00:00:21
//	plug2  iot   10.77.0.22    fd00:77::22       02:00:00:00:00:22
//	hub    iot   10.77.0.30    fd00:77::30       02:00:00:00:00:30
//	lan    lan   10.88.0.10    fd00:88::10       02:00:00:00:88:10
//	wan    wan   198.51.100.2  2001:db8:100::2   02:00:00:00:51:02
//
// The gateway is .1 (::1) on every side: br-iot 02:00:00:00:77:01,
// lan0 02:00:00:00:88:01, wan0 02:00:00:00:51:01.
func DefaultOptions() Options {
	host := func(name string, side Side, addr, mac string) HostSpec {
		return HostSpec{Name: name, Side: side, Addr: netip.MustParseAddr(addr), MAC: mustMAC(mac)}
	}
	return Options{
		IPv6: true,
		Hosts: []HostSpec{
			host("cam", SideIoT, "10.77.0.11", "02:00:00:00:00:11"),
			host("plug1", SideIoT, "10.77.0.21", "02:00:00:00:00:21"),
			host("plug2", SideIoT, "10.77.0.22", "02:00:00:00:00:22"),
			host("hub", SideIoT, "10.77.0.30", "02:00:00:00:00:30"),
			host("lan", SideLAN, "10.88.0.10", "02:00:00:00:88:10"),
			host("wan", SideWAN, "198.51.100.2", "02:00:00:00:51:02"),
		},
	}
}

// Lab is one built topology. Create it with [New] and always Close it.
type Lab struct {
	// ID is the lab's unique ID; every namespace is named psl-<ID>-<name>.
	ID string
	// Gateway is the namespace picoseg runs in. Its Addr is invalid; see Sides.
	Gateway *Host
	// Hosts are the hosts by name.
	Hosts map[string]*Host
	// Sides is the gateway addressing of each side that has hosts (IoT always).
	Sides map[Side]SideNet

	order   []*Host  // hosts in creation order
	created []string // namespaces New created, in order
	ipv6    bool

	spawner   chan<- func() // runs functions on the thread that forks processes
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	closed  bool
	running map[stopper]struct{} // processes and servers to stop on Close
}

// stopper is something a lab started and must stop when it closes.
type stopper interface{ stop() error }

// Host is one network namespace of a lab: the gateway or an end host.
type Host struct {
	Name  string // key in Lab.Hosts; "gw" for the gateway
	Side  Side   // empty for the gateway
	NetNS string // namespace name, as for `ip netns exec`
	// Addr, Addr6 and MAC are those of the host's eth0 (HostIface). The
	// gateway has several interfaces: see Lab.Sides.
	Addr  netip.Addr
	Addr6 netip.Addr // invalid unless the lab has IPv6
	MAC   net.HardwareAddr
	// Router is the host's default gateway (the gateway's address on its side).
	Router  netip.Addr
	Router6 netip.Addr
	// Port is the host's interface on the gateway side: a bridge port
	// "v-<name>", or lan0/wan0 itself when it is the only host of its side.
	Port string

	lab *Lab
}

// Host returns the host with the given name, the gateway for "gw", or nil.
func (l *Lab) Host(name string) *Host {
	if name == "gw" {
		return l.Gateway
	}
	return l.Hosts[name]
}

// HostsOn returns the hosts of one side in creation order.
func (l *Lab) HostsOn(side Side) []*Host {
	var hosts []*Host
	for _, h := range l.order {
		if h.Side == side {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// Namespaces returns the names of all the lab's namespaces, gateway last.
func (l *Lab) Namespaces() []string {
	names := make([]string, 0, len(l.order)+1)
	for _, h := range l.order {
		names = append(names, h.NetNS)
	}
	return append(names, l.Gateway.NetNS)
}

// String returns the host's name and namespace.
func (h *Host) String() string { return h.Name + "@" + h.NetNS }

// track registers c to be stopped by Lab.Close. It fails once the lab is
// closed, so nothing started late outlives the lab.
func (l *Lab) track(c stopper) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.running[c] = struct{}{}
	return nil
}

// untrack forgets c after it stopped on its own.
func (l *Lab) untrack(c stopper) {
	l.mu.Lock()
	delete(l.running, c)
	l.mu.Unlock()
}

// ErrClosed is returned when starting something in a lab that is closed.
var ErrClosed = errors.New("lab: closed")

var validName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
var validID = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// plan validates opts and returns the lab skeleton it describes, without
// touching the system.
func plan(opts Options, id string) (*Lab, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("lab: bad ID %q: want 1 to 8 lower-case letters or digits", id)
	}
	sides := sideNets()
	l := &Lab{
		ID:      id,
		Hosts:   make(map[string]*Host, len(opts.Hosts)),
		Sides:   map[Side]SideNet{SideIoT: sides[SideIoT]},
		ipv6:    opts.IPv6,
		running: make(map[stopper]struct{}),
	}
	l.Gateway = &Host{Name: "gw", NetNS: nsName(id, "gw"), lab: l}

	perSide := map[Side]int{}
	for _, s := range opts.Hosts {
		perSide[s.Side]++
	}
	addrs := map[netip.Addr]string{}
	macs := map[string]string{}
	for i, s := range opts.Hosts {
		where := fmt.Sprintf("lab: host %d %q", i, s.Name)
		switch {
		case len(s.Name) > maxNameLen || !validName.MatchString(s.Name):
			return nil, fmt.Errorf("%s: bad name: want lower-case letters, digits and inner dashes, at most %d bytes", where, maxNameLen)
		case s.Name == "gw":
			return nil, fmt.Errorf("%s: the name gw is the gateway's", where)
		case l.Hosts[s.Name] != nil:
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		side, ok := sides[s.Side]
		if !ok {
			return nil, fmt.Errorf("%s: unknown side %q: want iot, lan or wan", where, s.Side)
		}
		if !s.Addr.Is4() || !side.Addr.Contains(s.Addr) || s.Addr == side.Addr.Addr() ||
			s.Addr == side.Addr.Masked().Addr() || s.Addr == lastAddr(side.Addr) {
			return nil, fmt.Errorf("%s: address %v is not a host address in %v", where, s.Addr, side.Addr.Masked())
		}
		if len(s.MAC) != 6 || s.MAC[0]&1 != 0 {
			return nil, fmt.Errorf("%s: MAC %v is not a unicast Ethernet address", where, s.MAC)
		}
		h := &Host{
			Name: s.Name, Side: s.Side, NetNS: nsName(id, s.Name),
			Addr: s.Addr, MAC: append(net.HardwareAddr(nil), s.MAC...),
			Router: side.Addr.Addr(), Port: "v-" + s.Name, lab: l,
		}
		if s.Side != SideIoT && perSide[s.Side] == 1 {
			h.Port = side.Iface
		} else if s.Side != SideIoT {
			side.Bridge = true
		}
		if opts.IPv6 {
			h.Addr6, h.Router6 = s.Addr6, side.Addr6.Addr()
			if !h.Addr6.IsValid() {
				h.Addr6 = deriveAddr6(side.Addr6, s.Addr)
			}
			if !h.Addr6.Is6() || h.Addr6.Is4In6() || !side.Addr6.Contains(h.Addr6) || h.Addr6 == h.Router6 {
				return nil, fmt.Errorf("%s: IPv6 address %v is not a host address in %v", where, h.Addr6, side.Addr6.Masked())
			}
			if other, dup := addrs[h.Addr6]; dup {
				return nil, fmt.Errorf("%s: IPv6 address %v already used by %q", where, h.Addr6, other)
			}
			addrs[h.Addr6] = s.Name
		}
		if other, dup := addrs[s.Addr]; dup {
			return nil, fmt.Errorf("%s: address %v already used by %q", where, s.Addr, other)
		}
		if other, dup := macs[s.MAC.String()]; dup {
			return nil, fmt.Errorf("%s: MAC %v already used by %q", where, s.MAC, other)
		}
		addrs[s.Addr], macs[s.MAC.String()] = s.Name, s.Name
		l.Sides[s.Side] = side
		l.Hosts[s.Name] = h
		l.order = append(l.order, h)
	}
	return l, nil
}

// nsName is the namespace name of one host of lab id.
func nsName(id, host string) string { return nsPrefix + id + "-" + host }

// deriveAddr6 puts the last byte of a4, written in decimal, into the interface
// ID of the /64 p, so 10.77.0.11 becomes fd00:77::11: easy to read beside the
// IPv4 address.
func deriveAddr6(p netip.Prefix, a4 netip.Addr) netip.Addr {
	b := p.Masked().Addr().As16()
	last := a4.As4()[3]
	hex := uint16(last/100)<<8 | uint16(last/10%10)<<4 | uint16(last%10)
	b[14], b[15] = byte(hex>>8), byte(hex)
	return netip.AddrFrom16(b)
}

// lastAddr returns the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func mustMAC(s string) net.HardwareAddr {
	mac, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return mac
}

// sortedSides returns the sides of the lab in a stable order.
func (l *Lab) sortedSides() []SideNet {
	out := make([]SideNet, 0, len(l.Sides))
	for _, s := range l.Sides {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Side < out[j].Side })
	return out
}
