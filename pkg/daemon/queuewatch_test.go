package daemon

import (
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/queue"
)

func TestQueueWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	stats := func(a, b uint64) []queue.QueueStats {
		return []queue.QueueStats{{Queue: 4200, Stats: queue.Stats{Reopens: a}}, {Queue: 4201, Stats: queue.Stats{Reopens: b}}}
	}
	t.Run("a queue re-opened at once is fine", func(t *testing.T) {
		w := newQueueWatch()
		// One failure every 20 s, each re-opened at the first attempt;
		// observed every second, as the sweep does.
		for s := 0; s < 600; s++ {
			if err := w.observe(t0.Add(time.Duration(s)*time.Second), stats(uint64(s/20), 0)); err != nil {
				t.Fatalf("at %d s: %v", s, err)
			}
		}
	})
	t.Run("a queue that never comes back ends the run", func(t *testing.T) {
		w := newQueueWatch()
		var err error
		// An attempt every 5 s (the longest back-off), observed every second.
		for s := 0; s <= 70 && err == nil; s++ {
			err = w.observe(t0.Add(time.Duration(s)*time.Second), stats(0, uint64(s/5)))
			if err != nil && s < 60 {
				t.Fatalf("after %d s: %v", s, err)
			}
		}
		if err == nil {
			t.Fatal("a queue failing to re-open for 70 s was not reported")
		}
		t.Log(err)
	})
	t.Run("a streak ends when the attempts stop", func(t *testing.T) {
		w := newQueueWatch()
		for s := 0; s < 50; s++ { // 50 s of failures, then open
			w.observe(t0.Add(time.Duration(s)*time.Second), stats(uint64(s/5), 0))
		}
		for s := 50; s < 200; s++ {
			if err := w.observe(t0.Add(time.Duration(s)*time.Second), stats(9, 0)); err != nil {
				t.Fatalf("after the queue came back, at %d s: %v", s, err)
			}
		}
	})
}
