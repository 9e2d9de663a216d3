// Package flow keeps what picoseg knows about each flow it has judged: a
// packed, pointer-free bidirectional key and a bounded table of per-flow
// state with a time-to-live per protocol state and least-recently-used
// eviction when full.
//
// The table is sharded and safe for concurrent use by one goroutine per
// queue. Lookups copy state out and updates copy it back in, so no caller
// ever holds a pointer into the table while another goroutine evicts.
package flow
