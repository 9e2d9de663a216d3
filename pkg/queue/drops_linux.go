//go:build linux

package queue

import "os"

// KernelDrops reads the drop counters of queues base..base+n-1 in the
// calling thread's network namespace.
func KernelDrops(base uint16, n int) (Drops, error) {
	f, err := os.Open("/proc/thread-self/net/netfilter/nfnetlink_queue")
	if err != nil {
		return Drops{}, err
	}
	defer f.Close()
	return parseDrops(f, base, n), nil
}
