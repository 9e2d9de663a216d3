package inventory

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/picoseg/picoseg/internal/lru"
)

// DefaultMaxDevices bounds the inventory when Options.MaxDevices is 0.
const DefaultMaxDevices = 4096

// MaxAddrs is how many addresses a device keeps. IPv6 privacy addresses
// come and go; the oldest is dropped first.
const MaxAddrs = 16

// Options configures an Inventory.
type Options struct {
	// Leases is a DHCP leases file in dnsmasq format for hostnames; "" for
	// none. It need not exist yet.
	Leases string
	// UnknownGroup is the group Devices reports for devices not in the
	// policy that have no group of their own; "" for none.
	UnknownGroup string
	// StatePath is the JSON state file; "" keeps the inventory in memory
	// only (Save does nothing).
	StatePath string
	// MaxDevices bounds the number of devices (default DefaultMaxDevices);
	// the device least recently observed is forgotten first.
	MaxDevices int
	// Now is the clock (default time.Now). It stamps observations without
	// a Time and paces re-reading the leases file.
	Now func() time.Time
}

// Device is what the inventory knows about one device. It is also the
// state file's record.
type Device struct {
	// MAC is the hardware address, lower case with colons; "" for a device
	// known only by its IP address.
	MAC string `json:"mac,omitempty"`
	// Addrs are the IP addresses it used, the one it gained first first.
	Addrs []string `json:"addrs"`
	// Name is the policy's name for the device, "" when it is not in the
	// policy.
	Name string `json:"name,omitempty"`
	// Known reports whether the device is in the policy.
	Known bool `json:"known"`
	// Zone and Groups are the policy's zone and groups for it.
	Zone   string   `json:"zone,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Hostname is the name the device gave DHCP, "" when unknown.
	Hostname string `json:"hostname,omitempty"`
	// MUDURL is the Manufacturer Usage Description URL (RFC 8520) the
	// device announced in DHCPv4 option 161, "" when it announced none.
	// The device chose it: it says what the device claims to be, nothing
	// more.
	MUDURL string `json:"mud_url,omitempty"`
	// FirstSeen and LastSeen are the earliest and latest observation.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// BytesUp counts bytes the device sent, BytesDown bytes it received,
	// both at layer 3 (IP headers included).
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
	// Flows counts the flows the device took part in.
	Flows uint64 `json:"flows"`
}

// Observation is one sighting of a device.
type Observation struct {
	// MAC is the device's hardware address, when HasMAC. A multicast or
	// all-zero MAC is ignored: no device sends from one.
	MAC    [6]byte
	HasMAC bool
	// Addr is the device's IP address; the zero Addr, unspecified,
	// multicast and broadcast addresses are not recorded.
	Addr netip.Addr
	// Time is when it was seen; the zero Time means now.
	Time time.Time
	// Up and Down are bytes the device sent and received.
	Up, Down uint64
	// Flows is how many new flows of the device the sighting counts.
	Flows uint64
	// Name, Zone and Groups are the policy's view of the device (see
	// Identifier); they replace the stored ones. Groups is copied only when
	// it changes, so a caller may pass the same slice every time.
	Name   string
	Zone   string
	Groups []string
}

// Stats are the inventory's own counters.
type Stats struct {
	// Devices is how many devices the inventory holds.
	Devices int
	// Evicted counts devices forgotten because the inventory was full.
	Evicted uint64
	// Leases is how many leases the last read of the leases file found,
	// LeaseLinesSkipped how many of its lines were malformed, and LeaseErr
	// why it could not be read ("" when it could).
	Leases            int
	LeaseLinesSkipped int
	LeaseErr          string
}

// Inventory is the set of devices seen. It is safe for concurrent use.
type Inventory struct {
	opts   Options
	leases leaseCache

	saveMu sync.Mutex // one Save at a time

	mu     sync.Mutex
	byMAC  map[[6]byte]*entry
	byAddr map[netip.Addr]*entry // every address of every device
	// order is the devices in the order they were last observed, for
	// eviction in O(1).
	order   lru.List[*entry]
	evicted uint64
}

// entry is one device. It is only touched under Inventory.mu.
type entry struct {
	mac      [6]byte
	hasMAC   bool
	addrs    []netip.Addr
	name     string
	zone     string
	groups   []string
	hostname string
	mudURL   string
	first    time.Time
	last     time.Time
	up, down uint64
	flows    uint64

	order *lru.Node[*entry] // its place in Inventory.order
}

// New returns an inventory, loaded from opts.StatePath when that exists.
//
// A state file that cannot be parsed is moved aside to StatePath+".corrupt"
// and New returns an empty, working inventory together with a
// *CorruptStateError: the caller should log it and carry on. Any other
// error (the file exists but cannot be read) returns a nil inventory.
func New(opts Options) (*Inventory, error) {
	if opts.MaxDevices <= 0 {
		opts.MaxDevices = DefaultMaxDevices
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	inv := &Inventory{
		opts:   opts,
		leases: leaseCache{path: opts.Leases},
		byMAC:  map[[6]byte]*entry{},
		byAddr: map[netip.Addr]*entry{},
	}
	if opts.StatePath == "" {
		return inv, nil
	}
	removeStaleTemps(opts.StatePath)
	devs, err := loadState(opts.StatePath)
	if err != nil {
		return corruptOrFail(inv, err)
	}
	// Oldest first, so the eviction order is rebuilt and, when the file
	// holds more than fits, the most recently seen are kept.
	slices.SortStableFunc(devs, func(a, b loadedDevice) int { return a.last.Compare(b.last) })
	for _, d := range devs {
		inv.restore(d)
	}
	return inv, nil
}

// UnknownGroup is the group devices outside the policy are reported in.
func (inv *Inventory) UnknownGroup() string { return inv.opts.UnknownGroup }

// Observe records a sighting and reports whether the device is new: never
// seen since it entered the inventory. An observation with neither a usable
// MAC nor a usable address is ignored.
func (inv *Inventory) Observe(o Observation) (newDevice bool) {
	addr := usableAddr(o.Addr)
	hasMAC := o.HasMAC && usableMAC(o.MAC)
	if !hasMAC && !addr.IsValid() {
		return false
	}
	t := o.Time
	if t.IsZero() {
		t = inv.opts.Now()
	}

	inv.mu.Lock()
	defer inv.mu.Unlock()
	var e *entry
	if hasMAC {
		e = inv.byMAC[o.MAC]
		if addr.IsValid() {
			if other := inv.byAddr[addr]; other != nil && other != e {
				if !other.hasMAC {
					// The address was seen before its MAC (from
					// conntrack): it is this device.
					if e == nil {
						other.mac, other.hasMAC = o.MAC, true
						inv.byMAC[o.MAC] = other
						e = other
					} else {
						inv.merge(e, other)
					}
				} else {
					// The address moved to another MAC (DHCP gave it
					// to someone else, or someone took it; the engine
					// judges which).
					other.dropAddr(addr)
					delete(inv.byAddr, addr)
				}
			}
		}
		if e == nil {
			e = inv.insert(&entry{mac: o.MAC, hasMAC: true})
			newDevice = true
		}
	} else {
		e = inv.byAddr[addr]
		if e == nil {
			e = inv.insert(&entry{})
			newDevice = true
		}
	}
	if addr.IsValid() && inv.byAddr[addr] != e {
		inv.addAddr(e, addr)
	}

	e.name, e.zone = o.Name, o.Zone
	if !slices.Equal(e.groups, o.Groups) {
		e.groups = slices.Clone(o.Groups)
	}
	if e.first.IsZero() || t.Before(e.first) {
		e.first = t
	}
	if t.After(e.last) {
		e.last = t
	}
	e.up += o.Up
	e.down += o.Down
	e.flows += o.Flows
	inv.order.Touch(e.order)
	return newDevice
}

// ObserveDHCP records a DHCPv4 client message the device o saw sent: o is
// the sighting of its sender (see Identifier.DHCPObservation), req what
// the message said. The MUD URL (option 161) and the hostname (option 12)
// it carries are kept for the device with o's MAC, the latest replacing
// the one before; a message without them still counts as a sighting. It
// reports whether the device is new, as Observe does.
//
// The client hardware address inside the message is the client's to
// write. The message only speaks for the device whose MAC sent the frame:
// one whose chaddr names another device (to give it a MUD URL, say) is
// ignored whole.
func (inv *Inventory) ObserveDHCP(o Observation, req DHCPRequest) (newDevice bool) {
	if !o.HasMAC || req.ClientMAC != o.MAC || !usableMAC(o.MAC) {
		return false
	}
	newDevice = inv.Observe(o)
	if req.MUDURL == "" && req.Hostname == "" {
		return newDevice
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if e := inv.byMAC[o.MAC]; e != nil {
		if req.MUDURL != "" {
			e.mudURL = req.MUDURL
		}
		if req.Hostname != "" {
			e.hostname = req.Hostname
		}
	}
	return newDevice
}

// Devices returns a copy of every device: devices in the policy first, by
// name, then the others by MAC, then by first address. Hostnames come from
// the leases file, re-read first if it changed.
func (inv *Inventory) Devices() []Device {
	names := inv.leases.get(inv.opts.Now())
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := inv.snapshot(names)
	for i := range out {
		d := &out[i]
		if !d.Known && len(d.Groups) == 0 && inv.opts.UnknownGroup != "" {
			d.Groups = []string{inv.opts.UnknownGroup}
		}
	}
	return out
}

// Stats returns the inventory's counters.
func (inv *Inventory) Stats() Stats {
	ls := inv.leases.stats()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	ls.Devices, ls.Evicted = inv.order.Len(), inv.evicted
	return ls
}

// snapshot copies the devices out, sorted, filling in hostnames from names
// (which may be nil). It must be called with mu held.
func (inv *Inventory) snapshot(names *leaseNames) []Device {
	out := make([]Device, 0, inv.order.Len())
	for n := inv.order.Oldest(); n != nil; n = n.Next() {
		e := n.Value
		if h := names.lookup(e); h != "" {
			e.hostname = h
		}
		d := Device{
			Addrs:     make([]string, len(e.addrs)),
			Name:      e.name,
			Known:     e.name != "",
			Zone:      e.zone,
			Groups:    slices.Clone(e.groups),
			Hostname:  e.hostname,
			MUDURL:    e.mudURL,
			FirstSeen: e.first,
			LastSeen:  e.last,
			BytesUp:   e.up,
			BytesDown: e.down,
			Flows:     e.flows,
		}
		if e.hasMAC {
			d.MAC = net.HardwareAddr(e.mac[:]).String()
		}
		for i, a := range e.addrs {
			d.Addrs[i] = a.String()
		}
		out = append(out, d)
	}
	slices.SortFunc(out, compareDevices)
	return out
}

func compareDevices(a, b Device) int {
	if a.Known != b.Known {
		if a.Known {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	// Devices with a MAC before address-only ones.
	if (a.MAC == "") != (b.MAC == "") {
		if a.MAC != "" {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.MAC, b.MAC); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Addrs, b.Addrs, func(x, y string) int {
		return netip.MustParseAddr(x).Compare(netip.MustParseAddr(y))
	})
}

// insert adds a new device, evicting the least recently observed one when
// the inventory is full. It must be called with mu held.
func (inv *Inventory) insert(e *entry) *entry {
	for inv.order.Len() >= inv.opts.MaxDevices {
		inv.remove(inv.order.Oldest().Value)
		inv.evicted++
	}
	if e.hasMAC {
		inv.byMAC[e.mac] = e
	}
	e.order = inv.order.Push(e)
	return e
}

// remove forgets e entirely.
func (inv *Inventory) remove(e *entry) {
	if e.hasMAC && inv.byMAC[e.mac] == e {
		delete(inv.byMAC, e.mac)
	}
	for _, a := range e.addrs {
		if inv.byAddr[a] == e {
			delete(inv.byAddr, a)
		}
	}
	inv.order.Remove(e.order)
}

// merge folds the address-only record from into the MAC-keyed into.
func (inv *Inventory) merge(into, from *entry) {
	if into.first.IsZero() || (!from.first.IsZero() && from.first.Before(into.first)) {
		into.first = from.first
	}
	if from.last.After(into.last) {
		into.last = from.last
	}
	into.up += from.up
	into.down += from.down
	into.flows += from.flows
	if into.hostname == "" {
		into.hostname = from.hostname
	}
	if into.mudURL == "" {
		into.mudURL = from.mudURL
	}
	addrs := from.addrs
	inv.remove(from)
	for _, a := range addrs {
		if inv.byAddr[a] == nil {
			inv.addAddr(into, a)
		}
	}
}

// addAddr gives a to e, dropping e's oldest address when it has MaxAddrs.
func (inv *Inventory) addAddr(e *entry, a netip.Addr) {
	if len(e.addrs) >= MaxAddrs {
		old := e.addrs[0]
		e.addrs = slices.Delete(e.addrs, 0, 1)
		if inv.byAddr[old] == e {
			delete(inv.byAddr, old)
		}
	}
	e.addrs = append(e.addrs, a)
	inv.byAddr[a] = e
}

func (e *entry) dropAddr(a netip.Addr) {
	if i := slices.Index(e.addrs, a); i >= 0 {
		e.addrs = slices.Delete(e.addrs, i, i+1)
	}
}

// usableAddr returns a as a device address, or the zero Addr when it cannot
// name a device: unspecified (DHCP discovery), multicast or broadcast.
func usableAddr(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}
	}
	return a
}

// usableMAC reports whether m can be a sender's address: not all zeros and
// not a group (multicast or broadcast) address.
func usableMAC(m [6]byte) bool {
	return m != [6]byte{} && m[0]&1 == 0
}
