// Package flow keeps what picoseg knows about each flow it has judged: a
// packed, pointer-free bidirectional key (directional for ICMP queries,
// whose requester is always endpoint A) and a bounded table of per-flow
// state with a time-to-live per protocol state and least-recently-used
// eviction when full. Each flow records who opened it and how (a SYN, a
// first datagram, a mid-stream pickup): its judgement is that side's.
//
// The table is sharded and safe for concurrent use by one goroutine per
// queue. Lookups copy state out and updates copy it back in, so no caller
// ever holds a pointer into the table while another goroutine evicts.
package flow
