package queue

import (
	"context"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	const mask = 0x00ff0000
	for _, tc := range []struct {
		name        string
		accept      bool
		mark, pkt   uint32
		mask        uint32
		wantVerdict verdictKind
		wantSet     bool
		wantMark    uint32
	}{
		{"drop ignores the mark", false, 0x00010000, 0, mask, verdictDrop, false, 0},
		{"need more packets: accept, mark untouched", true, 0, 0x3f00, mask, verdictAccept, false, 0},
		{"accepted class keeps mwan3 and SQM bits", true, 0x00020000, 0x00003fab, mask, verdictAccept, true, 0x00023fab},
		{"stale picoseg bits are replaced", true, 0x00020000, 0x00ff0000, mask, verdictAccept, true, 0x00020000},
		{"bits outside the mask are not set", true, 0xff020000, 0, mask, verdictAccept, true, 0x00020000},
		{"no mask: mark set as is", true, 0x00020000, 0x3f00, 0, verdictAccept, true, 0x00020000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, set, m := decide(tc.accept, tc.mark, tc.pkt, tc.mask)
			if v != tc.wantVerdict || set != tc.wantSet || m != tc.wantMark {
				t.Fatalf("decide = %v, %v, %#08x; want %v, %v, %#08x", v, set, m, tc.wantVerdict, tc.wantSet, tc.wantMark)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	h := HandlerFunc(func(*Packet) (bool, uint32) { return true, 0 })
	for _, o := range []Options{{Queues: 0}, {QueueBase: 65535, Queues: 2}} {
		if _, err := New(o, h); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	if _, err := New(Options{Queues: 1}, nil); err == nil {
		t.Error("New with nil handler: no error")
	}
}

func TestStatsNumbering(t *testing.T) {
	a, err := New(Options{QueueBase: 7, Queues: 3}, HandlerFunc(func(*Packet) (bool, uint32) { return true, 0 }))
	if err != nil {
		t.Fatal(err)
	}
	a.counters[1].received.Add(5)
	st := a.Stats()
	if len(st) != 3 || st[0].Queue != 7 || st[2].Queue != 9 || st[1].Received != 5 {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestBackoff(t *testing.T) {
	d := minBackoff
	for range 20 {
		d = nextBackoff(d)
	}
	if d != maxBackoff {
		t.Fatalf("backoff grows to %v, want cap %v", d, maxBackoff)
	}
}

func TestRunOnlyOnce(t *testing.T) {
	a, err := New(Options{Queues: 1}, HandlerFunc(func(*Packet) (bool, uint32) { return true, 0 }))
	if err != nil {
		t.Fatal(err)
	}
	a.running.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil {
		t.Fatal("second Run: no error")
	}
}

// The queue length is always sent to the kernel: its own default (1024)
// overflows within a fraction of a second of a burst of new flows.
func TestMaxQueueLenIsExplicit(t *testing.T) {
	h := HandlerFunc(func(*Packet) (bool, uint32) { return true, 0 })
	for _, tc := range []struct{ set, want uint32 }{{0, DefaultMaxQueueLen}, {100, 100}} {
		a, err := New(Options{Queues: 1, MaxQueueLen: tc.set}, h)
		if err != nil {
			t.Fatal(err)
		}
		if a.opts.MaxQueueLen != tc.want {
			t.Errorf("MaxQueueLen %d: normalized to %d, want %d", tc.set, a.opts.MaxQueueLen, tc.want)
		}
	}
}
