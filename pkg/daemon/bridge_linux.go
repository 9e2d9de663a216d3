//go:build linux

package daemon

import (
	"os"
	"os/exec"
)

// enableBridgeFilter turns on br_netfilter for zones that ask for it, so
// that traffic between two ports of one bridge passes the forward hook, and
// warns about bridged zones that did not ask. It returns the zones it
// covered.
func (d *Daemon) enableBridgeFilter() []string {
	log := d.log
	var zones []string
	for _, z := range d.cur.Policy.Zones {
		if !z.BridgeFilter {
			continue
		}
		zones = append(zones, z.Name)
	}
	if len(zones) == 0 {
		return nil
	}
	const v4, v6 = "/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
	if _, err := os.Stat(v4); err != nil {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			log.Error("bridge_filter: cannot load br_netfilter: same-bridge traffic is NOT judged", "zones", zones, "err", err, "output", string(out))
			return nil
		}
	}
	for _, f := range []string{v4, v6} {
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			log.Error("bridge_filter: same-bridge traffic is NOT judged", "zones", zones, "err", err)
			return nil
		}
	}
	log.Info("bridge_filter on: traffic between devices on the same bridge is judged", "zones", zones)
	return zones
}
