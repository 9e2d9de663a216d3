// Package appid identifies the application protocol a flow speaks and checks
// what it carries against a rule's constraint. No kernel code; nothing
// allocates per packet.
//
// A Checker is built once when the policy is compiled, immutable and shared
// by every flow of its rule. The engine keeps each flow's bytes (for a
// stream protocol, the client's bytes in order from the stream's start) and
// hands them to Check until the checker decides: Pass, Mismatch (not this
// protocol), Deny (this protocol, carrying what the rule forbids) or More.
//
// The parsers are bounded and refuse what a server would refuse (two server
// names, two Host headers, folded headers, exception codes as requests):
// when the checker and the server could read one message two ways, the
// message is a mismatch.
package appid
