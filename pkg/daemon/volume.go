package daemon

import (
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
)

// volumes holds fast-pathed flows to their byte bounds. Once a flow is
// accepted its packets stay in the kernel, so the engine never counts them;
// conntrack does. Each dump's counters are charged to the flow's rule:
// a flow over max_flow_bytes, or whose device is over max_device_bytes, is
// marked DROPPED and cut at its next packet.
type volumes struct {
	last map[volumeKey]uint64 // bytes at the previous dump, by flow
}

type volumeKey struct {
	id               uint32
	proto            uint8
	src, dst         netip.Addr
	srcPort, dstPort uint16
}

func newVolumes() *volumes { return &volumes{last: map[volumeKey]uint64{}} }

// apply charges one conntrack dump and returns how many flows it cut.
func (v *volumes) apply(flows []conntrack.Flow, eng *engine.Engine, marks nft.Marks, ct conntrack.Controller, now time.Time) (cut int, err error) {
	seen := make(map[volumeKey]uint64, len(flows))
	for _, f := range flows {
		if state, _ := marks.Decode(f.Mark); state != nft.StateAccepted {
			continue
		}
		k := volumeKey{f.ID, f.Proto, f.Src, f.Dst, f.SrcPort, f.DstPort}
		total := f.OrigBytes + f.ReplyBytes
		delta := total
		if prev, ok := v.last[k]; ok && prev <= total {
			delta = total - prev
		}
		seen[k] = total
		q := engine.Query{From: f.Src, To: f.Dst, Proto: f.Proto, DPort: f.DstPort, At: now, Existing: true}
		if !eng.Volume(q, total, delta, now) {
			continue
		}
		if err := ct.SetMark(f, marks.Dropped(), marks.Mask); err != nil && err != conntrack.ErrNotFound {
			return cut, err
		}
		cut++
	}
	v.last = seen
	return cut, nil
}
