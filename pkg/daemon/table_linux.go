//go:build linux

package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
)

// tableWatch notices when picoseg's table is lost or changed behind its
// back: `nft flush ruleset` (Debian's stock nftables.conf and `systemctl
// restart nftables` run it), OpenWrt's `firewall stop` (it deletes every
// table), `nft flush table`, a rule deleted or slipped in, or the table
// made dormant. Any of these leaves the gateway without picoseg while the
// daemon would go on reporting healthy.
//
// A look costs one netlink round trip: the ruleset generation, which the
// kernel bumps at every committed nftables transaction. Only when it moved
// is the table read (its flags and the number of its chains and rules) and
// compared with what picoseg installed.
type tableWatch struct {
	nl *netlink.Conn
	// gen is the generation last looked at; want the shape installed.
	gen  uint32
	want tableShape
	// failing is set while restoring fails, so that it is logged once.
	failing bool
}

// tableShape is what the watch compares: enough to tell the table is the
// one installed, cheap to read.
type tableShape struct {
	present bool
	flags   uint32
	chains  int
	rules   int
	// bridge is whether `table bridge picoseg` (the ARP and neighbour
	// checks on the zones' bridges) exists: deleting it alone is a loss
	// too.
	bridge bool
}

func newTableWatch() (*tableWatch, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("table watch: %w", err)
	}
	return &tableWatch{nl: nl}, nil
}

func (w *tableWatch) close() { w.nl.Close() }

// installed records the table just installed as the one to keep.
func (w *tableWatch) installed() error {
	gen, err := w.generation()
	if err != nil {
		return err
	}
	shape, err := w.shape()
	if err != nil {
		return err
	}
	w.gen, w.want = gen, shape
	return nil
}

// changed reports whether the table differs from the one installed.
func (w *tableWatch) changed() (bool, tableShape, error) {
	gen, err := w.generation()
	if err != nil || gen == w.gen {
		return false, w.want, err
	}
	shape, err := w.shape()
	if err != nil {
		return false, shape, err
	}
	if shape == w.want {
		w.gen = gen // another table changed: nothing of ours
		return false, shape, nil
	}
	return true, shape, nil
}

// nftRequest sends one nf_tables request and returns the answers.
func (w *tableWatch) nftRequest(msg uint16, flags netlink.HeaderFlags, family uint8, attrs []netlink.Attribute) ([]netlink.Message, error) {
	data := []byte{family, unix.NFNETLINK_V0, 0, 0}
	if len(attrs) > 0 {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return nil, err
		}
		data = append(data, b...)
	}
	return w.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg), Flags: netlink.Request | flags},
		Data:   data,
	})
}

// generation is the ruleset generation of the namespace.
func (w *tableWatch) generation() (uint32, error) {
	msgs, err := w.nftRequest(unix.NFT_MSG_GETGEN, 0, unix.AF_UNSPEC, nil)
	if err != nil {
		return 0, fmt.Errorf("table watch: generation: %w", err)
	}
	for _, m := range msgs {
		if v, ok := attrU32(m.Data, unix.NFTA_GEN_ID); ok {
			return v, nil
		}
	}
	return 0, errors.New("table watch: no generation in the answer")
}

// shape reads the table's flags and counts its chains and rules.
func (w *tableWatch) shape() (tableShape, error) {
	name := netlink.Attribute{Type: unix.NFTA_TABLE_NAME, Data: []byte(nft.TableName + "\x00")}
	msgs, err := w.nftRequest(unix.NFT_MSG_GETTABLE, 0, unix.NFPROTO_INET, []netlink.Attribute{name})
	if errors.Is(err, unix.ENOENT) {
		return tableShape{}, nil
	}
	if err != nil || len(msgs) == 0 {
		return tableShape{}, fmt.Errorf("table watch: table: %v", err)
	}
	s := tableShape{present: true}
	s.flags, _ = attrU32(msgs[0].Data, unix.NFTA_TABLE_FLAGS)
	// NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are attribute 1 like
	// NFTA_TABLE_NAME: the same attribute filters both dumps.
	for _, c := range []struct {
		msg uint16
		n   *int
	}{{unix.NFT_MSG_GETCHAIN, &s.chains}, {unix.NFT_MSG_GETRULE, &s.rules}} {
		msgs, err := w.nftRequest(c.msg, netlink.Dump, unix.NFPROTO_INET, []netlink.Attribute{name})
		if errors.Is(err, unix.ENOENT) {
			return tableShape{}, nil // deleted meanwhile
		}
		if err != nil {
			return tableShape{}, fmt.Errorf("table watch: %w", err)
		}
		*c.n = countOf(msgs, nft.TableName)
	}
	_, err = w.nftRequest(unix.NFT_MSG_GETTABLE, 0, unix.NFPROTO_BRIDGE, []netlink.Attribute{name})
	switch {
	case err == nil:
		s.bridge = true
	case !errors.Is(err, unix.ENOENT):
		return tableShape{}, fmt.Errorf("table watch: bridge table: %w", err)
	}
	return s, nil
}

// countOf counts the chain or rule messages of table, in case the kernel
// ignored the dump filter.
func countOf(msgs []netlink.Message, table string) int {
	n := 0
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == 1 && ad.String() == table {
				n++
				break
			}
		}
	}
	return n
}

// attrU32 finds a big-endian u32 attribute in an nfnetlink message body.
func attrU32(data []byte, typ uint16) (uint32, bool) {
	if len(data) < 4 {
		return 0, false
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return 0, false
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == typ {
			return ad.Uint32(), true
		}
	}
	return 0, false
}

// listenTableEvents wakes the main loop at once when any nftables change is
// committed in the namespace, so that a lost table is restored within
// milliseconds rather than at the next look. The looks every 500 ms remain
// in case an event is missed (a full socket buffer drops them).
func (d *Daemon) listenTableEvents(ctx context.Context) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return fmt.Errorf("table events: %w", err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return fmt.Errorf("table events: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	d.goPart(func() {
		defer func() {
			// stop reports true when it kept the close from running:
			// close here then, or the socket outlives the part.
			if stop() {
				c.Close()
			}
		}()
		for {
			_, err := c.Receive()
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				d.fail("table events", err, false)
				return
			}
			select {
			case d.tableEvents <- struct{}{}:
			default: // a look is already due
			}
		}
	})
	return nil
}

// checkTable restores the table if it was lost or changed.
func (d *Daemon) checkTable() {
	w := d.watch
	changed, got, err := w.changed()
	if err != nil {
		d.log.Warn("checking table inet picoseg", "err", err)
		return
	}
	if !changed {
		return
	}
	r, err := nft.Install(d.conn, d.applied.opts, d.method)
	if err == nil {
		err = w.installed()
	}
	if err != nil {
		if !w.failing {
			d.log.Error("table inet picoseg was lost and cannot be installed again: new flows are NOT judged", "err", err)
		}
		w.failing = true
		return
	}
	w.failing = false
	d.rs.Store(r)
	d.restores.Add(1)
	what := "changed"
	if !got.present {
		what = "deleted"
	}
	// Marks set before the loss are in conntrack, not in the table: a
	// flow marked DROPPED stays dropped and an accepted one keeps its
	// class. Flows opened while there was no table carry no mark; their
	// next packet is queued, and those the policy denies are marked
	// DROPPED at once from their original direction.
	cut := d.cutUnjudged()
	d.log.Warn("table inet picoseg was "+what+" behind picoseg's back: installed again", "flows_cut", cut, "restores", d.restores.Load())
	d.alerts.Raise(alert.Alert{Type: alert.TypeRulesetRestored, Reason: "table inet picoseg " + what,
		Message: fmt.Sprintf("table inet picoseg was %s (nft flush ruleset?): installed again; %d flows opened meanwhile cut", what, cut)})
}

// cutUnjudged marks DROPPED the unmarked flows the policy denies: flows
// that opened while the table was gone. It returns how many it cut.
func (d *Daemon) cutUnjudged() int {
	now, n := d.opts.Now(), 0
	err := d.ct.Each(context.Background(), func(f conntrack.Flow) error {
		if state, _ := d.marks.Decode(f.Mark); state != nft.StateUnjudged {
			return nil
		}
		q := engine.Query{From: f.Src, To: f.Dst, Proto: f.Proto, DPort: f.DstPort, At: now, Existing: true}
		if d.eng.Judge(q).Verdict != engine.Drop {
			return nil
		}
		if err := d.ct.SetMark(f, d.marks.Dropped(), d.marks.Mask); err != nil && !errors.Is(err, conntrack.ErrNotFound) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		d.log.Warn("judging the flows opened without a table", "err", err)
	}
	return n
}
