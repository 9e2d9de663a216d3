// Package flowmem measures what one tracked flow costs in picoseg's flow
// table (pkg/flow): the heap the table holds once it is filled, divided by
// the flows in it. The table preallocates its entries, so the figure covers
// the entry array, the index map and the free list, all at full capacity.
package flowmem

import (
	"net/netip"
	"runtime"

	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
)

// BytesPerFlow builds a table of capacity n, fills it to capacity with
// distinct TCP flows and returns the live heap it added per flow held. The
// table is sharded by hash, so it is fed twice its capacity: every shard is
// then full (the surplus is evicted, as in a busy gateway).
func BytesPerFlow(n int) float64 {
	before := liveHeap()
	t := flow.New(n, flow.DefaultTTLs())
	var p packet.Packet
	p.Kind, p.Proto, p.Length, p.TCPFlags = packet.KindOK, packet.ProtoTCP, 60, packet.TCPSyn
	p.Dst = netip.AddrFrom4([4]byte{198, 51, 100, 2})
	p.DstPort = 443
	st := flow.State{Judgement: flow.Judgement{Rule: -1, SrcDevice: -1, DstDevice: -1, Budget: -1}}
	for i := 0; i < 2*n; i++ {
		p.Src = netip.AddrFrom4([4]byte{10, 77, byte(i >> 16), byte(i >> 8)})
		p.SrcPort = uint16(1024 + i&0xff)
		k, _ := flow.KeyOf(&p)
		s := st
		t.Insert(k, 1, 60, packet.TCPSyn, &s)
	}
	after := liveHeap()
	held := t.Len()
	runtime.KeepAlive(t)
	return float64(after-before) / float64(held)
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
