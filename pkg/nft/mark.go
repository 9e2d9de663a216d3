package nft

import (
	"fmt"
	"math"
	"math/bits"
)

// DefaultMarkMask is the mark field picoseg uses unless configured otherwise:
// five bits, 28 pico classes. It is clear of the fixed bits of every program
// a gateway commonly runs beside picoseg, as they document them:
//
//	bits          who
//	0xffff0000    Calico (default IptablesMarkMask)
//	0x00ff0000    pbr and vpn-policy-routing (fw_mask 0x00ff0000),
//	              Tailscale (fwmark mask 0xff0000: 0x40000 subnet route,
//	              0x80000 bypass)
//	0x0000c000    kube-proxy and flannel (0x4000 masquerade, 0x8000 drop)
//	0x00003f00    mwan3 (mmx_mask 0x3f00)
//	0x00000007    left free: the small marks people set by hand in fw4
//	              rules (set_mark 0x1) and SQM's classification (1..3)
//	0x000000f8    picoseg
//
// fw4 itself sets no fixed mark. Only the low byte is free of all of the
// above, and its lowest values are the ones hand-written rules use, so
// picoseg takes the byte's upper five bits. A network that uses those bits
// sets mark_mask to another contiguous run of at least three free bits.
const DefaultMarkMask uint32 = 0x000000f8

// State is what the picoseg bits of a mark say about a flow.
type State uint8

// The states a flow's mark can encode.
const (
	// StateUnjudged means no verdict yet: the flow's packets are queued.
	StateUnjudged State = iota
	// StateDropped means the flow was judged and dropped.
	StateDropped
	// StateAccepted means the flow was accepted into a pico class.
	StateAccepted
	// StateTripped is a packet of an accepted flow that broke one of its
	// class's kernel checks and was queued so that userspace decides. It
	// is a packet mark; a conntrack mark only carries it while no daemon
	// answered the queue (fail-open).
	StateTripped
	// StateInspecting means the flow's application is being identified:
	// the kernel passes the packets the checkers never read (the
	// responder's, and the opener's TCP segments without payload) and
	// queues the rest (inspect_linux.go).
	StateInspecting
)

// String returns the lower-case name of the state.
func (s State) String() string {
	switch s {
	case StateUnjudged:
		return "unjudged"
	case StateDropped:
		return "dropped"
	case StateAccepted:
		return "accepted"
	case StateTripped:
		return "tripped"
	case StateInspecting:
		return "inspecting"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Field values inside the mask.
const (
	valueUnjudged      = 0
	valueDropped       = 1
	valueFirstAccepted = 2
)

// Marks maps flow states into the contiguous bit field Mask of a packet or
// conntrack mark. Inside the field, value 0 means unjudged, 1 dropped,
// 2+c accepted with pico class c, the value just below the highest a flow
// under inspection, and the highest value (all ones) a tripped kernel
// check. Inspecting sits above every class, so the fast path's class range
// never takes it, and at or above FirstAccepted, so the rules that queue a
// SYN or an ICMP error on an accepted flow queue them on such a flow too. Bits outside Mask belong to other programs and are
// preserved by every helper here.
//
// The zero value is not usable; use NewMarks or set Mask and call Validate.
type Marks struct {
	// Mask selects the bits picoseg owns. It must be contiguous and at
	// least three bits wide.
	Mask uint32
}

// NewMarks returns Marks for mask, or an error if mask is unusable.
func NewMarks(mask uint32) (Marks, error) {
	m := Marks{Mask: mask}
	return m, m.Validate()
}

// DefaultMarks returns Marks over DefaultMarkMask.
func DefaultMarks() Marks { return Marks{Mask: DefaultMarkMask} }

// Validate reports whether Mask is a contiguous run of at least three bits.
func (m Marks) Validate() error {
	if m.Mask == 0 {
		return fmt.Errorf("nft: mark mask is zero")
	}
	field := m.Mask >> m.shift()
	if field&(field+1) != 0 {
		return fmt.Errorf("nft: mark mask %#08x is not contiguous", m.Mask)
	}
	if bits.OnesCount32(m.Mask) < minMarkBits {
		return fmt.Errorf("nft: mark mask %#08x is too narrow: need at least three bits (dropped, inspecting, tripped and accepted classes)", m.Mask)
	}
	return nil
}

// minMarkBits is the narrowest usable field: unjudged, dropped, at least
// one class, inspecting and tripped are five values.
const minMarkBits = 3

func (m Marks) shift() uint { return uint(bits.TrailingZeros32(m.Mask)) }

func (m Marks) value(v uint32) uint32 { return (v << m.shift()) & m.Mask }

// MaxClasses is the number of pico classes the field can encode; classes
// are numbered 0..MaxClasses()-1. The policy compiler must reject policies
// with more classes than this.
func (m Marks) MaxClasses() int {
	if m.Mask == 0 {
		return 0
	}
	// The top value is Tripped and the one below it Inspecting, not
	// classes. A full 32-bit field holds
	// more classes than an int counts on a 32-bit router: cap it there
	// (int64 first, so the field never turns negative on the way).
	n := int64(m.Mask>>m.shift()) - valueFirstAccepted - 1
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	return int(n)
}

// Tripped returns the field bits a kernel check sets on a packet it queues
// for userspace to judge again.
func (m Marks) Tripped() uint32 { return m.Mask }

// Inspecting returns the field bits for a flow whose application is being
// identified: the value just below Tripped.
func (m Marks) Inspecting() uint32 { return m.value(m.Mask>>m.shift() - 1) }

// Accepted returns the field bits for a flow accepted into class. It returns
// 0 (unjudged, so the flow keeps being queued: neither silently accepted nor
// silently dropped) if class does not fit in the field.
func (m Marks) Accepted(class uint16) uint32 {
	if int(class) >= m.MaxClasses() {
		return 0
	}
	return m.value(uint32(class) + valueFirstAccepted)
}

// Dropped returns the field bits for a dropped flow.
func (m Marks) Dropped() uint32 { return m.value(valueDropped) }

// FirstAccepted returns the smallest field value that means accepted, as it
// appears in a mark: every mark whose field is at least this is accepted.
func (m Marks) FirstAccepted() uint32 { return m.value(valueFirstAccepted) }

// Decode reads the state and, for accepted flows, the class from mark.
// Bits outside the mask are ignored.
func (m Marks) Decode(mark uint32) (State, uint16) {
	if m.Mask == 0 {
		return StateUnjudged, 0
	}
	v := (mark & m.Mask) >> m.shift()
	switch v {
	case valueUnjudged:
		return StateUnjudged, 0
	case valueDropped:
		return StateDropped, 0
	case m.Mask >> m.shift():
		return StateTripped, 0
	case m.Mask>>m.shift() - 1:
		return StateInspecting, 0
	}
	return StateAccepted, uint16(v - valueFirstAccepted)
}

// Apply returns old with the picoseg field replaced by the field bits of
// state; the bits outside the mask are those of old.
func (m Marks) Apply(old, state uint32) uint32 {
	return old&^m.Mask | state&m.Mask
}
