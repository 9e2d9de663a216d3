//go:build linux

package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/pkg/nft"
)

// ifaces is one reading of the gateway's interfaces: what the kernel path
// (bridge ports, the addresses on the zones' interfaces), the bridge_filter
// switches and the policy's "gateway" take from them. The daemon reads it
// at start and again whenever the interfaces change, and compares.
type ifaces struct {
	links map[int32]ifaceLink
	// addrs are the addresses of each interface, by index, in the order
	// the kernel lists them.
	addrs map[int32][]netip.Addr
}

// ifaceLink is one interface.
type ifaceLink struct {
	name   string
	master int32 // the bridge (or bond) it is a port of; 0 for none
	bridge bool  // whether it is a bridge
}

// readIfaces dumps the namespace's links and addresses (RTM_GETLINK and
// RTM_GETADDR, over rtnetlink, so it sees the daemon's namespace whatever
// /sys shows).
func readIfaces() (ifaces, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return ifaces{}, fmt.Errorf("reading interfaces: %w", err)
	}
	defer c.Close()
	dump := func(typ uint16, hdrLen int) ([]netlink.Message, error) {
		return c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Dump},
			Data:   make([]byte, hdrLen), // family AF_UNSPEC: every family
		})
	}
	links, err := dump(unix.RTM_GETLINK, unix.SizeofIfInfomsg)
	if err != nil {
		return ifaces{}, fmt.Errorf("reading interfaces: links: %w", err)
	}
	addrs, err := dump(unix.RTM_GETADDR, unix.SizeofIfAddrmsg)
	if err != nil {
		return ifaces{}, fmt.Errorf("reading interfaces: addresses: %w", err)
	}
	return parseIfaces(links, addrs), nil
}

// parseIfaces builds a reading from the answers of the two dumps; a
// message it cannot read is left out.
func parseIfaces(links, addrs []netlink.Message) ifaces {
	v := ifaces{links: map[int32]ifaceLink{}, addrs: map[int32][]netip.Addr{}}
	for _, m := range links {
		if index, l, ok := parseLink(m); ok {
			v.links[index] = l
		}
	}
	for _, m := range addrs {
		if index, a, ok := parseAddr(m); ok {
			v.addrs[index] = append(v.addrs[index], a)
		}
	}
	return v
}

// parseLink reads an RTM_NEWLINK message: the index, name, master and kind.
func parseLink(m netlink.Message) (int32, ifaceLink, bool) {
	if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
		return 0, ifaceLink{}, false
	}
	index := int32(binary.NativeEndian.Uint32(m.Data[4:8])) // ifinfomsg.ifi_index
	ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0, ifaceLink{}, false
	}
	var l ifaceLink
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.name = strings.TrimRight(ad.String(), "\x00")
		case unix.IFLA_MASTER:
			l.master = int32(ad.Uint32())
		case unix.IFLA_LINKINFO:
			ad.Nested(func(info *netlink.AttributeDecoder) error {
				for info.Next() {
					if info.Type() == unix.IFLA_INFO_KIND {
						l.bridge = strings.TrimRight(info.String(), "\x00") == "bridge"
					}
				}
				return nil
			})
		}
	}
	if ad.Err() != nil || l.name == "" {
		return 0, ifaceLink{}, false
	}
	return index, l, true
}

// parseAddr reads an RTM_NEWADDR message: the interface and the address.
// IFA_LOCAL, where present, is the interface's own address (IFA_ADDRESS is
// then the peer of a point-to-point link), as the net package reads it.
func parseAddr(m netlink.Message) (int32, netip.Addr, bool) {
	if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return 0, netip.Addr{}, false
	}
	index := int32(binary.NativeEndian.Uint32(m.Data[4:8])) // ifaddrmsg.ifa_index
	ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return 0, netip.Addr{}, false
	}
	var local, address netip.Addr
	for ad.Next() {
		a, ok := netip.AddrFromSlice(ad.Bytes())
		switch {
		case !ok:
		case ad.Type() == unix.IFA_LOCAL:
			local = a
		case ad.Type() == unix.IFA_ADDRESS:
			address = a
		}
	}
	if local.IsValid() {
		address = local
	}
	if ad.Err() != nil || !address.IsValid() {
		return 0, netip.Addr{}, false
	}
	return index, address.Unmap(), true
}

// index returns the index of the interface name, 0 when there is none.
func (v ifaces) index(name string) int32 {
	for i, l := range v.links {
		if l.name == name {
			return i
		}
	}
	return 0
}

// addrsOf lists the addresses of the interface name, none when it does not
// exist (yet).
func (v ifaces) addrsOf(name string) []netip.Addr {
	if i := v.index(name); i != 0 {
		return v.addrs[i]
	}
	return nil
}

// all lists every address of the gateway, sorted: what "gateway" matches.
func (v ifaces) all() []netip.Addr {
	var out []netip.Addr
	for _, as := range v.addrs {
		out = append(out, as...)
	}
	return sortedAddrs(out)
}

// portsOf lists the ports of the named bridges, sorted: the interfaces
// whose master is one of them. A bridge that does not exist (yet), or an
// interface that is no bridge, has none.
func (v ifaces) portsOf(bridges []string) []string {
	var ports []string
	for _, l := range v.links {
		if m, ok := v.links[l.master]; ok && l.master != 0 && slices.Contains(bridges, m.name) {
			ports = append(ports, l.name)
		}
	}
	slices.Sort(ports)
	return ports
}

// bridgeIndex returns the index of name if it is a bridge, else 0.
func (v ifaces) bridgeIndex(name string) int32 {
	if i := v.index(name); i != 0 && v.links[i].bridge {
		return i
	}
	return 0
}

// applied is what the daemon put in force from the policy and the
// interfaces: a new reading of the interfaces is compared with it. The
// main loop's only.
type applied struct {
	// base are the ruleset options from the [daemon] section alone.
	base nft.Options
	// running is the policy in force (the start's or the last reload's),
	// compiled with the gateway addresses running.gateway.
	running *Loaded
	// opts are the installed ruleset's options, and ports the bridge
	// ports its bridge table covered when it was installed.
	opts  nft.Options
	ports []string
	// filtered are the bridges whose br_netfilter switch picoseg turned
	// on, to be restored on exit.
	filtered []bridgeNF
	// failing is set while putting a change in force fails, so that the
	// looks every few seconds log it once.
	failing bool
}

// ifaceChange is what a reading of the interfaces changes in what is in
// force. The zero value changes nothing.
type ifaceChange struct {
	// next is the running policy compiled with the new gateway
	// addresses; nil when they did not change.
	next *Loaded
	// opts and ports are the ruleset's options and bridge ports for the
	// reading; kernel says they differ from the installed ones.
	opts   nft.Options
	ports  []string
	kernel bool
	// bridges are the zones' bridge_filter bridges whose switch is not
	// on yet (a bridge created, or created again, after start).
	bridges []bridgeNF
	// For the log line: addresses and ports that came and went.
	addrsIn, addrsOut []netip.Addr
	portsIn, portsOut []string
}

// none reports whether c changes nothing.
func (c ifaceChange) none() bool {
	return c.next == nil && !c.kernel && len(c.bridges) == 0
}

// plan compares a reading of the interfaces with what is in force.
func (a *applied) plan(ifs ifaces, now time.Time) (ifaceChange, error) {
	var c ifaceChange
	pol := a.running
	if gw := ifs.all(); !slices.Equal(gw, a.running.gateway) {
		next, err := a.running.withGateway(gw)
		if err != nil {
			return ifaceChange{}, fmt.Errorf("compiling the policy with the gateway's addresses: %w", err)
		}
		c.next, pol = next, next
		c.addrsIn, c.addrsOut = added(a.running.gateway, gw), added(gw, a.running.gateway)
	}
	c.opts = withPolicy(a.base, pol.Policy, ifs, now)
	c.ports = ifs.portsOf(c.opts.Bridges)
	c.kernel = !sameKernelPath(c.opts, a.opts) || !slices.Equal(c.ports, a.ports)
	c.portsIn, c.portsOut = added(a.ports, c.ports), added(c.ports, a.ports)
	for _, name := range filterBridges(pol.Policy) {
		index := ifs.bridgeIndex(name)
		if index != 0 && !slices.ContainsFunc(a.filtered, func(b bridgeNF) bool { return b.index == int(index) }) {
			c.bridges = append(c.bridges, bridgeNF{name: name, index: int(index)})
		}
	}
	return c, nil
}

// added lists what is in now but not in before.
func added[T comparable](before, now []T) []T {
	var out []T
	for _, x := range now {
		if !slices.Contains(before, x) {
			out = append(out, x)
		}
	}
	return out
}

// checkIfaces reads the interfaces and puts in force what changed: a port
// that joined or left a zone's bridge, a zone's bridge created after
// start, an address the gateway gained or lost. A reading that fails is
// logged and tried again at the next event or look.
func (d *Daemon) checkIfaces(ctx context.Context) {
	ifs, err := readIfaces()
	if err != nil {
		d.ifaceFailed("reading the interfaces failed", err)
		return
	}
	c, err := d.applied.plan(ifs, d.opts.Now())
	if err != nil {
		d.ifaceFailed("interfaces changed, but the policy does not compile with them: keeping the running one", err)
		return
	}
	if c.none() {
		d.applied.failing = false
		return
	}
	switched := d.switchBridges(c.bridges)
	if c.kernel {
		if err := d.installKernelPath(c.opts, c.ports); err != nil {
			// The next look tries again: the installed table stays.
			d.ifaceFailed("interfaces changed, but the ruleset for them does not install: keeping the installed one", err)
			return
		}
	}
	d.applied.failing = false
	var res rejudgeResult
	if c.next != nil {
		res = d.swapPolicy(ctx, c.next)
	}
	d.ifaceChanges.Add(1)
	d.log.Info("interface change applied", "ports_added", c.portsIn, "ports_removed", c.portsOut,
		"addresses_added", c.addrsIn, "addresses_removed", c.addrsOut, "bridge_filter_on", switched,
		"ruleset_replaced", c.kernel, "flows_cut", res.Cut, "flows_requeued", res.Cleared)
}

// ifaceFailed logs a failure to put an interface change in force, once
// until a look succeeds again.
func (d *Daemon) ifaceFailed(msg string, err error) {
	if !d.applied.failing {
		d.log.Error(msg, "err", err)
	}
	d.applied.failing = true
}
