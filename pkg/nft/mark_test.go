package nft

import (
	"fmt"
	"testing"
)

func TestMarksValidate(t *testing.T) {
	for _, tc := range []struct {
		mask uint32
		ok   bool
	}{
		{0x00ff0000, true},
		{0x7, true},
		{0xffffffff, true},
		{0x0000ff00, true},
		{0, false},
		{0x00010000, false}, // one bit: no room for an accepted class
		{0x3, false},        // two bits: no room for a class beside inspecting and tripped
		{0x00ff00ff, false}, // not contiguous
		{0x00050000, false},
	} {
		t.Run(fmt.Sprintf("%#08x", tc.mask), func(t *testing.T) {
			_, err := NewMarks(tc.mask)
			if (err == nil) != tc.ok {
				t.Fatalf("NewMarks(%#08x) error = %v, want ok=%v", tc.mask, err, tc.ok)
			}
		})
	}
}

func TestMarksEncoding(t *testing.T) {
	m := Marks{Mask: 0x00ff0000} // the byte-wide field these values are written for
	if got, want := m.MaxClasses(), 252; got != want {
		t.Errorf("MaxClasses() = %d, want %d", got, want)
	}
	for _, tc := range []struct {
		name  string
		mark  uint32
		want  uint32
		state State
		class uint16
	}{
		{"dropped", m.Dropped(), 0x00010000, StateDropped, 0},
		{"accepted class 0", m.Accepted(0), 0x00020000, StateAccepted, 0},
		{"accepted class 7", m.Accepted(7), 0x00090000, StateAccepted, 7},
		{"accepted highest class", m.Accepted(251), 0x00fd0000, StateAccepted, 251},
		{"class out of range stays unjudged", m.Accepted(252), 0, StateUnjudged, 0},
		{"inspecting", m.Inspecting(), 0x00fe0000, StateInspecting, 0},
		{"tripped", m.Tripped(), 0x00ff0000, StateTripped, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mark != tc.want {
				t.Fatalf("mark = %#08x, want %#08x", tc.mark, tc.want)
			}
			// Foreign bits (mwan3 0x3f00, pbr/SQM low byte) do not change the decoding.
			state, class := m.Decode(tc.mark | 0xff00ffff)
			if state != tc.state || class != tc.class {
				t.Fatalf("Decode(%#08x) = %v, %d; want %v, %d", tc.mark|0xff00ffff, state, class, tc.state, tc.class)
			}
		})
	}
	if got := m.FirstAccepted(); got != 0x00020000 {
		t.Errorf("FirstAccepted() = %#08x", got)
	}
}

func TestMarksApplyPreservesForeignBits(t *testing.T) {
	m := Marks{Mask: 0x00ff0000}
	const mwan3 = 0x00003f00
	const sqm = 0x000000ab
	old := uint32(mwan3|sqm) | m.Dropped()
	got := m.Apply(old, m.Accepted(3))
	if want := uint32(mwan3|sqm) | 0x00050000; got != want {
		t.Fatalf("Apply = %#08x, want %#08x", got, want)
	}
	if got := m.Apply(got, 0); got != mwan3|sqm {
		t.Fatalf("Apply(.., 0) = %#08x, want %#08x", got, mwan3|sqm)
	}
}

func TestMarksSmallField(t *testing.T) {
	m, err := NewMarks(0x70)
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxClasses() != 4 {
		t.Fatalf("MaxClasses() = %d, want 4", m.MaxClasses())
	}
	if m.Dropped() != 0x10 || m.Accepted(0) != 0x20 || m.Accepted(3) != 0x50 || m.Accepted(4) != 0 || m.Inspecting() != 0x60 || m.Tripped() != 0x70 {
		t.Fatalf("dropped %#x accepted %#x %#x %#x inspecting %#x tripped %#x", m.Dropped(), m.Accepted(0), m.Accepted(3), m.Accepted(4), m.Inspecting(), m.Tripped())
	}
}

func TestQueueMethodString(t *testing.T) {
	if QueueNative.String() != "native" || QueueXtables.String() != "xtables" {
		t.Fatalf("got %q %q", QueueNative, QueueXtables)
	}
}

func TestOptionsNormalized(t *testing.T) {
	o, err := Options{Queues: 1, NewFlowRate: 20}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	if o.Marks.Mask != DefaultMarkMask || o.NewFlowBurst != 20 {
		t.Fatalf("defaults not filled: %+v", o)
	}
	for _, bad := range []Options{
		{Queues: 0},
		{QueueBase: 65535, Queues: 2},
		{Queues: 1, Marks: Marks{Mask: 0x00ff00ff}},
	} {
		if _, err := bad.normalized(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// The default field must stay clear of the fixed mark bits of the programs
// a gateway runs beside picoseg (the table on DefaultMarkMask).
func TestDefaultMarkMaskIsClearOfOthers(t *testing.T) {
	for _, other := range []struct {
		who  string
		bits uint32
	}{
		{"Calico IptablesMarkMask", 0xffff0000},
		{"pbr fw_mask", 0x00ff0000},
		{"Tailscale fwmark mask", 0x00ff0000},
		{"Tailscale subnet route mark", 0x40000},
		{"Tailscale bypass mark", 0x80000},
		{"kube-proxy masquerade mark", 0x4000},
		{"kube-proxy drop mark", 0x8000},
		{"mwan3 mmx_mask", 0x3f00},
		{"hand-written fw4 set_mark and SQM classes", 0x7},
	} {
		if DefaultMarkMask&other.bits != 0 {
			t.Errorf("DefaultMarkMask %#x overlaps %s (%#x)", DefaultMarkMask, other.who, other.bits)
		}
	}
	m := DefaultMarks()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.MaxClasses() < 16 {
		t.Errorf("DefaultMarkMask holds %d classes, want room for at least 16", m.MaxClasses())
	}
}

// A mask of all 32 bits is valid, and on a 32-bit router (arm, mips) its
// class count must not wrap negative and refuse every policy.
func TestFullMaskHasClasses(t *testing.T) {
	m, err := NewMarks(0xffffffff)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.MaxClasses(); n <= 0 {
		t.Fatalf("MaxClasses of a full mask = %d, want a positive count", n)
	}
}
