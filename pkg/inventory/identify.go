package inventory

import (
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Identifier fills in the policy's view of a device. It is built once per
// policy (the group name lists are computed up front, so filling in an
// observation allocates nothing) and is safe for concurrent use.
type Identifier struct {
	pol     *policy.Policy
	groups  [][]string // by device index
	unknown []string   // the unknown-devices group, nil for none
}

// NewIdentifier returns an Identifier for pol.
func NewIdentifier(pol *policy.Policy) *Identifier {
	id := &Identifier{pol: pol, groups: make([][]string, len(pol.Devices))}
	for i, d := range pol.Devices {
		for _, g := range d.Groups {
			id.groups[i] = append(id.groups[i], pol.Groups[g])
		}
	}
	if g := pol.UnknownGroup(); g != policy.None {
		id.unknown = []string{pol.Groups[g]}
	}
	return id
}

// Fill sets o's Name, Zone and Groups. Like the engine, it names the device
// by its MAC first, then by its address. The zone is the policy device's
// zone, else the zone whose networks hold o's address. A device the policy
// does not name gets no name, and the policy's unknown-devices group when
// it is in a local zone, as the engine places it.
func (id *Identifier) Fill(o *Observation) { id.fill(o) }

func (id *Identifier) fill(o *Observation) (dev, zone int32) {
	pol := id.pol
	d := policy.None
	if o.HasMAC {
		d = pol.DeviceByMAC(o.MAC)
	}
	addr := o.Addr.Unmap()
	if d == policy.None && addr.IsValid() {
		d = pol.DeviceByAddr(addr)
	}
	o.Name, o.Groups, o.Zone = "", nil, ""
	z := policy.None
	if d != policy.None {
		dev := &pol.Devices[d]
		o.Name, o.Groups, z = dev.Name, id.groups[d], dev.Zone
	}
	if z == policy.None && addr.IsValid() {
		z = pol.ZoneOfAddr(addr)
	}
	if z != policy.None {
		o.Zone = pol.ZoneName(z)
		if d == policy.None && pol.Zones[z].Local {
			o.Groups = id.unknown
		}
	}
	return d, z
}

// Identify is an IdentifyFunc for Counter: it accepts the devices the
// policy names and any address in a local zone, and refuses the internet
// (zones holding a default route), addresses in no zone and the gateway's
// own addresses.
func (id *Identifier) Identify(a netip.Addr) (Observation, bool) {
	o := Observation{Addr: a}
	d, z := id.fill(&o)
	if id.pol.IsGateway(a.Unmap()) {
		return o, false
	}
	return o, d != policy.None || (z != policy.None && id.pol.Zones[z].Local)
}

// PacketObservation is a sighting of a packet's sender: its source MAC when
// the packet had a link-layer header, its source address and IP length
// when the IP header could be read. Frames without IP (ARP, EAPOL) still
// show that the MAC is there. Malformed packets give no address: their
// headers contradict themselves.
func PacketObservation(p *packet.Packet, t time.Time) Observation {
	o := Observation{MAC: p.SrcMAC, HasMAC: p.HasMAC, Time: t}
	switch p.Kind {
	case packet.KindNotIP, packet.KindMalformed:
	default:
		o.Addr, o.Up = p.Src, uint64(p.Length)
	}
	return o
}

// DHCPObservation is the sighting of a DHCPv4 client message's sender: its
// source MAC, and its source address when it has one (a renewal; a
// client without a lease sends from 0.0.0.0). inZone is the zone of the
// interface the message came in on (policy.None when unknown). ok is false
// for a frame without a MAC, for a message from outside the guarded
// networks (a zone holding a default route: the upstream link's hosts are
// not devices, and no zone at all), and for one whose sender the policy
// places in another zone than the interface it came in on: like an
// address, a MAC proves identity only inside its own zone, so a host on
// another link cannot speak for a device by copying its MAC.
func (id *Identifier) DHCPObservation(p *packet.Packet, inZone int32, t time.Time) (Observation, bool) {
	o := Observation{MAC: p.SrcMAC, HasMAC: p.HasMAC, Addr: usableAddr(p.Src), Time: t}
	if !o.HasMAC {
		return o, false
	}
	d, z := id.fill(&o)
	if inZone >= 0 && int(inZone) < len(id.pol.Zones) {
		if z != policy.None && z != inZone {
			return o, false
		}
		if z == policy.None {
			z = inZone
			o.Zone = id.pol.ZoneName(z)
			if d == policy.None && id.pol.Zones[z].Local {
				o.Groups = id.unknown
			}
		}
	}
	return o, z != policy.None && id.pol.Zones[z].Local
}
