package nlwalk

import (
	"encoding/binary"
	"slices"
	"testing"
)

func attr(typ uint16, data ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(headerLen+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	return pad4(append(b, data...))
}

// pad4 pads b to four bytes, as netlink pads messages and attributes.
func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

type seen struct {
	typ  uint16
	data []byte
}

func walk(b []byte) (out []seen, s Attrs) {
	s = NewAttrs(b)
	for s.Next() {
		out = append(out, seen{s.Type(), s.Data()})
	}
	return out, s
}

func equal(a, b []seen) bool {
	return slices.EqualFunc(a, b, func(x, y seen) bool { return x.typ == y.typ && slices.Equal(x.data, y.data) })
}

func TestAttrs(t *testing.T) {
	two := append(attr(1, 0xaa), attr(2|flagNested, 1, 2, 3, 4, 5)...)
	want := []seen{{1, []byte{0xaa}}, {2, []byte{1, 2, 3, 4, 5}}}
	if got, s := walk(two); !equal(got, want) {
		t.Errorf("walk = %v, want %v (flags cleared, padding dropped)", got, want)
	} else if _, _, ok := s.Cut(); ok {
		t.Error("Cut after a whole buffer")
	}

	// The last attribute unpadded at the end of the buffer still counts.
	last := append(attr(1, 0xaa), attr(3, 9, 9)[:6]...)
	if got, _ := walk(last); !equal(got, []seen{{1, []byte{0xaa}}, {3, []byte{9, 9}}}) {
		t.Errorf("unpadded last attribute: %v", got)
	}

	// A length below the header's ends the walk, even with bytes left.
	bad := append(attr(1, 0xaa), 2, 0, 7, 0, 0, 0, 0, 0)
	if got, s := walk(bad); !equal(got, want[:1]) {
		t.Errorf("short length: %v", got)
	} else if _, _, ok := s.Cut(); ok {
		t.Error("Cut for a malformed attribute")
	}

	// Cut short by the buffer: not walked, but Cut hands out what came.
	cut := append(attr(1, 0xaa), attr(10, 1, 2, 3, 4, 5, 6, 7, 8)[:9]...)
	got, s := walk(cut)
	if !equal(got, want[:1]) {
		t.Errorf("cut buffer walked %v", got)
	}
	if typ, data, ok := s.Cut(); !ok || typ != 10 || !slices.Equal(data, []byte{1, 2, 3, 4, 5}) {
		t.Errorf("Cut = %d %v %v, want 10 [1 2 3 4 5] true", typ, data, ok)
	}

	nums := NewAttrs(append(attr(1, 0, 0, 1, 2), attr(2, 1, 2)...))
	if !nums.Next() {
		t.Fatal("no attribute")
	}
	if v, ok := nums.Uint32(); !ok || v != 0x102 {
		t.Errorf("Uint32 = %#x %v, want 0x102 (network byte order)", v, ok)
	}
	if v, ok := nums.Uint64(); ok || v != 0 {
		t.Errorf("Uint64 of 4 bytes = %d %v, want 0 false", v, ok)
	}
	if !nums.Next() {
		t.Fatal("no second attribute")
	}
	if v, ok := nums.Uint32(); ok || v != 0 {
		t.Errorf("Uint32 of 2 bytes = %d %v, want 0 false", v, ok)
	}

	var zero Attrs
	if zero.Next() {
		t.Error("the zero Attrs walked something")
	}
}

func TestAttrsDoesNotAllocate(t *testing.T) {
	b := append(attr(1, 0xaa), attr(2, 1, 2, 3, 4)...)
	n := testing.AllocsPerRun(100, func() {
		for s := NewAttrs(b); s.Next(); {
			_ = s.Data()
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per walk", n)
	}
}
