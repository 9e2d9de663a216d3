package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/queue"
)

const policyText = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
interfaces = ["wan0"]
networks = ["0.0.0.0/0"]

[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[device]]
name = "cam"
ip = ["10.77.0.11"]

[[allow]]
name = "cam-cloud"
from = "device:cam"
to = "zone:wan"
services = ["tcp/443"]

[[allow]]
name = "cam-ntp-daytime"
from = "device:cam"
to = "zone:wan"
services = ["udp/123"]
hours = ["06:00-22:00"]
`

func loadText(t testing.TB, text string) *Loaded {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, _, err := Load(path, false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoadMonitorOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.toml")
	os.WriteFile(path, []byte(policyText), 0o644)
	l, _, err := Load(path, true)
	if err != nil || l.Policy.Mode != config.ModeMonitor {
		t.Fatalf("--monitor: %v mode %v", err, l.Policy.Mode)
	}
	if len(l.Sinks) != 1 || l.Sinks[0].Type != "syslog" || l.Sinks[0].Address != "" {
		t.Fatalf("with no sink configured alerts go to the local syslog: %+v", l.Sinks)
	}
}

func TestVerdictMarks(t *testing.T) {
	marks := nft.DefaultMarks()
	h := &handler{marks: marks}
	for _, tt := range []struct {
		d           engine.Decision
		accept      bool
		mark        uint32
		whatItMeans string
	}{
		{engine.Decision{Verdict: engine.Accept}, true, marks.Accepted(0), "fast path"},
		{engine.Decision{Verdict: engine.Accept, WouldDrop: true}, true, marks.Accepted(0), "monitor mode fast-paths too"},
		{engine.Decision{Verdict: engine.NeedMore}, true, 0, "no mark: the next packet is queued again"},
		{engine.Decision{Verdict: engine.Drop}, true, marks.Dropped(), "the verdict chain records DROPPED and drops"},
	} {
		accept, mark := h.verdict(tt.d)
		if accept != tt.accept || mark != tt.mark {
			t.Errorf("%s: got accept=%v mark=%#x, want %v %#x (%s)", tt.d.Verdict, accept, mark, tt.accept, tt.mark, tt.whatItMeans)
		}
	}
}

func TestHandlerJudgesQueuedPackets(t *testing.T) {
	l := loadText(t, policyText)
	eng := engine.New(l.Policy, engine.Options{})
	zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 4: "wan0"}, nil })
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := newHandler(eng, nft.DefaultMarks(), 4200, 2, zones, func() time.Time { return noon })
	syn := tcpSYN(t, "10.77.0.11", "198.51.100.7", 443, 1500)
	// The queue hands over only the first 512 bytes: still judged whole.
	if accept, mark := h.Judge(&queue.Packet{Queue: 4201, Payload: syn[:512], InIfindex: 3, OutIfindex: 4}); !accept || mark != nft.DefaultMarks().Accepted(0) {
		t.Fatalf("allowed SYN: accept=%v mark=%#x", accept, mark)
	}
	if _, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: tcpSYN(t, "10.77.0.11", "198.51.100.7", 22, 60), InIfindex: 3, OutIfindex: 4}); mark != nft.DefaultMarks().Dropped() {
		t.Fatalf("denied SYN: mark %#x, want DROPPED", mark)
	}
	if got := eng.Stats().Flows[engine.LayerMicro][engine.Drop].Load(); got != 1 {
		t.Fatalf("micro drops %d", got)
	}
}

// tcpSYN builds an IPv4 TCP SYN of the given IP length.
func tcpSYN(t testing.TB, src, dst string, dport uint16, length int) []byte {
	t.Helper()
	b := make([]byte, length)
	b[0] = 0x45
	b[2], b[3] = byte(length>>8), byte(length)
	b[8], b[9] = 64, 6
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	b[20], b[21] = 0x9c, 0x40 // source port 40000
	b[22], b[23] = byte(dport>>8), byte(dport)
	b[32] = 5 << 4 // data offset
	b[33] = 0x02   // SYN
	return b
}

func TestRejudgeAfterReloadAndWindowClose(t *testing.T) {
	marks := nft.DefaultMarks()
	l := loadText(t, policyText)
	eng := engine.New(l.Policy, engine.Options{})
	ct := &conntrack.Fake{}
	cam := netip.MustParseAddr("10.77.0.11")
	cloud := netip.MustParseAddr("198.51.100.7")
	https := conntrack.Flow{Proto: 6, Src: cam, Dst: cloud, SrcPort: 40000, DstPort: 443, Mark: 0x1207 | marks.Accepted(0), ID: 1}
	ntp := conntrack.Flow{Proto: 17, Src: cam, Dst: cloud, SrcPort: 123, DstPort: 123, Mark: marks.Accepted(0), ID: 2}
	other := conntrack.Flow{Proto: 6, Src: cam, Dst: cloud, SrcPort: 40001, DstPort: 80, ID: 3} // not ours: never judged
	for _, f := range []conntrack.Flow{https, ntp, other} {
		ct.Add(f)
	}
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	res, err := rejudge(context.Background(), ct, eng, marks, noon)
	if err != nil || res.Checked != 2 || res.Cut != 0 || res.Cleared != 0 {
		t.Fatalf("nothing changed at noon: %+v %v", res, err)
	}
	// 23:00: the NTP rule's window has closed; the fast-pathed flow is cut.
	res, _ = rejudge(context.Background(), ct, eng, marks, noon.Add(11*time.Hour))
	if res.Cut != 1 {
		t.Fatalf("window closed: %+v", res)
	}
	// A reload that drops the HTTPS rule cuts that flow too, and keeps the
	// mark bits that are not picoseg's.
	eng.Swap(loadText(t, strings.Replace(policyText, `services = ["tcp/443"]`, `services = ["tcp/8443"]`, 1)).Policy, 0)
	res, _ = rejudge(context.Background(), ct, eng, marks, noon)
	flows, _ := ct.Flows(context.Background())
	for _, f := range flows {
		state, _ := marks.Decode(f.Mark)
		switch f.ID {
		case 1:
			if state != nft.StateDropped || f.Mark&^marks.Mask != 0x1207 {
				t.Errorf("https after reload: mark %#x", f.Mark)
			}
		case 2:
			// Allowed again at noon: cleared, so its next packet is judged.
			if state != nft.StateUnjudged {
				t.Errorf("ntp at noon after being cut: state %v", state)
			}
		case 3:
			if f.Mark != 0 {
				t.Errorf("a flow picoseg never marked was touched: %#x", f.Mark)
			}
		}
	}
	if res.Cut != 1 || res.Cleared != 1 {
		t.Fatalf("after reload: %+v", res)
	}
}

func TestHasWindows(t *testing.T) {
	if !hasWindows(loadText(t, policyText).Policy) {
		t.Error("policy with hours")
	}
	if hasWindows(&policy.Policy{Rules: []policy.Rule{{Name: "x"}}}) {
		t.Error("policy without")
	}
}

func TestVolumesCutFastPathedFlows(t *testing.T) {
	text := policyText + `
[[allow]]
name = "cam-upload"
from = "device:cam"
to = "zone:wan"
services = ["tcp/8443"]
max_flow_bytes = "10MB"

[[allow]]
name = "cam-telemetry"
from = "device:cam"
to = "zone:wan"
services = ["udp/9000-9001"]
max_device_bytes = { amount = "1MB", per = "1h" }
`
	marks := nft.DefaultMarks()
	var events []engine.Event
	eng := engine.New(loadText(t, text).Policy, engine.Options{Sink: engine.SinkFunc(func(e engine.Event) { events = append(events, e) })})
	ct := &conntrack.Fake{}
	cam, cloud := netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("198.51.100.7")
	upload := conntrack.Flow{ID: 1, Proto: 6, Src: cam, Dst: cloud, SrcPort: 40000, DstPort: 8443, Mark: marks.Accepted(0), OrigBytes: 4e6}
	tele1 := conntrack.Flow{ID: 2, Proto: 17, Src: cam, Dst: cloud, SrcPort: 5000, DstPort: 9000, Mark: marks.Accepted(0), OrigBytes: 300e3}
	tele2 := conntrack.Flow{ID: 3, Proto: 17, Src: cam, Dst: cloud, SrcPort: 5001, DstPort: 9001, Mark: marks.Accepted(0), OrigBytes: 300e3}
	for _, f := range []conntrack.Flow{upload, tele1, tele2} {
		ct.Add(f)
	}
	v := newVolumes()
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	dump := func() []conntrack.Flow { fl, _ := ct.Flows(context.Background()); return fl }
	if cut, err := v.apply(dump(), eng, marks, ct, noon); err != nil || cut != 0 {
		t.Fatalf("within bounds: cut %d, %v", cut, err)
	}
	// The upload passes 10 MB; the device's telemetry passes 1 MB together.
	upload.OrigBytes, upload.ReplyBytes = 9e6, 2e6
	tele1.OrigBytes, tele2.OrigBytes = 600e3, 600e3
	ct = &conntrack.Fake{}
	for _, f := range []conntrack.Flow{upload, tele1, tele2} {
		ct.Add(f)
	}
	cut, err := v.apply(dump(), eng, marks, ct, noon.Add(10*time.Second))
	if err != nil || cut != 2 {
		t.Fatalf("over bounds: cut %d, %v", cut, err)
	}
	for _, f := range dump() {
		state, _ := marks.Decode(f.Mark)
		if want := map[uint32]nft.State{1: nft.StateDropped, 2: nft.StateAccepted, 3: nft.StateDropped}[f.ID]; state != want {
			t.Errorf("flow %d: %v, want %v", f.ID, state, want)
		}
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Type.String()+" "+e.Rule+" "+e.Reason.String())
	}
	want := []string{
		"volume_exceeded cam-upload flow exceeded the rule's byte limit",
		"volume_exceeded cam-telemetry device exceeded the rule's byte budget for this period",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events (-want +got):\n-%s\n+%s", strings.Join(want, "\n-"), strings.Join(got, "\n+"))
	}
	// A new telemetry flow is refused while the budget is spent.
	q := engine.Query{From: cam, To: cloud, Proto: 17, DPort: 9000, At: noon.Add(20 * time.Second)}
	if d := eng.ExplainQuery(q).Decision; d.Verdict != engine.Drop || d.Reason != engine.ReasonDeviceBytes {
		t.Errorf("new flow with the budget spent: %+v", d)
	}
}

// A reload that gives an allowed flow's rule a byte bound moves the
// fast-pathed flow into the bound's class, so the kernel checks it.
func TestRejudgeMovesFlowsToTheirNewClass(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, policyText).Policy, engine.Options{})
	ct := &conntrack.Fake{}
	https := conntrack.Flow{Proto: 6, Src: netip.MustParseAddr("10.77.0.11"), Dst: netip.MustParseAddr("198.51.100.7"),
		SrcPort: 40000, DstPort: 443, Mark: marks.Accepted(0), ID: 1}
	ct.Add(https)
	bounded := strings.Replace(policyText, `services = ["tcp/443"]`, "services = [\"tcp/443\"]\nmax_flow_bytes = \"1GB\"", 1)
	eng.Swap(loadText(t, bounded).Policy, 0)
	res, err := rejudge(context.Background(), ct, eng, marks, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	if err != nil || res.Reclassed != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	flows, _ := ct.Flows(context.Background())
	if state, class := marks.Decode(flows[0].Mark); state != nft.StateAccepted || class != 1 {
		t.Fatalf("after reload: %v class %d, want accepted class 1", state, class)
	}
}
