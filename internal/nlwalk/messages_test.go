package nlwalk

import (
	"encoding/binary"
	"slices"
	"testing"
)

func message(typ uint16, seq uint32, payload ...byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(msgHeaderLen+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return pad4(append(b, payload...))
}

type msg struct {
	typ     uint16
	seq     uint32
	payload []byte
}

func walkMessages(b []byte) (out []msg, m Messages) {
	m = NewMessages(b)
	for m.Next() {
		out = append(out, msg{m.Type(), m.Seq(), m.Payload()})
	}
	return out, m
}

func sameMessages(a, b []msg) bool {
	return slices.EqualFunc(a, b, func(x, y msg) bool {
		return x.typ == y.typ && x.seq == y.seq && slices.Equal(x.payload, y.payload)
	})
}

func TestMessages(t *testing.T) {
	two := append(message(3, 7, 1, 2, 3), message(2, 8)...)
	want := []msg{{3, 7, []byte{1, 2, 3}}, {2, 8, nil}}
	got, m := walkMessages(two)
	if !sameMessages(got, want) || m.Malformed() {
		t.Errorf("walk = %v, malformed %v; want %v", got, m.Malformed(), want)
	}
	if _, _, ok := m.Cut(); ok {
		t.Error("Cut after a whole buffer")
	}

	// A few stray bytes at the end are not a message, nor malformed.
	if got, m := walkMessages(append(message(3, 7, 1, 2, 3), 0, 0, 0, 0)); !sameMessages(got, want[:1]) || m.Malformed() {
		t.Errorf("stray bytes: %v, malformed %v", got, m.Malformed())
	}

	// A length below the header's ends the walk, and is malformed.
	bad := append(message(3, 7, 1, 2, 3), message(2, 8)...)
	binary.NativeEndian.PutUint32(bad[len(message(3, 7, 1, 2, 3)):], 8)
	if got, m := walkMessages(bad); !sameMessages(got, want[:1]) || !m.Malformed() {
		t.Errorf("short length: %v, malformed %v", got, m.Malformed())
	} else if _, _, ok := m.Cut(); ok {
		t.Error("Cut for a malformed header")
	}

	// Cut short by the read buffer: malformed for a walk that needs whole
	// messages, and Cut hands out what came.
	cut := append(message(3, 7, 1, 2, 3), message(9, 9, 4, 5, 6, 7, 8)[:18]...)
	got, m = walkMessages(cut)
	if !sameMessages(got, want[:1]) || !m.Malformed() {
		t.Errorf("cut buffer: %v, malformed %v", got, m.Malformed())
	}
	if typ, payload, ok := m.Cut(); !ok || typ != 9 || !slices.Equal(payload, []byte{4, 5}) {
		t.Errorf("Cut = %d %v %v, want 9 [4 5] true", typ, payload, ok)
	}

	// An unpadded last message whose length is not a multiple of four
	// ends the buffer without running past it.
	last := message(3, 7, 1, 2, 3)[:msgHeaderLen+3]
	if got, m := walkMessages(last); !sameMessages(got, want[:1]) || m.Malformed() {
		t.Errorf("unpadded last message: %v, malformed %v", got, m.Malformed())
	}
}

func TestMessagesDoNotAllocate(t *testing.T) {
	b := append(message(3, 7, 1, 2, 3), message(2, 8)...)
	n := testing.AllocsPerRun(100, func() {
		for m := NewMessages(b); m.Next(); {
			_ = m.Payload()
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per walk", n)
	}
}
