// Package capture reads pcap and pcapng captures for `picoseg replay`,
// decoding each packet with package packet exactly as the kernel queue's
// packets are decoded, so a replay judges the same Packet the daemon would.
//
// The magic bytes decide the format (classic pcap in either byte order with
// micro- or nanosecond timestamps, pcapng, either of them gzip-compressed),
// never the file name. Each record is decoded according to its link type;
// in pcapng that is the link type of the record's own interface, so one
// file may mix Ethernet, cooked Linux and raw-IP interfaces.
//
// A capture is untrusted input. Every length is checked before it is used:
// no length field can make the reader allocate more than a fixed limit
// (MaxRecordLength captured bytes per packet, plus room for pcapng options)
// or read past its block, and a record that breaks the framing ends the
// capture with a *CorruptError that says which record and where. The
// packets before it were good and stay counted.
//
// Reading and decoding allocate nothing per packet; Reset reuses a Reader's
// buffers for the next capture.
package capture
