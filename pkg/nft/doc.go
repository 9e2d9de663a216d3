// Package nft owns picoseg's nftables ruleset: the table `inet picoseg`, which
// no other part of the system writes and which picoseg never leaves.
//
// The ruleset is the kernel half of the data path. On the forward hook it
//
//  0. queues every TCP SYN without ACK, even on a flow whose conntrack mark
//     says ACCEPTED: conntrack ignores a SYN on an established entry, and
//     a SYN is an opening that must be judged, not a fast-pathed reply;
//  1. fast-paths flows whose conntrack mark says ACCEPTED (jumping to the
//     `accepted` chain, where each pico class's kernel checks run: a flow
//     over its class's byte bound has its packet queued again, marked
//     Tripped);
//  2. drops flows whose conntrack mark says DROPPED;
//  3. drops new flows from a source that opens them faster than the
//     per-source guard allows, so a flood cannot starve the queue;
//  4. queues everything else to userspace over NFQUEUE.
//
// The engine's verdict comes back as a packet mark. A second base chain on
// the same hook at a later priority (`verdict`) copies the picoseg bits of
// that packet mark into the conntrack mark and drops the packet if the mark
// says DROPPED. A later-priority chain was chosen over NF_REPEAT: a repeat
// re-runs every base chain on the hook, including those of other tables
// (fw4, mwan3), which would count and rate-limit the packet twice.
//
// The marks live in a configurable contiguous bit field (Marks) so picoseg
// coexists with mwan3, pbr and SQM; bits outside the field are never changed.
//
// Kernels without nft_queue (OpenWrt without kmod-nft-queue, or this
// project's CI) still have the xtables NFQUEUE target through nft_compat.
// Probe tries the native expression in a throw-away table and falls back to
// the xtables target.
//
// All netlink work goes through github.com/google/nftables; the package never
// runs the nft binary. Linux-only code sits in _linux.go files; elsewhere the
// functions return ErrUnsupported.
package nft
