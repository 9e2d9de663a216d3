// Package inventory keeps the list of every device picoseg has seen on the
// networks it guards: hardware and IP addresses, first and last seen, bytes
// up and down, flows, the policy's name, zone and groups for it, and the
// hostname it asked DHCP for.
//
// # Feeding it
//
// Observe takes one Observation: who (a MAC address and/or an IP address,
// plus the policy's name, zone and groups for it), when, and how many bytes
// it sent (Up) and received (Down). It is safe for concurrent use and
// cheap: one mutex and one or two map lookups, no allocation for a device
// and address already known. Two sources feed it:
//
//   - packets, one Observe per packet (PacketObservation builds the
//     Observation from a decoded packet.Packet; replay and the queue
//     adapter use it);
//   - conntrack dumps, through a Counter, which turns successive dumps of
//     the kernel's per-flow counters (conntrack.EnableAccounting) into byte
//     deltas per flow and observes them for the flow's local end. The
//     kernel fast-paths accepted flows, so only conntrack sees most of
//     their bytes.
//
// Feed only the devices of the guarded networks: the source MAC of a
// packet routed in from the internet is the upstream router's, and its
// source addresses are servers. Identifier.Identify draws that line for
// conntrack (devices the policy names and addresses in local zones). The
// daemon should observe packets with Up zeroed when a Counter also runs,
// or their bytes are counted twice; a replay has no conntrack and counts
// bytes from the packets. A Counter misses the bytes a flow moved between
// the last dump and its end.
//
// An Identifier fills in the policy's view of a device (name, zone,
// groups) the way the engine identifies senders: by MAC first, then by
// address, with unknown devices of local zones in the policy's
// unknown_group. The identity of the latest observation replaces the
// stored one, so a reload that renames or removes a device shows up at
// once. Devices reports Options.UnknownGroup for any device outside the
// policy that came without groups.
//
// # Keys
//
// A device with a known MAC address is keyed by it; one seen only by its IP
// address (conntrack does not know MACs) is keyed by that address until a
// packet shows which MAC uses it, when the address-only record is folded
// into the MAC's. An address seen from a new MAC moves to it: it is
// removed from the device that had it. Each device keeps at most MaxAddrs
// addresses, dropping the one it gained first.
//
// Observe reports a device as new exactly once: the first time it is seen
// since it entered the inventory. Devices loaded from the state file are
// not new after a restart. The inventory is bounded (Options.MaxDevices):
// when it is full the device least recently observed is forgotten, and
// would be new again if it came back.
//
// # Persistence
//
// Save writes the inventory as JSON to Options.StatePath atomically: a
// temporary file in the same directory, written, fsynced, renamed over the
// old one, and the directory fsynced, all 0600. A crash at any point leaves
// either the old or the new file, never a mix; New removes temporary files
// a crash left behind. A state file that cannot be parsed is not fatal: New
// moves it aside to StatePath+".corrupt", starts empty and returns the
// inventory together with a *CorruptStateError for the daemon to log.
//
// # Hostnames
//
// Hostnames come from a DHCP leases file in dnsmasq's format (OpenWrt's
// /tmp/dhcp.leases), matched by MAC and then by address, re-read when its
// modification time or size changes but not more often than every
// LeaseRecheck. A hostname is chosen by the device itself, so only names
// made of letters, digits, '-', '_' and '.' are taken; the last one found
// sticks to the device after its lease is gone.
//
// # MUD URLs
//
// A device may announce the URL of its Manufacturer Usage Description
// (RFC 8520) in DHCPv4 option 161. dnsmasq's leases file does not keep it,
// so it is read from the DHCP client messages themselves: ParseDHCPv4IP
// reads one from the packet the queue hands over, and ObserveDHCP keeps
// its MUD URL (and its option 12 hostname, for when the leases file has
// none) for the device that sent it. Only https URLs of at most MaxMUDURL
// printable bytes are kept (ValidMUDURL), and a message speaks only for
// the MAC that sent the frame (its chaddr must be that MAC) and, through
// Identifier.DHCPObservation, only inside that MAC's zone of the guarded
// networks. The URL is the device's claim; nothing here fetches it.
package inventory
