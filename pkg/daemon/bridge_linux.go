//go:build linux

package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/pkg/policy"
)

// The br_netfilter switches of the whole namespace. Each bridge also has
// its own (nf_call_iptables, nf_call_ip6tables); the kernel passes a
// bridge's traffic through the IP hooks when either is on.
const (
	globalBridgeNF4 = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	globalBridgeNF6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// bridgeNF is one bridge's br_netfilter switches.
type bridgeNF struct {
	name     string
	index    int
	ip4, ip6 uint8
}

// enableBridgeFilter passes the same-bridge traffic of the zones that ask
// for it (bridge_filter) through the forward hook, by turning on the
// per-bridge switch of their bridges only. The global sysctls would reach
// every bridge on the machine (a LAN bridge, docker0), whose traffic would
// then meet picoseg's forward chain and be denied as coming from no zone.
// A zone's bridge that does not exist yet (the daemon started before the
// network) is switched on by the interface watch when it appears.
func (d *Daemon) enableBridgeFilter(ifs ifaces) {
	names := filterBridges(d.cur.Policy)
	if len(names) == 0 {
		return
	}
	// Registered first: whatever is switched on later is restored too.
	d.atStop(func() { d.restoreBridgeNF(d.applied.filtered) })
	if err := d.loadBridgeNetfilter(); err != nil {
		d.log.Error("bridge_filter: cannot load br_netfilter: same-bridge traffic is NOT judged", "bridges", names, "err", err)
		return
	}
	var found []bridgeNF
	for _, name := range names {
		switch index := ifs.bridgeIndex(name); {
		case index != 0:
			found = append(found, bridgeNF{name: name, index: int(index)})
		case ifs.index(name) != 0:
			d.log.Info("bridge_filter: not a bridge, its traffic is routed and judged anyway", "interface", name)
		default:
			d.log.Warn("bridge_filter: no such bridge yet: its same-bridge traffic is judged once it appears", "bridge", name)
		}
	}
	d.switchBridges(found)
	if v, _ := os.ReadFile(globalBridgeNF4); strings.TrimSpace(string(v)) == "1" {
		d.log.Warn("bridge_filter: net.bridge.bridge-nf-call-iptables is 1, so EVERY bridge here passes the IP hooks, not only the zones' (set it to 0 to limit filtering to them)")
	}
}

// filterBridges lists the interfaces of pol's zones that ask for
// bridge_filter.
func filterBridges(pol *policy.Policy) []string {
	var names []string
	for _, z := range pol.Zones {
		if z.BridgeFilter {
			names = append(names, z.Interfaces...)
		}
	}
	return names
}

// switchBridges turns on the switches of bridges, remembering how they
// were for the exit, and returns the names of those switched.
func (d *Daemon) switchBridges(bridges []bridgeNF) []string {
	var names []string
	for _, b := range bridges {
		was, isBridge, err := readBridgeNF(b.index, b.name)
		if err == nil && !isBridge {
			err = errors.New("not a bridge")
		}
		if err == nil {
			err = setBridgeNF(b.index, 1, 1)
		}
		if err != nil {
			d.log.Error("bridge_filter: same-bridge traffic is NOT judged", "bridge", b.name, "err", err)
			continue
		}
		d.applied.filtered = append(d.applied.filtered, was)
		names = append(names, b.name)
	}
	if len(names) == 0 {
		return nil
	}
	var zones []string
	for _, z := range d.applied.running.Policy.Zones {
		if z.BridgeFilter && slices.ContainsFunc(d.applied.filtered, func(b bridgeNF) bool { return slices.Contains(z.Interfaces, b.name) }) {
			zones = append(zones, z.Name)
		}
	}
	d.bridged.Store(&zones)
	d.log.Info("bridge_filter on: traffic between devices on the same bridge is judged", "zones", zones, "bridges", names)
	return names
}

// bridgeFilterZones lists the zones whose same-bridge traffic is judged.
func (d *Daemon) bridgeFilterZones() []string {
	if p := d.bridged.Load(); p != nil {
		return *p
	}
	return nil
}

// loadBridgeNetfilter loads br_netfilter if needed. Loading it turns the
// global switches on in every namespace; in ours they go back off, as
// they were in effect before: only the zones' bridges are filtered.
func (d *Daemon) loadBridgeNetfilter() error {
	if _, err := os.Stat(globalBridgeNF4); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
		return fmt.Errorf("modprobe br_netfilter: %w: %s", err, strings.TrimSpace(string(out)))
	}
	for _, f := range []string{globalBridgeNF4, globalBridgeNF6} {
		if err := os.WriteFile(f, []byte("0\n"), 0o644); err != nil {
			return err
		}
	}
	d.log.Info("bridge_filter: loaded br_netfilter and kept its global switches off, as they were in effect")
	return nil
}

// restoreBridgeNF puts the bridges' switches back as they were, unless the
// table stays (on_daemon_down = closed): then same-bridge flows must keep
// meeting it, to be dropped while no daemon judges them.
func (d *Daemon) restoreBridgeNF(bridges []bridgeNF) {
	if d.cfg.OnDaemonDown == "closed" {
		return
	}
	for _, b := range bridges {
		// A bridge deleted meanwhile has nothing to restore.
		if err := setBridgeNF(b.index, b.ip4, b.ip6); err != nil && !errors.Is(err, unix.ENODEV) {
			d.log.Warn("bridge_filter: restoring the bridge's br_netfilter switches", "bridge", b.name, "err", err)
		}
	}
}

// readBridgeNF reads the br_netfilter switches of the interface index
// (named name), and whether it is a bridge at all.
func readBridgeNF(index int, name string) (bridgeNF, bool, error) {
	b := bridgeNF{name: name, index: index}
	msgs, err := rtnl(unix.RTM_GETLINK, 0, index, nil)
	if err != nil {
		return b, false, err
	}
	if len(msgs) == 0 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		return b, false, errors.New("no answer to RTM_GETLINK")
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[unix.SizeofIfInfomsg:])
	if err != nil {
		return b, false, err
	}
	var isBridge bool
	for ad.Next() {
		if ad.Type() != unix.IFLA_LINKINFO {
			continue
		}
		ad.Nested(func(info *netlink.AttributeDecoder) error {
			for info.Next() {
				switch info.Type() {
				case unix.IFLA_INFO_KIND:
					isBridge = info.String() == "bridge"
				case unix.IFLA_INFO_DATA:
					info.Nested(func(br *netlink.AttributeDecoder) error {
						for br.Next() {
							switch br.Type() {
							case unix.IFLA_BR_NF_CALL_IPTABLES:
								b.ip4 = br.Uint8()
							case unix.IFLA_BR_NF_CALL_IP6TABLES:
								b.ip6 = br.Uint8()
							}
						}
						return nil
					})
				}
			}
			return nil
		})
	}
	return b, isBridge, ad.Err()
}

// setBridgeNF sets a bridge's switches, as `ip link set BR type bridge
// nf_call_iptables V4 nf_call_ip6tables V6` does.
func setBridgeNF(index int, ip4, ip6 uint8) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_LINKINFO, func(info *netlink.AttributeEncoder) error {
		info.String(unix.IFLA_INFO_KIND, "bridge")
		info.Nested(unix.IFLA_INFO_DATA, func(br *netlink.AttributeEncoder) error {
			br.Uint8(unix.IFLA_BR_NF_CALL_IPTABLES, ip4)
			br.Uint8(unix.IFLA_BR_NF_CALL_IP6TABLES, ip6)
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = rtnl(unix.RTM_NEWLINK, netlink.Acknowledge, index, attrs)
	return err
}

// rtnl sends one rtnetlink link request about the interface index.
func rtnl(typ uint16, flags netlink.HeaderFlags, index int, attrs []byte) ([]netlink.Message, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	hdr := make([]byte, unix.SizeofIfInfomsg)
	hdr[0] = unix.AF_UNSPEC
	// ifi_index is a native-endian int32 at offset 4.
	binary.NativeEndian.PutUint32(hdr[4:], uint32(index))
	return c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   append(hdr, attrs...),
	})
}
