// Package learn turns what devices did into a least-privilege policy
// proposal, and shows what a policy change would do to real traffic.
//
// # Learning
//
// A Learner replays captures (package replay, so the same reader, clock
// and engine as `picoseg replay`) through a base policy forced into
// monitor mode: every packet is judged as the daemon would, nothing is
// dropped. For each flow it keeps who opened it (the device: its MAC, its
// addresses, its DHCP hostname where the inventory knows one), the peer
// (a device, the gateway, the zone for broadcast and multicast, else the
// address), the service, and what the base policy decided. Flows the
// base policy denies only for want of an allow rule are the ones learned;
// the rest are reported (already allowed, denied by a segment, spoofed
// sources, traffic outside an existing rule's bounds) and never widened.
//
// Propose builds the proposal: a [[device]] per device seen, devices that
// did the same things gathered in a [[group]], and one [[allow]] rule per
// device (or group) and peer, with pico bounds drawn from what was
// observed plus a margin: packet sizes, per-flow bytes, new flows per
// minute, and, when the captures span long enough, per-device bytes per
// hour and active hours. Every rule carries its evidence as comments.
// Proposal.Write appends all of it to the base policy's text, after the
// base's own rules: micro rules are first-match, so a learned rule never
// takes a flow an existing rule decides.
//
// # Peers by DNS name
//
// While replaying, DNS queries and answers feed the same names table the
// engine keeps for "dns:" destinations (package dnsnames): an answer
// counts only as the answer to the device's own outstanding query, per
// device, and an address holds for a name within the answer's TTL plus
// the base policy's [dns] grace. Only queries the proposal keeps allowed
// count (the base policy allows them, or they are learned), since the
// engine sees answers only to queries it let through. Each flow to an
// address outside the local zones notes the names the device had been
// given that address for. A peer becomes "dns:NAME" when every flow to it
// followed an answer for NAME, and the addresses of one name share one
// rule; numbered servers of one pool ("0.pool.ntp.org", "1.pool.ntp.org")
// used for the same services become "dns:*.POOL", and nothing else is
// widened to a pattern. Every other peer stays an address, its rule's
// comment saying why: a flow that followed no answer, flows under
// different names, a resolver (the answers come from it), or flows from
// the daemon's record, which keeps no names.
//
// A device that reached more than Options.ScanPeers peers, or more than
// Options.ScanPorts ports on one peer, is flagged as a scan: it gets its
// [[device]] but no rule. A router (a MAC that also sends from outside the
// local zones: the upstream router, or the gateway itself in a capture) is
// no device.
//
// # Bounded memory
//
// Learning state does not grow with the traffic: at most Options.MaxFlows
// live flows (least recently seen forgotten first; a flow seen again
// starts a new record), Options.MaxDevices devices (the inventory's bound
// too), Options.MaxEdges (device, peer) pairs in all, ScanPeers+1 peers a
// device and ScanPorts+1 services a pair, and rateWindowCap opening times
// a pair for the new-flow rate; the names table has the engine's default
// bounds (so a name the engine would have forgotten is not learned), and
// at most maxNameTexts question names are kept as text. What does not fit is counted and said in
// the proposal, never silently dropped.
//
// # From the daemon
//
// A Recorder is what the daemon keeps for learning (`run --learn-record`):
// for each local sender, peer, protocol and port, the flows opened, when,
// and the most openings in a minute, bounded (DefaultRecordEntries, and
// 256 entries a sender), saved atomically. Learner.Record judges each
// entry with the base policy as explain does and learns as from captures,
// without packet sizes or volumes (the daemon's userspace sees each flow's
// first packet only) and without DNS names: its peers stay addresses.
//
// # Diff
//
// Diff replays captures against two policies and lists the flows the new
// one allows that the old one denied, and the reverse, in a fixed order.
package learn
