package daemon

import (
	"fmt"
	"time"

	"github.com/picoseg/picoseg/pkg/queue"
)

// A queue whose socket fails is re-opened by pkg/queue with back-off (at
// most 5 s apart), each attempt counted in its Reopens. A queue that keeps
// failing to re-open (another program took its number meanwhile) leaves
// every new flow of its share unjudged while the daemon looks healthy;
// past queueDownLimit the run ends with that error, so that the supervisor
// restarts picoseg and the failure shows.
const (
	queueDownLimit = time.Minute
	// queueUpAfter without an attempt means the queue is open again:
	// longer than the longest back-off.
	queueUpAfter = 10 * time.Second
)

// queueWatch follows the queues' re-open attempts.
type queueWatch struct {
	reopens        map[uint16]uint64
	lastTry, since map[uint16]time.Time
}

func newQueueWatch() *queueWatch {
	return &queueWatch{reopens: map[uint16]uint64{}, lastTry: map[uint16]time.Time{}, since: map[uint16]time.Time{}}
}

// observe takes the queues' counters at now and returns an error for a
// queue that has been failing to re-open for queueDownLimit.
func (w *queueWatch) observe(now time.Time, stats []queue.QueueStats) error {
	for _, s := range stats {
		q := s.Queue
		if s.Reopens > w.reopens[q] {
			if w.since[q].IsZero() {
				w.since[q] = now
			}
			w.lastTry[q] = now
		} else if !w.since[q].IsZero() && now.Sub(w.lastTry[q]) > queueUpAfter {
			w.since[q] = time.Time{} // open again
		}
		w.reopens[q] = s.Reopens
		if !w.since[q].IsZero() && now.Sub(w.since[q]) >= queueDownLimit {
			return fmt.Errorf("queue %d: re-opening has failed for %v (%d attempts): its flows are not judged", q, now.Sub(w.since[q]).Round(time.Second), s.Reopens)
		}
	}
	return nil
}
