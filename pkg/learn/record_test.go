package learn

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/replay"
)

// recordAsDaemon feeds rec the first packet of every flow a local device
// opens in capture, as the daemon's handler does for the queue's packets.
func recordAsDaemon(t *testing.T, rec *Recorder, capture string) {
	t.Helper()
	base := loadBase(t, basePolicy)
	id := inventory.NewIdentifier(base)
	r := replay.New(base)
	r.ObservePackets(func(p *packet.Packet, d engine.Decision, now int64) {
		if _, ok := id.Identify(p.Src); ok && d.NewFlow && !d.Reply {
			rec.FlowStarted(p, time.Unix(0, now))
		}
	})
	if err := r.File(capture); err != nil {
		t.Fatal(err)
	}
}

// TestLearnFromDaemonRecord learns from what the daemon records in
// monitor mode (first packets only), saved and loaded back: the proposal
// loads, accepts the devices' traffic, drops a port the plug never used,
// names the record as its evidence and leaves volumes unbounded; a
// scanning device fills its own share of the record and is flagged.
func TestLearnFromDaemonRecord(t *testing.T) {
	dir := t.TempDir()
	frames := homeTraffic()
	for port := uint16(1); port <= 300; port++ {
		frames = append(frames, frame{at: time.Duration(port) * 10 * time.Millisecond, srcMAC: scanMAC, dstMAC: nvrMAC, src: scanner, dst: nvr,
			proto: layers.IPProtocolTCP, sport: 60000, dport: port, syn: true})
	}
	capture := filepath.Join(dir, "home.pcap")
	writeCapture(t, capture, frames)
	rec := NewRecorder(0, time.UTC)
	recordAsDaemon(t, rec, capture)
	path := filepath.Join(dir, "learn.json")
	if err := rec.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := LoadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 5+recordPerSender || f.Refused != 300-recordPerSender {
		t.Errorf("%d entries, %d refused; want %d and %d", len(f.Entries), f.Refused, 5+recordPerSender, 300-recordPerSender)
	}
	l := loadBase(t, basePolicy)
	lr, err := New(l, loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lr.Record(f); err != nil {
		t.Fatal(err)
	}
	p := lr.Propose()
	text := writeProposal(t, p)
	pol, _ := loadProposal(t, text)
	if learnedAccepted(t, l, pol, p, capture) == 0 {
		t.Errorf("nothing learned:\n%s", text)
	}
	if len(p.Scans) != 1 {
		t.Errorf("scans %v, want the scanner", p.Scans)
	}
	for _, r := range p.Rules {
		a := r.Allow
		if a.PacketSize != nil || a.MaxFlowBytes != 0 || a.MaxDeviceBytes != nil || a.MaxNewFlows.Count == 0 {
			t.Errorf("rule %s: volumes bounded or no rate: %+v", a.Name, a)
		}
		if c := strings.Join(r.Comment, "\n"); !strings.Contains(c, "captures: the daemon's record") {
			t.Errorf("rule %s does not name the record:\n%s", a.Name, c)
		}
	}
	shifted := filepath.Join(dir, "shifted.pcap")
	writeCapture(t, shifted, tcpConn(0, plugAMAC, routerMAC, plugA, cloud, 41001, 23, 10, 10))
	if o := outcomesOf(t, pol, shifted)["tcp 10.77.0.21>203.0.113.5:23"]; o.Accepted || o.Layer != "micro" {
		t.Errorf("a port the plug never used: %s", o)
	}
}

// TestRecorderBounds: the record never holds more entries than its bound,
// counts what it refused, and repeated flows cost no entry.
func TestRecorderBounds(t *testing.T) {
	rec := NewRecorder(4, time.UTC)
	var p packet.Packet
	p.Kind, p.Proto, p.HasMAC = packet.KindOK, packet.ProtoTCP, true
	p.Src = mustAddr(plugA)
	p.Dst = mustAddr(cloud)
	at := captureStart
	for port := uint16(1); port <= 10; port++ {
		for i := 0; i < 3; i++ {
			p.DstPort = port
			rec.FlowStarted(&p, at)
			at = at.Add(time.Second)
		}
	}
	f := rec.Snapshot()
	if len(f.Entries) != 4 || f.Refused != 18 || f.Entries[0].Flows != 3 || f.Entries[0].MaxPerMinute != 3 {
		t.Errorf("%d entries, %d refused, first %+v", len(f.Entries), f.Refused, f.Entries[0])
	}
	if n := testing.AllocsPerRun(100, func() { rec.FlowStarted(&p, at) }); n != 0 {
		t.Errorf("%v allocations recording a flow already recorded", n)
	}
}

// BenchmarkLearnCapture learns from a capture of ten minutes of the home
// traffic repeated: the cost per packet of learning, replay included.
func BenchmarkLearnCapture(b *testing.B) {
	var frames []frame
	for i := 0; i < 50; i++ {
		for _, f := range homeTraffic() {
			f.at += time.Duration(i) * 10 * time.Minute
			f.sport += uint16(i)
			frames = append(frames, f)
		}
	}
	capture := filepath.Join(b.TempDir(), "home.pcap")
	writeCapture(b, capture, frames)
	l := loadBase(b, basePolicy)
	cfg := loadConfig(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		lr, err := New(l, cfg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := lr.File(capture); err != nil {
			b.Fatal(err)
		}
		if p := lr.Propose(); len(p.Rules) < 3 {
			b.Fatalf("%d rules", len(p.Rules))
		}
	}
	b.ReportMetric(float64(len(frames))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
