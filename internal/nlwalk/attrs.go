// Package nlwalk walks netlink messages and their attributes in place,
// without allocating: the queue adapter reads every packet with it, and the
// conntrack dump every entry.
//
// Both walks end at the first length they cannot trust (too short, or
// running past the buffer): nothing after it can be trusted to start where
// it seems to. Cut hands out a last message or attribute that a read buffer
// too small cut short, for a caller that can use what came.
package nlwalk

import "encoding/binary"

// An attribute is a native-endian 16-bit length (header included), a
// 16-bit type whose top two bits are flags (NLA_F_NESTED,
// NLA_F_NET_BYTEORDER), and its payload, padded to four bytes.
const (
	flagNested    = 1 << 15
	flagByteOrder = 1 << 14
	headerLen     = 4
)

// Attrs walks the attributes of one buffer:
//
//	s := nlwalk.NewAttrs(b)
//	for s.Next() {
//		switch s.Type() { ... s.Data() ... }
//	}
//
// The zero Attrs walks nothing.
type Attrs struct {
	b    []byte // what follows the current attribute
	typ  uint16
	data []byte
}

// NewAttrs returns a walk over the attributes in b.
func NewAttrs(b []byte) Attrs { return Attrs{b: b} }

// Next moves to the next attribute and reports whether there is a whole
// one.
func (s *Attrs) Next() bool {
	if len(s.b) < headerLen {
		return false
	}
	n := int(binary.NativeEndian.Uint16(s.b))
	if n < headerLen || n > len(s.b) {
		return false
	}
	s.typ = binary.NativeEndian.Uint16(s.b[2:]) &^ (flagNested | flagByteOrder)
	s.data = s.b[headerLen:n]
	s.b = s.b[min(align4(n), len(s.b)):]
	return true
}

// Type returns the current attribute's type, flags cleared.
func (s *Attrs) Type() uint16 { return s.typ }

// Data returns the current attribute's payload, without padding. It points
// into the scanned buffer.
func (s *Attrs) Data() []byte { return s.data }

// Cut returns the attribute that ended the walk because it runs past the
// end of the buffer, with what of its payload the buffer holds: a read
// buffer that was too small cuts the last attribute short, and a caller
// may still use what came. ok is false when the walk ended otherwise.
func (s *Attrs) Cut() (typ uint16, data []byte, ok bool) {
	if len(s.b) < headerLen || int(binary.NativeEndian.Uint16(s.b)) <= len(s.b) {
		return 0, nil, false
	}
	return binary.NativeEndian.Uint16(s.b[2:]) &^ (flagNested | flagByteOrder), s.b[headerLen:], true
}

// Uint32 reads the current attribute's payload as a 32-bit number in
// network byte order, as netfilter writes them; ok is false when the
// payload is too short, and v is then 0.
func (s *Attrs) Uint32() (v uint32, ok bool) {
	if len(s.data) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(s.data), true
}

// Uint64 is Uint32 for a 64-bit number (conntrack's counters).
func (s *Attrs) Uint64() (v uint64, ok bool) {
	if len(s.data) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(s.data), true
}

func align4(n int) int { return (n + 3) &^ 3 }
