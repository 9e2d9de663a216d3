package daemon

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// policyText with the camera's HTTPS rule needing TLS to a named server.
func tlsPolicyText(extra string) string {
	return strings.Replace(policyText, `services = ["tcp/443"]`, `services = ["tcp/443"]`+extra+`
app = "tls"
[allow.tls]
server_names = ["*.example.com"]`, 1)
}

// tcpSegment builds an IPv4 TCP segment without payload or options.
func tcpSegment(t testing.TB, src, dst string, sport, dport uint16, flags byte) []byte {
	t.Helper()
	b := tcpSYN(t, src, dst, dport, 40)
	b[20], b[21] = byte(sport>>8), byte(sport)
	b[33] = flags
	return b
}

// A flow under application inspection is marked Inspecting from its
// opener's packets only, so that the kernel passes its reply direction;
// the responder's packets, packet-size rules and other waits keep no mark.
func TestInspectingMark(t *testing.T) {
	marks := nft.DefaultMarks()
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	judge := func(text string, pkts ...[]byte) []uint32 {
		eng := engine.New(loadText(t, text).Policy, engine.Options{})
		zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 4: "wan0"}, nil })
		h := newHandler(eng, marks, 4200, 1, zones, func() time.Time { return noon })
		var got []uint32
		for i, p := range pkts {
			in, out := uint32(3), uint32(4)
			if i%2 == 1 {
				in, out = 4, 3
			}
			accept, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: p, InIfindex: in, OutIfindex: out})
			if !accept {
				t.Fatalf("packet %d dropped", i)
			}
			got = append(got, mark)
		}
		return got
	}
	syn := tcpSegment(t, "10.77.0.11", "198.51.100.7", 40000, 443, 0x02)
	synAck := tcpSegment(t, "198.51.100.7", "10.77.0.11", 443, 40000, 0x12)
	got := judge(tlsPolicyText(""), syn, synAck)
	if got[0] != marks.Inspecting() {
		t.Errorf("opener's SYN under a tls rule: mark %#x, want Inspecting %#x", got[0], marks.Inspecting())
	}
	if got[1] != 0 {
		t.Errorf("responder's SYN-ACK: mark %#x, want none (the reply never marks the flow)", got[1])
	}
	if got := judge(tlsPolicyText("\npacket_size = \"40-1500\""), syn); got[0] != 0 {
		t.Errorf("tls rule with a packet size bound: mark %#x, want none (every first packet is the engine's)", got[0])
	}
	// A plain rule's wait for more packets (size bounds) is no inspection.
	h := &handler{marks: marks}
	if _, mark := h.verdict(engine.Decision{Verdict: engine.NeedMore, Reason: engine.ReasonInspecting, Layer: engine.LayerPico}); mark != 0 {
		t.Errorf("size inspection: mark %#x", mark)
	}
	if _, mark := h.verdict(engine.Decision{Verdict: engine.NeedMore, Reason: engine.ReasonAppInspecting, Layer: engine.LayerPico, Related: true}); mark != 0 {
		t.Errorf("an ICMP error: mark %#x", mark)
	}
}

// A reload that denies a flow under inspection cuts it; one that still
// allows it leaves it under inspection (its next payload is queued).
func TestRejudgeInspecting(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, tlsPolicyText("")).Policy, engine.Options{})
	ct := &conntrack.Fake{}
	cam, cloud := netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("198.51.100.7")
	ct.Add(conntrack.Flow{Proto: 6, Src: cam, Dst: cloud, SrcPort: 40000, DstPort: 443, Mark: 0x1207 | marks.Inspecting(), ID: 1})
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	res, err := rejudge(context.Background(), ct, eng, marks, noon)
	if err != nil || res.Checked != 1 || res.Cut != 0 || res.Cleared != 0 || res.Reclassed != 0 {
		t.Fatalf("still allowed: %+v %v", res, err)
	}
	flows, _ := ct.Flows(context.Background())
	if flows[0].Mark != 0x1207|marks.Inspecting() {
		t.Fatalf("still allowed: mark %#x, want it unchanged", flows[0].Mark)
	}
	eng.Swap(loadText(t, strings.Replace(tlsPolicyText(""), `services = ["tcp/443"]`, `services = ["tcp/8443"]`, 1)).Policy, 0)
	if res, _ = rejudge(context.Background(), ct, eng, marks, noon); res.Cut != 1 {
		t.Fatalf("denied by the reload: %+v", res)
	}
	flows, _ = ct.Flows(context.Background())
	if state, _ := marks.Decode(flows[0].Mark); state != nft.StateDropped || flows[0].Mark&^marks.Mask != 0x1207 {
		t.Fatalf("denied by the reload: mark %#x", flows[0].Mark)
	}
}
