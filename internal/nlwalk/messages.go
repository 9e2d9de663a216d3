package nlwalk

import "encoding/binary"

// A message is a struct nlmsghdr (a native-endian 32-bit length, header
// included; 16-bit type and flags; 32-bit sequence number and port id)
// and its payload, padded to four bytes.
const msgHeaderLen = 16

// Messages walks the netlink messages of one read:
//
//	m := nlwalk.NewMessages(buf[:n])
//	for m.Next() {
//		switch m.Type() { ... m.Payload() ... }
//	}
//
// The zero Messages walks nothing.
type Messages struct {
	b       []byte // what follows the current message
	typ     uint16
	seq     uint32
	payload []byte
}

// NewMessages returns a walk over the messages in b.
func NewMessages(b []byte) Messages { return Messages{b: b} }

// Next moves to the next message and reports whether there is a whole one.
func (m *Messages) Next() bool {
	n, ok := m.length()
	if !ok || n > len(m.b) {
		return false
	}
	m.typ, m.seq = binary.NativeEndian.Uint16(m.b[4:]), binary.NativeEndian.Uint32(m.b[8:])
	m.payload = m.b[msgHeaderLen:n]
	m.b = m.b[min(align4(n), len(m.b)):]
	return true
}

// length reads the length of the message the walk stands at; ok is false
// when there is no whole header or its length is shorter than one.
func (m *Messages) length() (n int, ok bool) {
	if len(m.b) < msgHeaderLen {
		return 0, false
	}
	n = int(binary.NativeEndian.Uint32(m.b))
	return n, n >= msgHeaderLen
}

// Type returns the current message's type.
func (m *Messages) Type() uint16 { return m.typ }

// Seq returns the current message's sequence number.
func (m *Messages) Seq() uint32 { return m.seq }

// Payload returns what follows the current message's header, without
// padding. It points into the walked buffer.
func (m *Messages) Payload() []byte { return m.payload }

// Cut returns the message that ended the walk because it runs past the end
// of the buffer, with what of its payload the buffer holds. ok is false
// when the walk ended otherwise.
func (m *Messages) Cut() (typ uint16, payload []byte, ok bool) {
	n, whole := m.length()
	if !whole || n <= len(m.b) {
		return 0, nil, false
	}
	return binary.NativeEndian.Uint16(m.b[4:]), m.b[msgHeaderLen:], true
}

// Malformed reports whether the walk ended at a header it cannot use: a
// length shorter than the header, or one running past the buffer (a Cut
// message). Fewer bytes than a header at the end are not malformed.
func (m *Messages) Malformed() bool {
	if len(m.b) < msgHeaderLen {
		return false
	}
	n, ok := m.length()
	return !ok || n > len(m.b)
}
