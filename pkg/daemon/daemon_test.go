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

func loadText(t *testing.T, text string) *Loaded {
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
func tcpSYN(t *testing.T, src, dst string, dport uint16, length int) []byte {
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
	https := conntrack.Flow{Proto: 6, Src: cam, Dst: cloud, SrcPort: 40000, DstPort: 443, Mark: 0x1234 | marks.Accepted(0), ID: 1}
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
			if state != nft.StateDropped || f.Mark&^marks.Mask != 0x1234 {
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
