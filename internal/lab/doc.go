// Package lab builds a small IoT network out of Linux network namespaces so that
// picoseg can be exercised against a real kernel: real nftables, real NFQUEUE,
// real conntrack and real clients. `picoseg demo` and the integration tests of
// the kernel packages use it.
//
// # Topology
//
// One call to [New] builds one lab. Every lab gets a short random ID, and each
// of its namespaces is named psl-<id>-<name>, so labs built by test binaries
// running in parallel never collide:
//
//	         WAN host "wan"                      LAN host "lan" (admin PC)
//	    198.51.100.2/24 eth0                      10.88.0.10/24 eth0
//	               │                                      │
//	┌──────────────┼──────── gateway netns "gw" ──────────┼─────────────┐
//	│   wan0 198.51.100.1/24                   lan0 10.88.0.1/24        │
//	│                    ip_forward on, picoseg runs here               │
//	│                 br-iot 10.77.0.1/24 (a Linux bridge)              │
//	│         v-cam        v-plug1        v-plug2        v-hub          │
//	└───────────┼─────────────┼──────────────┼──────────────┼───────────┘
//	          eth0          eth0           eth0           eth0
//	          "cam"        "plug1"        "plug2"         "hub"
//	       10.77.0.11     10.77.0.21     10.77.0.22     10.77.0.30
//
// Inside the gateway namespace the interface names are fixed ([IfaceIoT],
// [IfaceLAN], [IfaceWAN]), because interface names are per namespace: a policy
// file written for the lab names br-iot, lan0 and wan0 and works for every lab.
// Every IoT device hangs off the one bridge, so device-to-device traffic is
// bridged, not routed: it reaches the IP forward hook only with br_netfilter on
// ([Lab.EnableBridgeFilter]). A new lab starts with it off, like a stock
// gateway: where br_netfilter is loaded, a fresh namespace has it on, so [New]
// turns it off explicitly (the sysctls are per namespace). A side with one
// LAN or WAN host gets a point-to-point veth named lan0 or wan0; a side with
// several gets a bridge of that name instead. Each host has a fixed MAC, an
// IPv4 address, and (when [Options].IPv6 is set, as by default) an IPv6 address; its
// default route points at the gateway. [DefaultOptions] lists the addresses.
//
// # Teardown
//
// A lab lives in the kernel, not in the process: namespaces outlive a crashed
// test binary. So:
//
//   - callers must `defer lab.Close()` (tests: t.Cleanup(func() { lab.Close() }));
//     Close is idempotent, stops every process the lab started, kills whatever
//     else still runs inside its namespaces, and deletes them;
//   - [New] tears down what it built when a step fails;
//   - commands that may be interrupted call [Lab.CloseOnSignal], which closes
//     the lab on SIGINT or SIGTERM and then dies of the same signal;
//   - every lab leaves a record under /run/picoseg-lab/<id> naming its owner
//     process and its namespaces, written before the first namespace exists.
//     [Cleanup] deletes labs whose owner is dead (and psl- namespaces that
//     have no record at all).
//
// # Traffic
//
// [Host.Command], [Host.Run] and [Host.Start] run programs inside a host's
// namespace through `ip netns exec`. The helpers in traffic.go ([Host.Ping],
// [Host.TCPConnect], [Host.ServeTCP], [Host.UDPProbe], [Host.Iperf3], ...) use
// sockets opened by this process inside the namespace (see [Host.Do]), so they
// need no client tools beyond iperf3, and tell a refused connection
// (syscall.ECONNREFUSED) from a dropped one (os.ErrDeadlineExceeded). All
// servers and processes a lab starts stop when it closes.
//
// Everything here needs root and Linux; [Available] says why not otherwise,
// and tests call it to skip.
package lab
