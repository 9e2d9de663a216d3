package engine

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/policy"
)

// memo is what a worker remembers of the policy's answers: pure functions
// of the generation's immutable policy, each kept with the generation id
// that gave it, so that no answer outlives a reload. Each cache is a small
// array of slots picked by a hash of the question; a slot holding another
// question or an older generation is answered afresh.
type memo struct {
	addrs   addrCache
	macs    macCache
	matches matchCache
	windows windowCache
}

// slotOf picks one of 1<<bits slots for a question hashed to h.
func slotOf(h uint64, bits uint) uint64 { return (h * 0x9e3779b97f4a7c15) >> (64 - bits) }

// addrHash folds an address's 16 bytes into 64 bits.
func addrHash(a netip.Addr) uint64 {
	b := a.As16()
	return binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
}

// addrFacts is what the policy says of one address, as the identify and
// gateway stages ask it. Every fact is a pure function of the generation's
// immutable policy, so a remembered answer is the answer, for as long as
// the generation is current.
type addrFacts struct {
	gen  uint32 // generation id; 0: an empty slot (ids start at 1)
	addr netip.Addr
	// device is Policy.DeviceByAddr(addr).
	device int32
	// zone is Policy.ZoneOfAddr(addr): the zone whose network most
	// specifically holds it.
	zone int32
	// gateway is Policy.IsGateway(addr.Unmap()), which is also
	// Policy.IsGatewayDst(addr).
	gateway bool
	// broadcast is Policy.IsLinkBroadcast(addr).
	broadcast bool
}

// localZone is Policy.LocalZoneOf(addr).
func (f addrFacts) localZone(pol *policy.Policy) int32 {
	if f.zone < 0 || !pol.Zones[f.zone].Local {
		return policy.None
	}
	return f.zone
}

// addrCache remembers the facts of the addresses a worker met last. New
// flows come in runs from and to the same few addresses (a device's burst,
// one server's clients), and their facts are several map lookups each
// (device, gateway, broadcast, a longest-prefix match for the zone).
type addrCache [1 << addrCacheBits]addrFacts

// addrCacheBits: a worker remembers 1<<addrCacheBits addresses.
const addrCacheBits = 6

// get returns the facts of a under generation g.
func (c *addrCache) get(g *generation, a netip.Addr) addrFacts {
	f := &c[slotOf(addrHash(a), addrCacheBits)]
	if f.gen == g.id && f.addr == a {
		return *f
	}
	pol := g.policy
	*f = addrFacts{gen: g.id, addr: a, device: pol.DeviceByAddr(a), zone: pol.ZoneOfAddr(a),
		gateway: pol.IsGateway(a.Unmap()), broadcast: pol.IsLinkBroadcast(a)}
	return *f
}

// macFacts is Policy.DeviceByMAC(mac) under a generation.
type macFacts struct {
	gen    uint32 // 0: an empty slot
	mac    [6]byte
	device int32
}

// macCache remembers the devices of the last hardware addresses a worker
// met.
type macCache [1 << macCacheBits]macFacts

// macCacheBits: a worker remembers 1<<macCacheBits hardware addresses.
const macCacheBits = 4

// get returns Policy.DeviceByMAC(mac) under generation g.
func (c *macCache) get(g *generation, mac [6]byte) int32 {
	h := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	f := &c[slotOf(h, macCacheBits)]
	if f.gen != g.id || f.mac != mac {
		*f = macFacts{gen: g.id, mac: mac, device: g.policy.DeviceByMAC(mac)}
	}
	return f.device
}

// matchEntry is one answer of the micro layer: the allow rule Policy.Match
// found for a source, a destination and a service under a generation.
type matchEntry struct {
	gen      uint32 // 0: an empty slot
	src, dst policy.Side
	proto    uint8
	port     uint16
	rule     int32
}

// matchCache remembers the micro layer's last answers: new flows come in
// runs that ask the same question with another source port. Without "dns:"
// destinations an answer is a pure function of the question and the
// immutable policy; with them it also follows the names table, which
// changes with every DNS answer, and nothing is remembered
// (Policy.MatchUsesNames).
type matchCache [1 << matchCacheBits]matchEntry

// matchCacheBits: a worker remembers 1<<matchCacheBits answers.
const matchCacheBits = 6

// match returns Policy.Match(src, dst, proto, port) under generation g.
func (c *matchCache) match(g *generation, src, dst *policy.Side, proto uint8, port uint16, s *policy.Scratch) int32 {
	pol := g.policy
	if pol.MatchUsesNames() {
		return pol.Match(src, dst, proto, port, s)
	}
	h := addrHash(src.Addr) ^ addrHash(dst.Addr)*31 ^ uint64(port)<<48 ^ uint64(proto)<<40 ^ uint64(uint32(src.Device))<<20 ^ uint64(uint32(dst.Device))
	e := &c[slotOf(h, matchCacheBits)]
	if e.gen == g.id && e.src == *src && e.dst == *dst && e.proto == proto && e.port == port {
		return e.rule
	}
	*e = matchEntry{gen: g.id, src: *src, dst: *dst, proto: proto, port: port, rule: pol.Match(src, dst, proto, port, s)}
	return e.rule
}

// windowEntry is windowEnd's answer for one rule during one minute.
type windowEntry struct {
	gen    uint32 // 0: an empty slot
	rule   int32
	minute int64 // unix minute (now / time.Minute)
	until  int64
	ok     bool
}

// windowCache remembers the time-window answers of the rules a worker
// judged in the current minute. windowEnd reads the local date, weekday
// and minute of the day, and every instant of one UTC minute is one local
// minute (zone offsets and their changes are whole minutes), so the answer
// holds for the whole minute; working it out (a time zone conversion and
// a calendar split) cost a rule with hours more than the rest of its pico
// checks.
type windowCache [windowCacheSlots]windowEntry

// windowCacheSlots is how many rules' answers a worker remembers.
const windowCacheSlots = 16

// end returns windowEnd(r, now, the policy's time zone) for rule index ri
// under generation g.
func (c *windowCache) end(g *generation, ri int32, r *policy.Rule, now int64) (int64, bool) {
	if now < 0 {
		// Division rounds towards zero: the minutes before 1970 would
		// not be whole ones.
		return windowEnd(r, now, g.policy.Location)
	}
	minute := now / int64(time.Minute)
	e := &c[uint32(ri)%windowCacheSlots]
	if e.gen != g.id || e.rule != ri || e.minute != minute {
		until, ok := windowEnd(r, now, g.policy.Location)
		*e = windowEntry{gen: g.id, rule: ri, minute: minute, until: until, ok: ok}
	}
	return e.until, e.ok
}
