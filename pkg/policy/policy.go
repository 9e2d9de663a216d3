package policy

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
)

// None marks "no device", "no zone" or "no rule" in indexes.
const None int32 = -1

// Policy is a compiled, immutable policy.
type Policy struct {
	Mode     config.Mode
	Location *time.Location
	// Hash identifies the policy text (sha256 of the config files' bytes
	// when known, else of the compiled rules' names).
	Hash string
	// Files lists the files the policy came from.
	Files []string

	Zones    []Zone
	Devices  []Device
	Groups   []string
	Segments []Segment
	// Rules are the policy's [[allow]] rules, in order, followed by the
	// gateway's default services ("default:dns").
	Rules []Rule
	// UserRules is how many of Rules the policy wrote.
	UserRules int
	// Classes are the pico classes, indexed by class: the kernel checks
	// their fast-pathed flows are held to. Class 0 has no checks; rules
	// with the same checks share a class.
	Classes []Class

	zoneByIface map[string]int32
	zoneNets    prefixSet
	devByMAC    map[[6]byte]int32
	devByAddr   map[netip.Addr]int32
	gateway     map[netip.Addr]bool
	broadcast   map[netip.Addr]bool // the zones' directed broadcast addresses
	// segment is a dense (zones+1) × (zones+2) matrix: rows are sources,
	// columns destinations; the last row and the next-to-last column stand
	// for "in no zone", the last column for the gateway itself.
	segment []segmentCell
	// pairs indexes allow rules by source selector, then destination
	// selector.
	pairs  map[selector]map[selector]*serviceIndex
	netSel prefixSet // the net:CIDR selectors rules use
	netIDs map[netip.Prefix]int32
	// gatewayDefaults are the services allowed to the gateway by default.
	gatewayDefaults []gatewayDefault
	// unknownGroup is the group an unknown device in a local zone belongs
	// to ([inventory] unknown_group), None for none.
	unknownGroup int32
}

// Zone is a compiled zone.
type Zone struct {
	Name         string
	Interfaces   []string
	Networks     []netip.Prefix
	BridgeFilter bool
	// PortRouters are config.Zone.PortRouters.
	PortRouters [][6]byte
	// Local is false for a zone holding a default route (0.0.0.0/0 or
	// ::/0): the internet's addresses are not devices.
	Local bool
}

// Device is a compiled device.
type Device struct {
	Name   string
	HasMAC bool
	MAC    [6]byte
	Addrs  []netip.Addr
	Groups []int32
	Zone   int32 // zone of its first address, None when unknown
}

// HasAddr reports whether a is one of the device's own addresses.
func (d *Device) HasAddr(a netip.Addr) bool {
	for _, x := range d.Addrs {
		if x == a {
			return true
		}
	}
	return false
}

// Segment is a compiled [[segment]] rule.
type Segment struct {
	From, To string
	Action   config.SegmentAction
	Pos      config.Pos
}

// Name is how events and explain name the segment rule.
func (s *Segment) Name() string { return s.From + "->" + s.To }

type segmentCell struct {
	action config.SegmentAction
	rule   int32 // index into Segments, None for the default deny
}

// Rule is a compiled [[allow]] rule with its pico constraints.
type Rule struct {
	Name     string
	From, To string // as written, for people
	Pos      config.Pos
	// Pico reports whether any pico constraint is set.
	Pico       bool
	Hours      []config.TimeRange
	Days       config.Weekdays
	HasSize    bool
	SizeMin    uint16
	SizeMax    uint16
	MaxFlow    uint64
	MaxDevice  uint64
	MaxPer     time.Duration
	MinDevice  uint64
	MinPer     time.Duration
	NewFlows   int
	NewFlowPer time.Duration
	// FanPeers and FanPorts bound the distinct peers, and distinct ports
	// on one peer, a device reaches under the rule within FanWindow (0:
	// no bound).
	FanPeers, FanPorts int
	FanWindow          time.Duration
	// MinSubjects lists the known devices the lower volume bound watches:
	// those the rule's source covers.
	MinSubjects []int32
	// Class is the pico class its accepted flows are marked with, for the
	// kernel's checks on the fast path.
	Class uint16
	// App checks the application the rule's flows carry (nil: no
	// application constraint); AppAllowUnidentified accepts a flow it
	// could not identify within the inspection budget.
	App                  appid.Checker
	AppAllowUnidentified bool
}

// Options carries facts about the gateway that the policy file does not
// hold.
type Options struct {
	// GatewayAddrs are the gateway's own addresses, matched by "gateway".
	GatewayAddrs []netip.Addr
	// Source is the policy text, hashed for status when set.
	Source []byte
}

// Compile builds the indexes of a validated config. The config must come
// from config.Load or config.Parse: Compile trusts that names resolve.
func Compile(cfg *config.Config, opts Options) (*Policy, error) {
	p := &Policy{
		Mode:         cfg.Daemon.Mode,
		Location:     cfg.Daemon.Timezone,
		Files:        cfg.Files,
		zoneByIface:  map[string]int32{},
		devByMAC:     map[[6]byte]int32{},
		devByAddr:    map[netip.Addr]int32{},
		gateway:      map[netip.Addr]bool{},
		pairs:        map[selector]map[selector]*serviceIndex{},
		netIDs:       map[netip.Prefix]int32{},
		unknownGroup: None,
	}
	if p.Location == nil {
		p.Location = time.Local
	}
	zoneID := p.compileZones(cfg.Zones)
	groupID := map[string]int32{}
	for i, g := range cfg.Groups {
		groupID[g.Name] = int32(i)
		p.Groups = append(p.Groups, g.Name)
	}
	if g := cfg.Inventory.UnknownGroup; g != "" {
		id, ok := groupID[g]
		if !ok {
			return nil, fmt.Errorf("%s: unknown_group %q is not a group", cfg.Inventory.Pos, g)
		}
		p.unknownGroup = id
	}
	deviceID, err := p.compileDevices(cfg.Devices, groupID)
	if err != nil {
		return nil, err
	}
	if err := p.compileSegments(cfg.Segments, zoneID); err != nil {
		return nil, err
	}
	names := resolver{zone: zoneID, group: groupID, device: deviceID}
	if err := p.compileRules(cfg.Allows, names); err != nil {
		return nil, err
	}
	p.UserRules = len(p.Rules)
	if err := p.compileGateway(cfg, opts, names); err != nil {
		return nil, err
	}
	p.classify()
	sum := sha256.New()
	if opts.Source != nil {
		sum.Write(opts.Source)
	} else {
		for _, r := range p.Rules {
			fmt.Fprintf(sum, "%s|%s|%s\n", r.Name, r.From, r.To)
		}
	}
	p.Hash = fmt.Sprintf("%x", sum.Sum(nil))[:16]
	return p, nil
}

// compileZones indexes the zones by interface and network, and returns
// their ids by name.
func (p *Policy) compileZones(zones []config.Zone) map[string]int32 {
	zoneID := map[string]int32{}
	for i, z := range zones {
		zoneID[z.Name] = int32(i)
		local := true
		for _, n := range z.Networks {
			if n.Bits() == 0 {
				local = false
			}
		}
		p.Zones = append(p.Zones, Zone{Name: z.Name, Interfaces: z.Interfaces, Networks: z.Networks, BridgeFilter: z.BridgeFilter, PortRouters: z.PortRouters, Local: local})
		for _, ifname := range z.Interfaces {
			p.zoneByIface[ifname] = int32(i)
		}
		for _, n := range z.Networks {
			p.zoneNets.add(n, int32(i))
		}
	}
	return zoneID
}

// compileDevices indexes the devices by MAC and address, and returns their
// ids by name. Two devices with one address or one MAC are an error.
func (p *Policy) compileDevices(devices []config.Device, groupID map[string]int32) (map[string]int32, error) {
	deviceID := map[string]int32{}
	for i, d := range devices {
		id := int32(i)
		deviceID[d.Name] = id
		dev := Device{Name: d.Name, HasMAC: d.HasMAC, MAC: d.MAC, Zone: None}
		for _, a := range d.IPs {
			a = a.Unmap()
			dev.Addrs = append(dev.Addrs, a)
			if _, dup := p.devByAddr[a]; dup {
				return nil, fmt.Errorf("%s: address %s belongs to two devices", d.Pos, a)
			}
			p.devByAddr[a] = id
		}
		if len(dev.Addrs) > 0 {
			dev.Zone = p.ZoneOfAddr(dev.Addrs[0])
		}
		for _, g := range d.Groups {
			gid, ok := groupID[g]
			if !ok {
				return nil, fmt.Errorf("%s: unknown group %q", d.Pos, g)
			}
			dev.Groups = append(dev.Groups, gid)
		}
		if d.HasMAC {
			if _, dup := p.devByMAC[d.MAC]; dup {
				return nil, fmt.Errorf("%s: MAC address belongs to two devices", d.Pos)
			}
			p.devByMAC[d.MAC] = id
		}
		p.Devices = append(p.Devices, dev)
	}
	return deviceID, nil
}

func (p *Policy) compileSegments(segs []config.Segment, zoneID map[string]int32) error {
	// Rows are source zones and "in no zone"; columns the same and, last,
	// the gateway itself, which only a segment naming it reaches.
	n := len(p.Zones) + 1
	cols := n + 1
	p.segment = make([]segmentCell, n*cols)
	specificity := make([]int, n*cols)
	for i := range p.segment {
		p.segment[i] = segmentCell{action: config.SegmentDeny, rule: None}
	}
	ids := func(name string) ([]int32, bool, error) {
		if name == config.GatewayZoneName {
			return []int32{int32(n)}, false, nil
		}
		if name == "*" {
			all := make([]int32, n)
			for i := range all {
				all[i] = int32(i)
			}
			return all, true, nil
		}
		id, ok := zoneID[name]
		if !ok {
			return nil, false, fmt.Errorf("unknown zone %q", name)
		}
		return []int32{id}, false, nil
	}
	for si, s := range segs {
		p.Segments = append(p.Segments, Segment{From: s.From, To: s.To, Action: s.Action, Pos: s.Pos})
		froms, fromWild, err := ids(s.From)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Pos, err)
		}
		tos, toWild, err := ids(s.To)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Pos, err)
		}
		// A named zone beats "*"; a named source beats a named
		// destination; among equals the first written wins.
		spec := 1
		if !fromWild {
			spec += 2
		}
		if !toWild {
			spec++
		}
		for _, f := range froms {
			for _, t := range tos {
				if int(f) == n {
					// "gateway" is only a destination (config refuses
					// it as a source).
					return fmt.Errorf("%s: the gateway cannot be a segment's source", s.Pos)
				}
				c := int(f)*cols + int(t)
				if spec > specificity[c] {
					specificity[c] = spec
					p.segment[c] = segmentCell{action: s.Action, rule: int32(si)}
				}
			}
		}
	}
	return nil
}

// ZoneOfAddr returns the zone whose network most specifically holds a, or
// None.
func (p *Policy) ZoneOfAddr(a netip.Addr) int32 {
	if v, ok := p.zoneNets.longest(a.Unmap()); ok {
		return v[0]
	}
	return None
}

// ZoneOfInterface returns the zone an interface belongs to, or None.
func (p *Policy) ZoneOfInterface(name string) int32 {
	if z, ok := p.zoneByIface[name]; ok {
		return z
	}
	return None
}

// DeviceByMAC returns the device with that hardware address, or None.
func (p *Policy) DeviceByMAC(mac [6]byte) int32 {
	if d, ok := p.devByMAC[mac]; ok {
		return d
	}
	return None
}

// DeviceByAddr returns the device that owns the address, or None.
func (p *Policy) DeviceByAddr(a netip.Addr) int32 {
	if d, ok := p.devByAddr[a]; ok {
		return d
	}
	return None
}

// UnknownGroup returns the group unknown local devices are placed in, or
// None.
func (p *Policy) UnknownGroup() int32 { return p.unknownGroup }

// IsGateway reports whether a is one of the gateway's own addresses.
func (p *Policy) IsGateway(a netip.Addr) bool { return p.gateway[a] }

// Segment returns the segment layer's action from zone to zone (None for
// "in no zone") and the deciding segment rule, None for the default deny.
func (p *Policy) Segment(from, to int32) (config.SegmentAction, int32) {
	n := int32(len(p.Zones)) + 1
	if from == Gateway {
		// The gateway's own traffic is never judged as a flow from it.
		return config.SegmentDeny, None
	}
	if from < 0 || from >= n {
		from = n - 1
	}
	switch {
	case to == Gateway:
		to = n
	case to < 0 || to >= n:
		to = n - 1
	}
	c := p.segment[from*(n+1)+to]
	return c.action, c.rule
}

// ZoneName names zone z, "-" for None, "gateway" for the gateway.
func (p *Policy) ZoneName(z int32) string {
	if z == Gateway {
		return config.GatewayZoneName
	}
	if z < 0 || int(z) >= len(p.Zones) {
		return "-"
	}
	return p.Zones[z].Name
}

// DeviceName names device d, "" for None.
func (p *Policy) DeviceName(d int32) string {
	if d < 0 || int(d) >= len(p.Devices) {
		return ""
	}
	return p.Devices[d].Name
}
