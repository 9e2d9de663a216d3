package conntrack

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestFake(t *testing.T) {
	var c Fake
	f := Flow{Proto: 6, Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("198.51.100.2"), SrcPort: 40000, DstPort: 8080, Mark: 0x3f00, ID: 7}
	c.Add(f)
	c.Add(Flow{Proto: 17, Src: f.Src, Dst: f.Dst, SrcPort: 5353, DstPort: 53})

	if err := c.SetMark(f, 0x00020000, 0x00ff0000); err != nil {
		t.Fatal(err)
	}
	flows, _ := c.Flows(context.Background())
	if flows[0].Mark != 0x00023f00 {
		t.Fatalf("mark = %#08x, want 0x00023f00", flows[0].Mark)
	}
	n, err := c.ClearMarks(0x00ff0000)
	if err != nil || n != 1 {
		t.Fatalf("ClearMarks = %d, %v; want 1", n, err)
	}
	if flows, _ := c.Flows(context.Background()); flows[0].Mark != 0x3f00 {
		t.Fatalf("mark after ClearMarks = %#08x", flows[0].Mark)
	}
	stale := f
	stale.ID = 8 // the tuple was reused by a newer entry
	if err := c.Delete(stale); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of another id: %v, want ErrNotFound", err)
	}
	if err := c.Delete(f); err != nil {
		t.Fatal(err)
	}
	if flows, _ := c.Flows(context.Background()); len(flows) != 1 {
		t.Fatalf("%d flows left, want 1", len(flows))
	}
	if err := c.SetMark(Flow{Proto: 6, Src: f.Src, Dst: netip.MustParseAddr("2001:db8::1")}, 1, 1); err == nil {
		t.Fatal("mixed families accepted")
	}
}

// The fake fails as the kernel code does: a flow that is gone is an error
// that wraps ErrNotFound and names the flow, so callers written against the
// fake with == instead of errors.Is break in their tests, not in production.
func TestFakeNotFoundIsTheRealError(t *testing.T) {
	var c Fake
	f := Flow{Proto: 6, Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("198.51.100.2"), SrcPort: 40000, DstPort: 8080, ID: 7}
	for name, err := range map[string]error{"SetMark": c.SetMark(f, 1, 1), "Delete": c.Delete(f)} {
		if !errors.Is(err, ErrNotFound) || err == ErrNotFound || err.Error() != notFound(f).Error() {
			t.Errorf("%s of a missing flow = %v, want ErrNotFound wrapped with the flow, as Conn returns it", name, err)
		}
	}
}
