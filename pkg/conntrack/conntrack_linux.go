//go:build linux

package conntrack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is a connection to the kernel's conntrack table of one network
// namespace.
type Conn struct {
	nl *netlink.Conn // masked mark updates and id-checked deletes

	dumpMu sync.Mutex    // one dump at a time on dumper
	dumper *netlink.Conn // dumps, read a buffer at a time (Each)
	buf    []byte
}

// Option configures Open.
type Option func(*netlink.Config)

// WithNetNS makes Open work on the network namespace referenced by fd
// instead of the caller's.
func WithNetNS(fd int) Option {
	return func(c *netlink.Config) { c.NetNS = fd }
}

// Open connects to conntrack.
func Open(opts ...Option) (*Conn, error) {
	var cfg netlink.Config
	for _, o := range opts {
		o(&cfg)
	}
	dumper, err := netlink.Dial(unix.NETLINK_NETFILTER, &cfg)
	if err != nil {
		return nil, fmt.Errorf("conntrack: open: %w", err)
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &cfg)
	if err != nil {
		dumper.Close()
		return nil, fmt.Errorf("conntrack: open: %w", err)
	}
	return &Conn{dumper: dumper, nl: nl}, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	return errors.Join(c.dumper.Close(), c.nl.Close())
}

// Flows dumps the conntrack table (IPv4 and IPv6) into a slice of the few
// fields picoseg uses (about 100 bytes a flow).
func (c *Conn) Flows(ctx context.Context) ([]Flow, error) {
	var out []Flow
	err := c.Each(ctx, func(f Flow) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

// accountingSysctl switches per-flow packet and byte counters on; it is
// per network namespace.
const accountingSysctl = "/proc/sys/net/netfilter/nf_conntrack_acct"

// EnableAccounting turns on conntrack flow accounting in the network
// namespace of the calling thread, so that Flows reports per-direction
// packet and byte counts. Only entries created afterwards are counted: the
// kernel decides when it creates an entry whether to attach counters.
//
// The caller must be root (or hold CAP_NET_ADMIN over the namespace) and
// nf_conntrack must be loaded.
func EnableAccounting() error {
	if err := os.WriteFile(accountingSysctl, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("conntrack: enable accounting: %w", err)
	}
	return nil
}

func isICMP(proto uint8) bool { return proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 }

// ctnetlink attribute types (include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaMark       = 8
	ctaID         = 12
	ctaMarkMask   = 21

	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum        = 1
	ctaProtoSrcPort    = 2
	ctaProtoDstPort    = 3
	ctaProtoICMPID     = 4
	ctaProtoICMPType   = 5
	ctaProtoICMPCode   = 6
	ctaProtoICMPv6ID   = 7
	ctaProtoICMPv6Type = 8
	ctaProtoICMPv6Code = 9

	ipctnlMsgCtNew    = 0
	ipctnlMsgCtGet    = 1
	ipctnlMsgCtDelete = 2
)

// SetMark sets the bits of mask in the flow's conntrack mark to those of
// mark. The kernel computes (old &^ mask) | (mark & mask) itself, so
// concurrent changes to other bits are not lost.
func (c *Conn) SetMark(f Flow, mark, mask uint32) error {
	return c.execute(f, ipctnlMsgCtNew, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(ctaMark, mark&mask)
		ae.Uint32(ctaMarkMask, mask)
	})
}

// Delete removes the flow's entry; with a non-zero ID only that entry.
func (c *Conn) Delete(f Flow) error {
	return c.execute(f, ipctnlMsgCtDelete, func(ae *netlink.AttributeEncoder) {
		if f.ID != 0 {
			ae.Uint32(ctaID, f.ID)
		}
	})
}

// ClearMarks clears the bits of mask in every tracked flow's mark, for a
// daemon starting up: marks left by a previous run may encode a policy that
// no longer exists. Flows that vanish meanwhile are skipped.
func (c *Conn) ClearMarks(mask uint32) (int, error) {
	n := 0
	err := c.Each(context.Background(), func(f Flow) error {
		if f.Mark&mask == 0 {
			return nil
		}
		switch err := c.SetMark(f, 0, mask); {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound):
		default:
			return err
		}
		return nil
	})
	return n, err
}

func (c *Conn) execute(f Flow, msgType uint16, extra func(*netlink.AttributeEncoder)) error {
	req, err := request(f, msgType, extra)
	if err != nil {
		return err
	}
	if _, err := c.nl.Execute(req); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return notFound(f)
		}
		return fmt.Errorf("conntrack: %v: %w", f, err)
	}
	return nil
}

// request builds a ctnetlink message addressing f by its original tuple.
func request(f Flow, msgType uint16, extra func(*netlink.AttributeEncoder)) (netlink.Message, error) {
	if err := f.validate(); err != nil {
		return netlink.Message{}, err
	}
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Nested(ctaTupleOrig, func(ae *netlink.AttributeEncoder) error {
		encodeTuple(ae, f)
		return nil
	})
	extra(ae)
	attrs, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, fmt.Errorf("conntrack: encode %v: %w", f, err)
	}
	family := uint8(unix.AF_INET)
	if !f.Src.Unmap().Is4() {
		family = unix.AF_INET6
	}
	// struct nfgenmsg: family, version, res_id (big endian).
	data := append([]byte{family, unix.NFNETLINK_V0, 0, 0}, attrs...)
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | msgType),
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: data,
	}, nil
}

func encodeTuple(ae *netlink.AttributeEncoder, f Flow) {
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
		if src.Is4() {
			ae.Bytes(ctaIPv4Src, addrBytes(src))
			ae.Bytes(ctaIPv4Dst, addrBytes(dst))
		} else {
			ae.Bytes(ctaIPv6Src, addrBytes(src))
			ae.Bytes(ctaIPv6Dst, addrBytes(dst))
		}
		return nil
	})
	ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
		ae.Uint8(ctaProtoNum, f.Proto)
		switch f.Proto {
		case unix.IPPROTO_ICMP:
			ae.Uint16(ctaProtoICMPID, f.SrcPort)
			ae.Uint8(ctaProtoICMPType, uint8(f.DstPort>>8))
			ae.Uint8(ctaProtoICMPCode, uint8(f.DstPort))
		case unix.IPPROTO_ICMPV6:
			ae.Uint16(ctaProtoICMPv6ID, f.SrcPort)
			ae.Uint8(ctaProtoICMPv6Type, uint8(f.DstPort>>8))
			ae.Uint8(ctaProtoICMPv6Code, uint8(f.DstPort))
		default:
			ae.Uint16(ctaProtoSrcPort, f.SrcPort)
			ae.Uint16(ctaProtoDstPort, f.DstPort)
		}
		return nil
	})
}

func addrBytes(a netip.Addr) []byte { return a.AsSlice() }
