// Package policy compiles a validated config.Config into an immutable,
// indexed Policy that answers the engine's questions in time that does not
// grow with the number of rules or devices:
//
//   - which device sent this packet (maps by MAC and by address),
//   - which zone an address or interface is in (longest-prefix match),
//   - what the segment layer says for a zone pair (a dense matrix),
//   - which allow rule, if any, permits a flow (maps keyed by endpoint
//     selectors, then per-protocol port intervals searched in O(log n)),
//   - which of the gateway's default services (DHCP, DNS, ping, IPv6
//     neighbour discovery, DHCPv6) a flow to the gateway uses, and
//   - which zone an address belongs to, for the spoofing checks.
//
// The gateway itself is a destination zone of its own (Gateway): segments
// name it "gateway" and "*" never includes it.
//
// A Policy is never changed after Compile returns; the engine swaps a new
// one in atomically on reload.
package policy
