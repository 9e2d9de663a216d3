// Package daemon is `picoseg run`: it joins the engine to the kernel.
//
// A Daemon is made of small parts, started in order by start: the lock
// (one daemon per network namespace, taken before nftables or conntrack is
// touched), the nftables table (probing for the native queue expression and
// falling back to the xtables NFQUEUE target), the per-bridge br_netfilter
// switches of the zones that ask for bridge filtering, conntrack, the
// queues, the metrics endpoint and the status socket; then, if the policy
// names a user, the daemon becomes that user with CAP_NET_ADMIN alone. Each
// queued packet is decoded, judged by the engine, and answered with a
// verdict whose packet mark the ruleset copies into the conntrack mark, so
// that the rest of an accepted flow never leaves the kernel.
//
// One main loop owns every later change to the kernel: SIGHUP reloads the
// policy (a policy with errors is refused whole and the running one kept; a
// good one is swapped in atomically, and every flow the kernel is
// fast-pathing is judged again from its conntrack tuple, so a flow the new
// policy denies is cut at once); every 500 ms it checks that the table is
// still the one installed and installs it again if not; when the
// interfaces change (a port joins or leaves a zone's bridge, a zone's
// bridge is created, the gateway gains or loses an address; the interface
// watch wakes it 200 ms after the first of a burst of rtnetlink events,
// and every 5 s in case an event was lost) it reads them and puts in force
// what changed, as a reload would; every second it sweeps. The parts
// report their errors to the loop, which ends the run on the first fatal
// one. SIGTERM and SIGINT stop the daemon; the table is removed unless the
// policy asks to fail closed. The command owns the process-wide settings
// (signals, the GC pace).
//
// A unix socket readable by root only answers `picoseg status`.
package daemon
