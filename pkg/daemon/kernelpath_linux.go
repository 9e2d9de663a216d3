package daemon

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

// globalNewFlowFactor sets the global cap on new flows reaching the queue
// as a multiple of the per-device guard: many devices opening flows at once
// stay within what userspace judges in time.
const globalNewFlowFactor = 10

// kernelPath fills the parts of the ruleset options that come from the
// policy and the gateway's interfaces: the reverse-path check on the local
// zones' interfaces (not on a zone holding a default route, where policy
// routing or a second uplink makes replies arrive elsewhere), the ARP and
// neighbour discovery checks on their bridges, the devices' MAC and address
// bindings, the gateway's own addresses on those interfaces (as ifs reads
// them), and the zones' port routers.
func kernelPath(o *nft.Options, pol *policy.Policy, ifs ifaces) {
	for _, z := range pol.Zones {
		if !z.Local {
			continue
		}
		for _, name := range z.Interfaces {
			if name == "" || len(name) > 15 {
				continue // no interface can have the name (IFNAMSIZ)
			}
			o.ReversePathInterfaces = append(o.ReversePathInterfaces, name)
			// An interface that is not a bridge has no ports: no checks.
			o.Bridges = append(o.Bridges, name)
			o.GatewayAddrs = append(o.GatewayAddrs, ifs.addrsOf(name)...)
			// A zone's port routers are trusted on its own bridges only.
			for _, mac := range z.PortRouters {
				o.PortRouters = append(o.PortRouters, nft.PortRouter{Bridge: name, MAC: net.HardwareAddr(slices.Clone(mac[:]))})
			}
		}
	}
	o.GatewayAddrs = sortedAddrs(o.GatewayAddrs)
	for _, d := range pol.Devices {
		if d.HasMAC && len(d.Addrs) > 0 {
			o.Bindings = append(o.Bindings, nft.Binding{MAC: net.HardwareAddr(d.MAC[:]), Addrs: d.Addrs})
		}
	}
}

// withPolicy returns o with the parts that come from the policy (class
// checks as of now, reverse-path interfaces, bridges, bindings, gateway
// addresses) taken from pol and the interfaces ifs.
//
// In monitor mode the kernel drops nothing on picoseg's behalf either: no
// new-flow guard, no reverse-path check, no ARP and neighbour checks. A
// policy being tried out must not cut a busy device or a multi-homed host
// off before its admin has chosen to enforce.
func withPolicy(o nft.Options, pol *policy.Policy, ifs ifaces, now time.Time) nft.Options {
	o.Classes = kernelClasses(pol, now)
	o.DNS = pol.UsesDNS()
	o.ReversePathInterfaces, o.Bridges, o.Bindings, o.GatewayAddrs, o.PortRouters = nil, nil, nil, nil, nil
	if pol.Mode == config.ModeMonitor {
		o.NewFlowRate, o.NewFlowBurst, o.GlobalNewFlowRate, o.GlobalNewFlowBurst = 0, 0, 0, 0
		return o
	}
	kernelPath(&o, pol, ifs)
	return o
}

// sameKernelPath reports whether a and b build the same ruleset, so that a
// reload that changes none of it leaves the table alone.
func sameKernelPath(a, b nft.Options) bool {
	return reflect.DeepEqual(a, b)
}

// kernelDropWatch raises an alert when the kernel drops on its own what
// picoseg never sees: spoofed or flooding ARP and neighbour discovery on the
// zones' bridges, router advertisements, redirects and DHCP server messages
// from their ports, and packets whose source address fails the
// reverse-path check (an address of another zone sent in through this
// one). The daemon learns of them from the counters.
type kernelDropWatch struct{ spoof, flood, rpf, rogue uint64 }

func (w *kernelDropWatch) check(c nft.Counters, raise func(alert.Alert)) {
	spoof := c.ARPSpoof.Packets + c.NDSpoof.Packets
	flood := c.ARPFlood.Packets + c.NDFlood.Packets
	rpf := c.ReversePathDropped.Packets
	if rpf > w.rpf {
		raise(alert.Alert{Type: alert.TypeSpoofedAddress, Layer: engine.LayerIdentify, Reason: "source address fails the kernel's reverse-path check", Count: int(rpf - w.rpf),
			Message: fmt.Sprintf("spoofed source address: %d packets came in on an interface their source address cannot be reached through, dropped by the kernel", rpf-w.rpf)})
	}
	w.rpf = rpf
	// A reinstalled table starts its counters at zero again.
	if spoof > w.spoof {
		raise(alert.Alert{Type: alert.TypeARPSpoof, Count: int(spoof - w.spoof),
			Message: fmt.Sprintf("ARP or neighbour spoofing: %d packets from a bridge port claimed an address bound to another device or the gateway, dropped", spoof-w.spoof)})
	}
	if flood > w.flood {
		raise(alert.Alert{Type: alert.TypeARPFlood, Count: int(flood - w.flood),
			Message: fmt.Sprintf("ARP or neighbour discovery flood: %d packets over a bridge port's budget, dropped", flood-w.flood)})
	}
	w.spoof, w.flood = spoof, flood
	w.rogue = w.checkRogue(c, raise)
}

// checkRogue raises rogue_router for the router and DHCP server messages
// dropped on bridge ports since the last check, and returns their total.
func (w *kernelDropWatch) checkRogue(c nft.Counters, raise func(alert.Alert)) uint64 {
	rogue := c.RogueRouter.Packets + c.RogueDHCP.Packets
	if rogue > w.rogue {
		raise(alert.Alert{Type: alert.TypeRogueRouter, Count: int(rogue - w.rogue),
			Message: fmt.Sprintf("rogue router or DHCP server: %d packets from a bridge port (router advertisements, redirects: %d in all; DHCP server messages: %d in all) impersonated the gateway, dropped; list the device in the zone's port_routers if it is the network's router",
				rogue-w.rogue, c.RogueRouter.Packets, c.RogueDHCP.Packets)})
	}
	return rogue
}
