package daemon

import (
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// burstHandler is the handler as the daemon wires it (inventory, verdict
// latency), on policyText, for one device's new flows.
func burstHandler(b *testing.B) *handler {
	b.Helper()
	l := loadText(b, policyText)
	eng := engine.New(l.Policy, engine.Options{})
	zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 4: "wan0"}, nil })
	inv, err := inventory.New(inventory.Options{StatePath: b.TempDir() + "/inventory.json"})
	if err != nil {
		b.Fatal(err)
	}
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := newHandler(eng, nft.DefaultMarks(), 4200, 1, zones, func() time.Time { return noon })
	h.flowStarted = newDevices(inv, inventory.NewIdentifier(l.Policy), func(alert.Alert) {}, 1).flowStarted
	h.latency = metrics.NewRegistry().Histogram("picoseg_verdict_seconds", "Time from reading a queued packet to its verdict (judging the packets read before it in the same read included).", metrics.LatencyBuckets())
	return h
}

// BenchmarkHandlerNewUDPFlow is the one-device burst as the handler sees
// it: every packet is one device's first datagram from a fresh source
// port, allowed by a rule, so each is a new flow (flow-table insert,
// inventory sighting, verdict latency).
func BenchmarkHandlerNewUDPFlow(b *testing.B) {
	h := burstHandler(b)
	dgram := udpDatagram(b, "10.77.0.11", "198.51.100.7", 123, 60)
	mac := []byte{2, 0, 0, 0, 0, 0x11}
	// The rule's hours give the flow a class; the verdict is the same
	// accepting mark for every datagram.
	accept, want := h.Judge(&queue.Packet{Queue: 4200, Payload: dgram, InIfindex: 3, OutIfindex: 4, HwAddr: mac})
	if !accept || want == 0 || want == nft.DefaultMarks().Dropped() {
		b.Fatalf("first datagram: accept=%v mark=%#x, want an accepting mark", accept, want)
	}
	news := h.eng.Stats().NewFlows.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Source port and server both change, so that every datagram
		// is a flow the table has not seen.
		sport := uint16(1025 + i%60000)
		dgram[20], dgram[21] = byte(sport>>8), byte(sport)
		dgram[18] = byte(i / 60000)
		if accept, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: dgram, InIfindex: 3, OutIfindex: 4, HwAddr: mac}); !accept || mark != want {
			b.Fatalf("datagram %d: accept=%v mark=%#x, want %#x", i, accept, mark, want)
		}
	}
	b.StopTimer()
	if got := h.eng.Stats().NewFlows.Load() - news; got != uint64(b.N) {
		b.Fatalf("%d new flows in %d datagrams, want every datagram a new flow", got, b.N)
	}
}

// udpDatagram builds an IPv4 UDP datagram of the given IP length from
// source port 40000.
func udpDatagram(tb testing.TB, src, dst string, dport uint16, length int) []byte {
	tb.Helper()
	b := tcpSYN(tb, src, dst, dport, length)
	b[9] = 17
	b[24], b[25] = byte((length-20)>>8), byte(length-20)
	b[32], b[33] = 0, 0
	return b
}
