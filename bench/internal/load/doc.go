// Package load is the benchmark's traffic: the servers on the lab's WAN host
// and the clients run inside the IoT device namespaces. The harness runs each
// as a subcommand of its own binary through `ip netns exec`, so client and
// server sockets belong to the lab hosts and every packet crosses the gateway.
//
// The new-flow clients make every connection a new conntrack entry in the
// gateway: TCP connections are closed with SO_LINGER 0 (an RST, no
// TIME_WAIT; conntrack replaces a closed entry when its tuple is reused), and
// UDP flows bind source ports in a cycle long enough that a tuple comes back
// only after the gateway's shortened UDP timeout has expired it.
//
// They use plain blocking system calls on sockets, not the net package, so
// that the client's own cost per connection stays small beside what is
// measured: the gateway.
package load
