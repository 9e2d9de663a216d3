package queue

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Drops are the kernel's own counts of packets its queues could not hand
// to userspace.
type Drops struct {
	// QueueFull counts packets dropped because a queue was full
	// (NFQA_CFG_F_FAIL_OPEN off). With fail-open the kernel accepts them
	// instead and counts nothing.
	QueueFull uint64
	// Undelivered counts packets the kernel could not send to the
	// listening socket (its receive buffer was full).
	Undelivered uint64
}

// parseDrops sums the drop counters of queues base..base+n-1 from the
// kernel's table (/proc/net/netfilter/nfnetlink_queue): one line a bound
// queue, "queue portid total copy_mode copy_range queue_dropped
// user_dropped id_sequence 1".
func parseDrops(r io.Reader, base uint16, n int) Drops {
	var d Drops
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		q, err := strconv.ParseUint(f[0], 10, 16)
		if err != nil || q < uint64(base) || q >= uint64(base)+uint64(n) {
			continue
		}
		full, err1 := strconv.ParseUint(f[5], 10, 64)
		user, err2 := strconv.ParseUint(f[6], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		d.QueueFull += full
		d.Undelivered += user
	}
	return d
}
