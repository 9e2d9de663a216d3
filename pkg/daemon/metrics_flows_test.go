package daemon

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/metrics"
	"github.com/picoseg/picoseg/pkg/packet"
)

// picoseg_flow_rule_total counts the flows the engine judged, by rule and
// verdict, from the flow table's running counts.
func TestFlowRuleMetric(t *testing.T) {
	eng := engine.New(loadText(t, policyText).Policy, engine.Options{})
	w := eng.NewWorker()
	cam, cloud := netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("198.51.100.7")
	judge := func(sport, dport uint16) {
		p := packet.Packet{Kind: packet.KindOK, Src: cam, Dst: cloud, Proto: packet.ProtoTCP, SrcPort: sport, DstPort: dport,
			TCPFlags: packet.TCPSyn, Length: 60}
		w.Judge(&p, noon.UnixNano(), engine.NoMeta)
	}
	for i := range 3 {
		judge(uint16(40000+i), 443)
	}
	judge(41000, 22)
	judge(41001, 22)

	r := metrics.NewRegistry()
	r.Family("picoseg_flow_rule_total", "Flows in the flow table by deciding rule and verdict.", metrics.Gauge, flowRuleCounts(eng))
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`picoseg_flow_rule_total{layer="pico",rule="cam-cloud",verdict="accept"} 3`,
		`verdict="drop"} 2`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
}
