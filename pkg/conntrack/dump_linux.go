//go:build linux

package conntrack

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/nlwalk"
)

// More ctnetlink attribute types for dumps.
const (
	ctaCountersOrig  = 9
	ctaCountersReply = 10

	ctaCountersPackets = 1
	ctaCountersBytes   = 2
)

// dumpBufSize is the receive buffer of one read of a dump: the kernel fills
// it with as many entries as fit (some 30 at a time).
const dumpBufSize = 64 << 10

// Each calls fn with every tracked flow (IPv4 and IPv6), reading the dump
// as the kernel sends it, a buffer at a time: a table of 100 000 entries
// is never held in memory at once, by the kernel's messages or by Each.
// fn's error stops the dump and is returned. ctx is checked between reads.
func (c *Conn) Each(ctx context.Context, fn func(Flow) error) error {
	// struct nfgenmsg: AF_UNSPEC dumps both families.
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | ipctnlMsgCtGet),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	c.dumpMu.Lock()
	defer c.dumpMu.Unlock()
	if _, err := c.dumper.Send(req); err != nil {
		return fmt.Errorf("conntrack: dump: %w", err)
	}
	raw, err := c.dumper.SyscallConn()
	if err != nil {
		return fmt.Errorf("conntrack: dump: %w", err)
	}
	if c.buf == nil {
		c.buf = make([]byte, dumpBufSize)
	}
	for {
		var n int
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), c.buf, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("conntrack: dump: %w", err)
		}
		done, err := parseDump(c.buf[:n], fn)
		if err != nil || done {
			if err != nil {
				// Drain the rest of the dump, so the socket is clean for
				// the next one.
				c.drain(raw)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			c.drain(raw)
			return err
		}
	}
}

// drain reads and discards what is left of a dump.
func (c *Conn) drain(raw interface {
	Read(func(uintptr) bool) error
}) {
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), c.buf, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		}); err != nil || rerr != nil {
			return
		}
		if done, _ := parseDump(c.buf[:n], func(Flow) error { return nil }); done {
			return
		}
	}
}

// parseDump walks the netlink messages of one read. It reports done at the
// end of the dump (NLMSG_DONE) and returns the kernel's error, if any.
func parseDump(b []byte, fn func(Flow) error) (done bool, err error) {
	m := nlwalk.NewMessages(b)
	for m.Next() {
		msg := m.Payload()
		switch m.Type() {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if errno := -int32(binary.NativeEndian.Uint32(msg[0:4])); errno != 0 {
					return true, fmt.Errorf("conntrack: dump: %w", unix.Errno(errno))
				}
			}
			continue
		}
		if len(msg) < 4 { // struct nfgenmsg
			continue
		}
		var f Flow
		if parseFlow(msg[4:], &f) {
			if err := fn(f); err != nil {
				return true, err
			}
		}
	}
	if m.Malformed() {
		return true, fmt.Errorf("conntrack: dump: truncated message")
	}
	return false, nil
}

// parseCounters reads a CTA_COUNTERS_ORIG or CTA_COUNTERS_REPLY payload.
func parseCounters(b []byte) (packets, bytes uint64) {
	for a := nlwalk.NewAttrs(b); a.Next(); {
		switch a.Type() {
		case ctaCountersPackets:
			packets, _ = a.Uint64()
		case ctaCountersBytes:
			bytes, _ = a.Uint64()
		}
	}
	return packets, bytes
}

// tuple is one direction of a conntrack entry, as parsed.
type tuple struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	proto            uint8
	haveProto        bool
}

// parseTuple reads a CTA_TUPLE_ORIG or CTA_TUPLE_REPLY payload. For ICMP
// the identifier goes to srcPort and type<<8 | code to dstPort.
func parseTuple(b []byte, t *tuple) {
	for a := nlwalk.NewAttrs(b); a.Next(); {
		switch a.Type() {
		case ctaTupleIP:
			parseTupleIP(a.Data(), t)
		case ctaTupleProto:
			parseTupleProto(a.Data(), t)
		}
	}
}

// parseTupleIP reads a CTA_TUPLE_IP payload: the addresses.
func parseTupleIP(b []byte, t *tuple) {
	for a := nlwalk.NewAttrs(b); a.Next(); {
		typ, data := a.Type(), a.Data()
		var addr netip.Addr
		switch {
		case (typ == ctaIPv4Src || typ == ctaIPv4Dst) && len(data) == 4:
			addr = netip.AddrFrom4([4]byte(data))
		case (typ == ctaIPv6Src || typ == ctaIPv6Dst) && len(data) == 16:
			addr = netip.AddrFrom16([16]byte(data))
		default:
			continue
		}
		if typ == ctaIPv4Src || typ == ctaIPv6Src {
			t.src = addr
		} else {
			t.dst = addr
		}
	}
}

// parseTupleProto reads a CTA_TUPLE_PROTO payload: protocol and ports, or
// ICMP identifier, type and code.
func parseTupleProto(b []byte, t *tuple) {
	be := binary.BigEndian
	var icmpType, icmpCode uint8
	for a := nlwalk.NewAttrs(b); a.Next(); {
		typ, data := a.Type(), a.Data()
		switch {
		case typ == ctaProtoNum && len(data) >= 1:
			t.proto, t.haveProto = data[0], true
		case (typ == ctaProtoSrcPort || typ == ctaProtoICMPID || typ == ctaProtoICMPv6ID) && len(data) >= 2:
			t.srcPort = be.Uint16(data)
		case typ == ctaProtoDstPort && len(data) >= 2:
			t.dstPort = be.Uint16(data)
		case (typ == ctaProtoICMPType || typ == ctaProtoICMPv6Type) && len(data) >= 1:
			icmpType = data[0]
		case (typ == ctaProtoICMPCode || typ == ctaProtoICMPv6Code) && len(data) >= 1:
			icmpCode = data[0]
		}
	}
	if isICMP(t.proto) {
		t.dstPort = uint16(icmpType)<<8 | uint16(icmpCode)
	}
}

// parseFlow reads the parts of one conntrack entry picoseg uses: the whole
// original tuple, the source of the reply tuple (where a DNAT sends the
// flow), mark, id and counters. It reports false for an entry without a
// whole original tuple. Nothing is kept beyond the Flow it fills in.
func parseFlow(b []byte, f *Flow) bool {
	var orig tuple
	for a := nlwalk.NewAttrs(b); a.Next(); {
		data := a.Data()
		switch a.Type() {
		case ctaTupleOrig:
			parseTuple(data, &orig)
		case ctaTupleReply:
			var reply tuple
			parseTuple(data, &reply)
			f.ReplySrc, f.ReplySrcPort = reply.src, reply.srcPort
		case ctaMark:
			f.Mark, _ = a.Uint32()
		case ctaID:
			f.ID, _ = a.Uint32()
		case ctaCountersOrig:
			f.OrigPackets, f.OrigBytes = parseCounters(data)
		case ctaCountersReply:
			f.ReplyPackets, f.ReplyBytes = parseCounters(data)
		}
	}
	f.Proto, f.Src, f.Dst, f.SrcPort, f.DstPort = orig.proto, orig.src, orig.dst, orig.srcPort, orig.dstPort
	if f.ReplySrc.IsValid() && f.ReplySrc.Is4() != f.Src.Is4() {
		// A reply tuple of another family is not one the kernel makes
		// (NAT64 is not conntrack's): ignore it rather than judge it.
		f.ReplySrc, f.ReplySrcPort = netip.Addr{}, 0
	}
	return orig.src.IsValid() && orig.dst.IsValid() && orig.haveProto
}
