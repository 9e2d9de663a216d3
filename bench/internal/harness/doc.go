// Package harness runs picoseg's lab benchmark: it builds a namespace lab
// (pkg/lab), runs the benchmark traffic (package load) through the gateway
// with picoseg enforcing a generated policy, and against the same lab with
// no firewall, with a bare Go and a bare C NFQUEUE consumer, alternating the
// setups round by round so that drift in the machine's load hits all of
// them alike. It reports each figure as the median of the rounds with its
// spread (package stats).
//
// Every packet stays inside the lab's namespaces. The gateway's conntrack
// timeouts for closed TCP and unreplied UDP are shortened (per namespace) so
// that a new-flow flood does not fill the kernel's shared conntrack table.
package harness
