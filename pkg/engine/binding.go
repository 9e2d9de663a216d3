package engine

import (
	"net/netip"
	"sync"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// BindingIdle is how long a device known only by its address stays bound
// to the bridge port and MAC it was seen on without a packet from them.
// After that the binding lapses and the next port (or MAC) that uses the
// address takes it: a device that moved to another port can come back,
// at most BindingIdle after its last flow on the old one.
const BindingIdle = 10 * time.Minute

// bindingTable binds each device of the policy that has no MAC (so that
// only its address names it) to where it was first seen: the bridge port
// the kernel says the packet came in on, and the frame's source MAC. A
// packet claiming that device's address from another port or another MAC
// while the binding is fresh is spoofing: any host of the zone can write
// the address, but it cannot come in on the device's port with the
// device's MAC (and the ARP guard keeps it from answering for the address).
//
// It has one slot per policy device, made when the policy is loaded, so
// no traffic can make it grow. The first sender of an address wins it
// (trust on first use): after a restart, or once a binding lapsed, a host
// that speaks first with a device's address holds it, and the device's
// own packets are then the ones refused, each raising spoofed_address.
type bindingTable struct {
	mu    sync.Mutex
	slots []binding // by policy device
}

type binding struct {
	bound bool
	// port is the bridge port's interface index.
	port uint32
	// mac is the frame's source MAC, when hasMAC.
	mac    [6]byte
	hasMAC bool
	last   int64 // last packet from the bound port and MAC
}

func newBindingTable(pol *policy.Policy) *bindingTable {
	return &bindingTable{slots: make([]binding, len(pol.Devices))}
}

// check judges packet p from the address of device d, come in on bridge
// port port (its source MAC is p.SrcMAC when p.HasMAC). It reports false for a
// packet from elsewhere than the device's fresh binding. A packet that
// matches refreshes the binding (and gives it the MAC if it had none);
// with nothing bound, or a lapsed binding, the packet binds the device,
// unless the judgement is dry (how has dryRun). Without a bridge port (a routed interface, a capture,
// explain) the kernel cannot tell where the packet came from: it is
// neither checked nor bound, and the zone check is all there is.
func (t *bindingTable) check(d int32, port uint32, p *packet.Packet, now int64, how judging) bool {
	mac, hasMAC, dry := p.SrcMAC, p.HasMAC, how&dryRun != 0
	if port == 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d < 0 || int(d) >= len(t.slots) {
		return true
	}
	b := &t.slots[d]
	if !b.bound || now-b.last >= int64(BindingIdle) {
		if !dry {
			*b = binding{bound: true, port: port, mac: mac, hasMAC: hasMAC, last: now}
		}
		return true
	}
	if port != b.port || hasMAC && b.hasMAC && mac != b.mac {
		return false
	}
	if !dry {
		b.last = now
		if !b.hasMAC && hasMAC {
			b.mac, b.hasMAC = mac, true
		}
	}
	return true
}

// keep refreshes device d's binding if it is fresh: the device is still
// sending, in flows the kernel fast-paths. A lapsed or missing binding is
// left alone (only a judged packet binds).
func (t *bindingTable) keep(d int32, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d < 0 || int(d) >= len(t.slots) {
		return
	}
	if b := &t.slots[d]; b.bound && now-b.last < int64(BindingIdle) && now > b.last {
		b.last = now
	}
}

// DeviceSent tells the engine that the host using addr sent bytes in a
// flow it accepted, which the kernel fast-paths: a device known only by
// that address keeps its binding to its bridge port, if fresh (so that a
// device whose only traffic is one long connection keeps it), and a
// device known by its MAC keeps the address in the table that lets Judge
// name it (senderTable).
func (e *Engine) DeviceSent(addr netip.Addr, now int64) {
	e.senders.touch(addr, now)
	g := e.cur.Load()
	if d := g.policy.DeviceByAddr(addr); d >= 0 && !g.policy.Devices[d].HasMAC {
		g.bindings.keep(d, now)
	}
}

// carryOver keeps the bindings of devices that are still in the new
// policy under the same name and still have no MAC: a reload must not
// hand a device's address to whichever host speaks first after it.
func (t *bindingTable) carryOver(old *bindingTable, oldPol, newPol *policy.Policy) {
	byName := make(map[string]int32, len(newPol.Devices))
	for i := range newPol.Devices {
		if !newPol.Devices[i].HasMAC {
			byName[newPol.Devices[i].Name] = int32(i)
		}
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	for i := range old.slots {
		if !old.slots[i].bound {
			continue
		}
		if d, ok := byName[oldPol.Devices[i].Name]; ok {
			t.slots[d] = old.slots[i]
		}
	}
}
