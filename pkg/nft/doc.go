// Package nft owns picoseg's nftables ruleset: the table `inet picoseg`, which
// no other part of the system writes and which picoseg never leaves.
//
// The ruleset is the kernel half of the data path. On the forward hook it
//
//  1. clears picoseg's bits of the packet mark (only a verdict may set them);
//  2. drops what conntrack finds invalid, and packets from the listed
//     interfaces whose source is not routed back through them (spoofed);
//  3. clears the inherited mark of an expected connection (FTP data, SIP
//     media), so that it is judged by its own tuple;
//  4. queues every TCP SYN without ACK, even on a flow whose conntrack mark
//     says ACCEPTED: conntrack ignores a SYN on an established entry, and
//     a SYN is an opening that must be judged, not a fast-pathed reply;
//     and every ICMP or ICMPv6 error about an ACCEPTED flow (conntrack
//     state related, which hands it the quoted flow's mark), so that the
//     engine checks who sends it;
//  5. fast-paths flows whose conntrack mark says ACCEPTED (jumping to the
//     `accepted` chain, and from there to a chain per pico class with
//     checks: a packet outside its class's time window, folded onto the UTC
//     week for `meta day` and `meta hour`, or outside its packet sizes is
//     dropped; a flow over its class's byte bound has its packet queued
//     again, marked Tripped);
//  6. drops flows whose conntrack mark says DROPPED;
//  7. sends openings through the `newflow` chain: a per-device guard (the
//     ingress interface and source MAC, not the claimed address), a shared
//     budget for devices outside a full guard set, and a global cap, so a
//     flood cannot starve the queue;
//  8. sends new flows through the `classrate` chain: one that repeats an
//     opening a class with a new-flow rate accepted (same source, peer,
//     protocol and port) counts against its source's budget for the class,
//     and over it is dropped (classrate_linux.go);
//  9. queues everything else to userspace over NFQUEUE.
//
// A second table, `bridge picoseg`, checks ARP and IPv6 neighbour
// discovery on the zones' bridges, and drops router advertisements,
// redirects and DHCP server messages from their ports unless they come
// from a zone's port_routers (bridge_linux.go).
//
// The input hook gets the same chains (`input`, `input_verdict`), so the
// gateway's own services are judged like any destination; loopback and the
// replies to the gateway's own connections (conntrack direction reply)
// pass first.
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
