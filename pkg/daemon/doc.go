// Package daemon is `picoseg run`: it joins the engine to the kernel.
//
// At start it loads and compiles the policy, installs the nftables table
// (probing for the native queue expression and falling back to the xtables
// NFQUEUE target), clears stale picoseg conntrack marks, turns on bridge
// filtering for zones that ask for it, and serves the queues: each queued
// packet is decoded, judged by the engine, and answered with a verdict whose
// packet mark the ruleset copies into the conntrack mark, so that the rest
// of an accepted flow never leaves the kernel.
//
// SIGHUP reloads the policy: a policy with errors is refused whole and the
// running one kept; a good one is swapped in atomically, and every flow the
// kernel is fast-pathing is judged again from its conntrack tuple, so a flow
// the new policy denies is cut at once. SIGTERM and SIGINT stop the daemon;
// the table is removed unless the policy asks to fail closed.
//
// A unix socket readable by root only answers `picoseg status`.
package daemon
