package conntrack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Flow identifies a conntrack entry by its original-direction tuple, and
// carries the source of its reply-direction tuple, which is where a port
// forward (DNAT) really sends the flow.
//
// For ICMP and ICMPv6 flows SrcPort is the echo identifier and DstPort is
// type<<8 | code, the way conntrack tracks them.
type Flow struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// ReplySrc and ReplySrcPort are the source of the reply tuple: the
	// host and port that answer. Without destination NAT they are Dst and
	// DstPort; for a port forward (DNAT) they are the forward's target.
	// The zero Addr means the dump had no reply tuple (Judged falls back
	// to Dst). For ICMP ReplySrcPort is the reply's identifier.
	ReplySrc     netip.Addr
	ReplySrcPort uint16
	// Mark is the whole conntrack mark, as dumped.
	Mark uint32
	// ID is the kernel's id of the entry. When non-zero, Delete removes
	// only that entry, not a newer one that reuses the tuple.
	ID uint32
	// OrigPackets and OrigBytes count what went in the original direction
	// (from Src to Dst), ReplyPackets and ReplyBytes the other way. Bytes
	// are layer 3 bytes, IP headers included. The kernel counts only when
	// flow accounting (net.netfilter.nf_conntrack_acct, see
	// EnableAccounting) was on when the entry was created; otherwise they
	// are 0.
	OrigPackets, OrigBytes   uint64
	ReplyPackets, ReplyBytes uint64
}

// String formats the flow like conntrack(8) does, roughly.
func (f Flow) String() string {
	return fmt.Sprintf("proto %d %s:%d -> %s:%d mark %#08x id %d",
		f.Proto, f.Src, f.SrcPort, f.Dst, f.DstPort, f.Mark, f.ID)
}

// Judged returns the flow as picoseg's hooks saw it when it was queued:
// forward and input run after destination NAT (prerouting) and before
// source NAT (postrouting), so the source is the original one and the
// destination is the reply tuple's source. For a port forward that is the
// LAN host the gateway forwards to, not the gateway's own address: judging
// the original tuple would judge a flow nobody queued (wan -> gateway:port)
// and cut an allowed port forward on every reload. For ICMP the type and
// code stay those of the original direction (the reply's are the answer's).
func (f *Flow) Judged() (src, dst netip.Addr, dport uint16) {
	src, dst, dport = f.Src.Unmap(), f.Dst.Unmap(), f.DstPort
	if !f.ReplySrc.IsValid() {
		return src, dst, dport
	}
	dst = f.ReplySrc.Unmap()
	if f.Proto != protoICMP && f.Proto != protoICMPv6 {
		dport = f.ReplySrcPort
	}
	return src, dst, dport
}

// IP protocol numbers the tuple layout depends on.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// Hash is a 64-bit hash of the flow's kernel id and original tuple, for
// keeping per-flow state between dumps in eight bytes: an id the kernel
// reuses for another tuple hashes differently.
func (f *Flow) Hash() uint64 {
	h := uint64(f.ID)*0x9e3779b97f4a7c15 ^ uint64(f.Proto)<<56 ^ uint64(f.SrcPort)<<16 ^ uint64(f.DstPort)
	for _, a := range [2]netip.Addr{f.Src.Unmap(), f.Dst.Unmap()} {
		b := a.As16()
		for i := 0; i < 16; i += 8 {
			h = (h ^ binary.BigEndian.Uint64(b[i:i+8])) * 0xbf58476d1ce4e5b9
			h ^= h >> 31
		}
	}
	return h
}

// ErrNotFound is returned, wrapped with the flow, when the flow is not (or
// no longer) tracked: flows close while a pass over the table is under
// way, so callers match it with errors.Is and carry on.
var ErrNotFound = errors.New("conntrack: flow not found")

// notFound is the error SetMark and Delete return for a flow the table does
// not hold; Conn and Fake both use it, so a test against Fake sees what the
// kernel gives.
func notFound(f Flow) error { return fmt.Errorf("%w: %v", ErrNotFound, f) }

// Controller is what picoseg needs from connection tracking. *Conn
// implements it for the kernel and *Fake in memory.
type Controller interface {
	// Flows lists the tracked flows.
	Flows(ctx context.Context) ([]Flow, error)
	// Each calls fn with every tracked flow, without holding them all;
	// fn's error stops it and is returned.
	Each(ctx context.Context, fn func(Flow) error) error
	// SetMark sets the bits of mask in the flow's conntrack mark to those
	// of mark; other bits do not change.
	SetMark(f Flow, mark, mask uint32) error
	// Delete removes the flow's entry.
	Delete(f Flow) error
	// ClearMarks clears the bits of mask in every flow's mark and returns
	// how many flows had any of them set.
	ClearMarks(mask uint32) (int, error)
}

var (
	_ Controller = (*Conn)(nil)
	_ Controller = (*Fake)(nil)
)

func (f Flow) validate() error {
	if !f.Src.IsValid() || !f.Dst.IsValid() || f.Src.Is4() != f.Dst.Is4() {
		return fmt.Errorf("conntrack: flow %v: source and destination must both be IPv4 or both IPv6", f)
	}
	if f.Proto == 0 {
		return fmt.Errorf("conntrack: flow %v: no protocol", f)
	}
	return nil
}

type flowKey struct {
	proto            uint8
	src, dst         netip.Addr
	srcPort, dstPort uint16
}

func (f Flow) key() flowKey {
	return flowKey{f.Proto, f.Src.Unmap(), f.Dst.Unmap(), f.SrcPort, f.DstPort}
}
