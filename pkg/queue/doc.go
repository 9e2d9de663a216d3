// Package queue is the NFQUEUE adapter: it reads the packets the picoseg
// ruleset queues to userspace, asks a Handler for a verdict and hands the
// verdict, with its mark, back to the kernel.
//
// One goroutine serves each queue and sends every verdict from the goroutine
// that read the packet. That keeps verdicts in order and avoids the netlink
// deadlock of github.com/mdlayher/netlink v1.11.0, where a Send from another
// goroutine waits for a blocked Receive (the module pins v1.9.0).
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
