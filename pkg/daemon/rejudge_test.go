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
)

// portForwardPolicy lets the internet reach the NVR's web port, which the
// gateway forwards from its own 198.51.100.1:8080 (a DNAT rule outside
// picoseg). It has a time window, so the periodic pass judges every flow.
const portForwardPolicy = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
interfaces = ["wan0"]
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
interfaces = ["lan0"]
networks = ["10.88.0.0/24"]

[[segment]]
from = "wan"
to = "lan"
action = "micro"

[[device]]
name = "nvr"
ip = ["10.88.0.10"]

[[allow]]
name = "nvr-forward"
from = "zone:wan"
to = "device:nvr"
services = ["tcp/80"]
max_flow_bytes = "1MB"

[[allow]]
name = "nvr-ntp-daytime"
from = "device:nvr"
to = "zone:wan"
services = ["udp/123"]
hours = ["06:00-22:00"]
`

var noon = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// forwarded is a port-forwarded download as conntrack dumps it: sent to the
// gateway's 198.51.100.1:8080, rewritten to the NVR's 10.88.0.10:80, whose
// answers make the reply tuple.
func forwarded(marks nft.Marks) conntrack.Flow {
	return conntrack.Flow{
		ID: 1, Proto: 6, Mark: marks.Accepted(0),
		Src: netip.MustParseAddr("198.51.100.2"), SrcPort: 40000,
		Dst: netip.MustParseAddr("198.51.100.1"), DstPort: 8080,
		ReplySrc: netip.MustParseAddr("10.88.0.10"), ReplySrcPort: 80,
	}
}

func markOf(t *testing.T, ct *conntrack.Fake, id uint32) uint32 {
	t.Helper()
	flows, _ := ct.Flows(context.Background())
	for _, f := range flows {
		if f.ID == id {
			return f.Mark
		}
	}
	t.Fatalf("flow %d gone", id)
	return 0
}

// An allowed port forward is judged as the queue saw it, after DNAT: a
// reload that only adds an unrelated rule, and the periodic pass, leave it
// alone; a reload that denies it cuts it.
func TestRejudgePortForwardAsQueued(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, portForwardPolicy).Policy, engine.Options{})
	ct := &conntrack.Fake{}
	fwd := forwarded(marks)
	ct.Add(fwd)

	// The first judgement, as the queue saw the flow: allowed.
	src, dst, dport := fwd.Judged()
	if d := eng.ExplainQuery(engine.Query{From: src, To: dst, Proto: 6, DPort: dport, At: noon}).Decision; d.Verdict != engine.Accept {
		t.Fatalf("the forward's first packet: %+v, want accept", d)
	}

	unrelated := portForwardPolicy + "\n[[allow]]\nname = \"nvr-dns\"\nfrom = \"device:nvr\"\nto = \"zone:wan\"\nservices = [\"udp/53\"]\n"
	eng.Swap(loadText(t, unrelated).Policy, 0)
	res, err := rejudge(context.Background(), ct, eng, marks, noon)
	if err != nil || res.Checked != 1 || res.Cut != 0 {
		t.Fatalf("reload adding an unrelated rule: %+v %v; want the forward checked and kept", res, err)
	}
	// The 10 s pass (the policy has a window) judges it flow by flow.
	var pass rejudgeResult
	if err := rejudgeFlow(fwd, ct, eng, marks, noon.Add(10*time.Second), &pass); err != nil || pass.Cut != 0 {
		t.Fatalf("periodic pass: %+v %v", pass, err)
	}
	if state, _ := marks.Decode(markOf(t, ct, 1)); state != nft.StateAccepted {
		t.Fatalf("forward after reload and pass: %v, want accepted", state)
	}

	// Control: a reload that takes the forward's rule away cuts it.
	eng.Swap(loadText(t, strings.Replace(unrelated, `services = ["tcp/80"]`, `services = ["tcp/443"]`, 1)).Policy, 0)
	res, err = rejudge(context.Background(), ct, eng, marks, noon)
	if err != nil || res.Cut != 1 {
		t.Fatalf("reload denying the forward: %+v %v; want it cut", res, err)
	}
	if state, _ := marks.Decode(markOf(t, ct, 1)); state != nft.StateDropped {
		t.Fatalf("forward after a denying reload: %v, want dropped", state)
	}
}

// A port forward's bytes are charged to the forward's rule: over its
// max_flow_bytes it is cut (judged on the original tuple, no rule matched
// and the bound was never applied).
func TestVolumesChargePortForward(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, portForwardPolicy).Policy, engine.Options{})
	ct := &conntrack.Fake{}
	fwd := forwarded(marks)
	fwd.ReplyBytes = 3e6 // the download: the NVR answers
	ct.Add(fwd)
	flows, _ := ct.Flows(context.Background())
	cut, err := newVolumes().apply(flows, eng, marks, ct, noon)
	if err != nil || cut != 1 {
		t.Fatalf("forward over its max_flow_bytes: cut %d, %v; want 1", cut, err)
	}
	if state, _ := marks.Decode(markOf(t, ct, 1)); state != nft.StateDropped {
		t.Fatalf("forward over its bound: %v, want dropped", state)
	}
}

// closing is a conntrack table whose flows close while a pass is under way:
// each is gone by the time the pass acts on it, as happens on a busy
// gateway between the dump and the mark.
type closing struct{ *conntrack.Fake }

func (c closing) Each(ctx context.Context, fn func(conntrack.Flow) error) error {
	flows, err := c.Flows(ctx)
	if err != nil {
		return err
	}
	for i, f := range flows {
		if i == 0 {
			c.Delete(f)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// A flow that closes mid-pass does not end the pass: the flows after it are
// still judged, and the pass reports no error.
func TestPassSurvivesAFlowThatCloses(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, portForwardPolicy).Policy, engine.Options{})
	ct := closing{&conntrack.Fake{}}
	nvr, cloud := netip.MustParseAddr("10.88.0.10"), netip.MustParseAddr("203.0.113.5")
	for id := uint32(1); id <= 3; id++ {
		ct.Add(conntrack.Flow{ID: id, Proto: 17, Src: nvr, SrcPort: uint16(1000 + id), Dst: cloud, DstPort: 123, Mark: marks.Accepted(0), OrigBytes: 2e6})
	}
	// 23:00: the NTP window has closed; every flow must be cut.
	res, err := rejudge(context.Background(), ct, eng, marks, noon.Add(11*time.Hour))
	if err != nil {
		t.Fatalf("a flow that closed mid-pass stopped the pass: %v", err)
	}
	if res.Checked != 3 || res.Cut != 3 {
		t.Fatalf("pass: %+v, want 3 checked and cut (one of them gone meanwhile)", res)
	}
	for id := uint32(2); id <= 3; id++ {
		if state, _ := marks.Decode(markOf(t, ct.Fake, id)); state != nft.StateDropped {
			t.Errorf("flow %d after the pass: %v, want dropped", id, state)
		}
	}
}
