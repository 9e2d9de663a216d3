// Package mud reads Manufacturer Usage Description files (RFC 8520) and
// turns them into a picoseg policy proposal for a person to review.
//
// # Reading
//
// Read and Parse accept the three shapes MUD files come in: the RFC's
// (`ietf-mud:mud` whose from-device-policy and to-device-policy name
// access lists of `ietf-access-control-list:acls`), the one MUDgee writes
// (the same, with the access lists under
// `ietf-access-control-list:access-lists`), and the older drafts'
// (`ietf-mud:meta-data`, lists keyed `acl-name` with `access-list-entries`
// of `rule-name` entries, `permit` actions, port ranges written flat in the
// matches, and the direction on each list as `ietf-mud:packet-direction`).
// A file is bounded (MaxFileSize), decoded token by token so that a key
// written twice is an error rather than a silent replacement, and every
// error names the place in the file (`ietf-access-control-list:acls/acl[0]/
// aces/ace[2]/matches/tcp/destination-port: ...`). An access list a policy
// names but the file does not define is an error.
//
// # Importing
//
// Import turns a File into a Proposal: a group for the device's model, the
// device itself when its MAC or addresses are given, and [[allow]] rules.
// picoseg rules belong to the side that opens a flow, where MUD judges each
// packet in each direction, so every access-control entry is read as the
// opening half of a flow (the device's request, or a peer's) or the reply
// half of one; reply halves join the rule their request made. The MUD
// abstractions name things only the local network knows (`local-networks`,
// `my-controller`, `controller`, `same-manufacturer`, `manufacturer`,
// `model`): a Mapping turns each into a zone, group or device, and an
// abstraction left unmapped becomes a new, empty group for the reviewer to
// fill (or, for local-networks, which has no safe default, a problem).
//
// Nothing is dropped silently. What picoseg cannot express (a deny entry,
// ICMP type matches, source ports, TTL or DSCP matches, direction-initiated
// on a protocol without connections, destinations by DNS name while the
// policy language lacks them) is a Problem: it is written into the output
// as a commented-out rule with the reason, and the command exits non-zero
// unless asked to accept a partial result. Leaving a match out would widen
// what the rule allows, so a rule that cannot be written exactly is never
// written active.
package mud
