// Package queue is the NFQUEUE adapter: it reads the packets the picoseg
// ruleset queues to userspace, asks a Handler for a verdict and hands the
// verdict, with its mark, back to the kernel.
//
// One goroutine serves each queue and sends every verdict from the goroutine
// that read the packet, so verdicts go out in order.
//
// The adapter speaks nfnetlink_queue itself over a raw netlink socket,
// because the receive path is where a new flow's cost is paid. The reader
// sleeps in the kernel in a blocking read, as a C consumer does, not in the
// runtime's poller: when packets come one at a time, the poller's empty
// read, park, wake and epoll_wait cost more than the packet's judging.
// One recvmmsg(2) reads up to 64 queued
// packets into buffers the adapter owns; each is judged in place; then all
// their verdicts leave in one write, consecutive packets with the same
// verdict and mark folded into one NFQNL_MSG_VERDICT_BATCH. Nothing is
// allocated per packet (TestReceivePathNoAllocs). A general netlink library
// costs two receive calls, several allocations and one send per packet; for
// the first packet of every flow that was most of the daemon's work.
//
// The kernel copies only the first CopyRange bytes of each packet: enough for
// the network and transport headers and the start of the payload. The IP
// header still carries the full length, which is what the engine must use.
// The GSO flag lets the kernel queue large segmentation-offloaded packets
// without splitting or checksumming them first.
//
// The verdict mark becomes the packet mark (NFQA_MARK); the ruleset copies
// its picoseg bits into the conntrack mark. Conntrack attributes in verdicts
// (NFQA_CT) are not used: kernels without CONFIG_NETFILTER_NETLINK_GLUE_CT
// silently ignore them.
//
// A full socket buffer (ENOBUFS: the kernel dropped queue messages) is
// counted and survived. Any other socket error closes the queue and opens it
// again with a growing back-off; Run only returns when its context ends, or
// at start-up when a queue cannot be opened at all.
package queue
