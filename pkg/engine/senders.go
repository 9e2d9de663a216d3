package engine

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// senderTable remembers the MAC each address was last seen from on an
// accepted new flow of a device the policy knows by its MAC where the
// address alone does not name the device: a device written without `ip`,
// or one using an address it does not list (link-local). Judge, which
// enforcement uses on the kernel's fast-pathed flows (after a reload, as
// time windows close, for byte budgets), has only conntrack's addresses:
// without the MAC such a device's flows would be judged as an unknown
// host's and cut.
//
// The table holds MACs, not devices, so it outlives reloads. It has a
// fixed number of slots, sized by the policy's devices with a MAC; an
// address goes to one of a few slots, and a full set gives up its
// least recently seen entry. Nothing allocates once it is made.
type senderTable struct {
	mu    sync.Mutex
	slots []sender
}

type sender struct {
	addr [16]byte
	mac  [6]byte
	used bool
	last int64 // unix nanoseconds, of the last flow or bytes seen
}

// senderProbe is how many slots an address may go to.
const senderProbe = 8

// Bounds of the table: four addresses for each device with a MAC (IPv4,
// IPv6 global, temporary and link-local), in a power of two.
const (
	minSenderSlots = 64
	maxSenderSlots = 1 << 16
)

// fit sizes the table for pol, keeping what it holds. A policy without
// devices known by MAC needs none.
func (t *senderTable) fit(pol *policy.Policy) {
	n := 0
	for i := range pol.Devices {
		if pol.Devices[i].HasMAC {
			n += 4
		}
	}
	if n == 0 {
		return
	}
	size := minSenderSlots
	for size < n && size < maxSenderSlots {
		size *= 2
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if size <= len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]sender, size)
	for _, s := range old {
		if s.used {
			t.put(s)
		}
	}
}

// home is the first slot of a.
func (t *senderTable) home(a *[16]byte) int {
	h := binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(a[8:])*0xc2b2ae3d27d4eb4f
	return int((h ^ h>>29) & uint64(len(t.slots)-1))
}

// put stores s in a's slot, a free one, or the least recently seen of
// the probe window. The caller holds mu.
func (t *senderTable) put(s sender) {
	at := t.home(&s.addr)
	victim := -1
	for i := 0; i < senderProbe; i++ {
		j := (at + i) & (len(t.slots) - 1)
		switch slot := &t.slots[j]; {
		case slot.used && slot.addr == s.addr, !slot.used:
			*slot = s
			return
		case victim < 0 || slot.last < t.slots[victim].last:
			victim = j
		}
	}
	t.slots[victim] = s
}

// find returns a's slot, or nil. The caller holds mu.
func (t *senderTable) find(a *[16]byte) *sender {
	if len(t.slots) == 0 {
		return nil
	}
	at := t.home(a)
	for i := 0; i < senderProbe; i++ {
		if s := &t.slots[(at+i)&(len(t.slots)-1)]; s.used && s.addr == *a {
			return s
		}
	}
	return nil
}

// saw records that a flow from addr, sent from mac, was accepted at now.
func (t *senderTable) saw(addr netip.Addr, mac [6]byte, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.slots) > 0 {
		t.put(sender{addr: addr.As16(), mac: mac, used: true, last: now})
	}
}

// mac returns the MAC addr was last seen from.
func (t *senderTable) mac(addr netip.Addr) ([6]byte, bool) {
	a := addr.As16()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.find(&a); s != nil {
		return s.mac, true
	}
	return [6]byte{}, false
}

// touch marks addr as still sending at now.
func (t *senderTable) touch(addr netip.Addr, now int64) {
	a := addr.As16()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.find(&a); s != nil && now > s.last {
		s.last = now
	}
}

// recordSender keeps the MAC of an accepted new flow's sender when only
// its MAC names its device (senderTable). A dry judgement records
// nothing, nor does a flow judged from its reply: its packet is not its
// opener's.
func (w *Worker) recordSender(g *generation, d Decision, p *packet.Packet, now int64, reversed bool) {
	c := &w.ctx
	if d.Verdict == Drop || reversed || !p.HasMAC || c.DryRun {
		return
	}
	dev := c.Src.Device
	if dev < 0 || !g.policy.Devices[dev].HasMAC || c.senderAddrDevice == dev {
		return
	}
	w.e.senders.saw(p.Src, p.SrcMAC, now)
}

// senderMAC gives a queried flow's first packet the MAC its source
// address was last seen from, when the address names no device itself.
func (e *Engine) senderMAC(pol *policy.Policy, p *packet.Packet) {
	if p.HasMAC || pol.DeviceByAddr(p.Src) != policy.None {
		return
	}
	if mac, ok := e.senders.mac(p.Src); ok {
		p.HasMAC, p.SrcMAC = true, mac
	}
}
