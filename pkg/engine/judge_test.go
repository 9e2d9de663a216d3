package engine

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

// judgePolicy is homePolicy with a device budget and a lower bound, so that
// queries reach the budget table.
const judgePolicy = homePolicy + `
[[allow]]
name = "plugs-telemetry"
from = "group:plugs"
to = "zone:wan"
services = ["udp/9000"]
max_device_bytes = { amount = "1MB", per = "1h" }
max_new_flows = "1/m"
`

// randomQuery is a flow between the policy's devices and the world, at a
// random time of the week, now and then with a MAC, a size or interfaces.
func randomQuery(r *rand.Rand) Query {
	addrs := []string{"10.77.0.11", "10.77.0.21", "10.77.0.22", "10.77.0.99", "192.168.1.20", "192.168.1.7", "203.0.113.9", "198.51.100.7", "10.77.0.1", "0.0.0.0"}
	q := Query{
		From: netip.MustParseAddr(addrs[r.IntN(len(addrs))]), To: netip.MustParseAddr(addrs[r.IntN(len(addrs))]),
		Proto: []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP}[r.IntN(3)],
		DPort: []uint16{443, 554, 8883, 9000, 5004, 53, 22}[r.IntN(7)],
		At:    monday10.Add(time.Duration(r.IntN(7*24*60)) * time.Minute), Existing: r.IntN(2) == 0,
	}
	if r.IntN(3) == 0 {
		q.Size = uint16(20 + r.IntN(1700))
	}
	if r.IntN(4) == 0 {
		mac := [6]byte{2, 0, 0, 0, 0, []byte{0x11, 0x21, 0x22, 0x33}[r.IntN(4)]}
		q.FromMAC = &mac
	}
	return q
}

// Judge is explain without the steps: for random flows at random times the
// same decision, and explain's last step is the stage that made it.
func TestJudgeIsExplainWithoutSteps(t *testing.T) {
	e := New(compile(t, judgePolicy), Options{})
	r := rand.New(rand.NewPCG(10, 11))
	verdicts := map[Verdict]int{}
	for i := 0; i < 5000; i++ {
		q := randomQuery(r)
		got := e.Judge(q)
		tr := e.ExplainQuery(q)
		if got != tr.Decision {
			t.Fatalf("query %+v: Judge %+v, explain %+v", q, got, tr.Decision)
		}
		last := tr.Steps[len(tr.Steps)-1]
		if last.Layer != got.Layer || last.Result.Rule != got.Rule || last.Result.Reason != got.Reason {
			t.Fatalf("query %+v: explain's last step %+v does not decide %+v", q, last, got)
		}
		verdicts[got.Verdict]++
	}
	if verdicts[Accept] == 0 || verdicts[Drop] == 0 || verdicts[NeedMore] == 0 {
		t.Fatalf("the random flows did not reach every verdict: %v", verdicts)
	}
}

// Judge changes nothing: no flow is stored, no counter moves, and a new-flow
// rate it was asked about is still whole for the flow that comes.
func TestJudgeChangesNothing(t *testing.T) {
	var events int
	e := New(compile(t, judgePolicy), Options{Sink: SinkFunc(func(Event) { events++ })})
	plug := Query{From: netip.MustParseAddr("10.77.0.21"), To: netip.MustParseAddr("198.51.100.7"), Proto: packet.ProtoUDP, DPort: 9000, At: monday10}
	spoof := Query{From: netip.MustParseAddr("10.77.0.22"), To: netip.MustParseAddr("198.51.100.7"), Proto: packet.ProtoUDP, DPort: 9000, At: monday10, FromMAC: &[6]byte{2, 0, 0, 0, 0, 0x21}}
	for i := 0; i < 10; i++ {
		if d := e.Judge(plug); d.Verdict != Accept {
			t.Fatalf("query %d of a flow within its rate (1/m): %+v", i, d)
		}
		if d := e.Judge(spoof); d.Verdict != Drop || d.Reason != ReasonSpoofedMAC {
			t.Fatalf("spoofed query: %+v", d)
		}
	}
	s := e.Stats()
	if n := e.Flows().Len(); n != 0 || s.Packets.Load() != 0 || s.NewFlows.Load() != 0 || s.Events.Load() != 0 || events != 0 {
		t.Fatalf("after queries: %d flows, %d packets, %d new flows, %d events (%d emitted)", n, s.Packets.Load(), s.NewFlows.Load(), s.Events.Load(), events)
	}
	// The rate is 1 a minute: had a query counted, this flow would be the second.
	w := e.NewWorker()
	if d := w.Judge(pkt(t, "udp 10.77.0.21:5000 -> 198.51.100.7:9000"), monday10.UnixNano(), NoMeta); d.Verdict != Accept {
		t.Fatalf("the first real flow after the queries: %+v", d)
	}
	if d := w.Judge(pkt(t, "udp 10.77.0.21:5001 -> 198.51.100.7:9000"), monday10.UnixNano(), NoMeta); d.Verdict != Drop || d.Reason != ReasonNewFlowRate {
		t.Fatalf("control: the second real flow in the minute: %+v, want the rate to refuse it", d)
	}
}

// Judge and Volume allocate nothing: enforcement calls them for every flow
// the kernel tracks, every few seconds.
func TestJudgeAllocatesNothing(t *testing.T) {
	e := New(compile(t, judgePolicy), Options{})
	r := rand.New(rand.NewPCG(12, 13))
	qs := make([]Query, 256)
	for i := range qs {
		qs[i] = randomQuery(r)
	}
	i := 0
	if n := testing.AllocsPerRun(2000, func() { e.Judge(qs[i%len(qs)]); i++ }); n != 0 {
		t.Errorf("Judge: %v allocations per flow, want 0", n)
	}
	plug := Query{From: netip.MustParseAddr("10.77.0.21"), To: netip.MustParseAddr("198.51.100.7"), Proto: packet.ProtoUDP, DPort: 9000, At: monday10}
	if n := testing.AllocsPerRun(2000, func() { e.Volume(plug, 1000, 10, monday10) }); n != 0 {
		t.Errorf("Volume: %v allocations per flow, want 0", n)
	}
}

// Judge is safe for concurrent use, beside the verdict path and reloads;
// each answer is the one the policy in force gives (run with -race).
func TestJudgeConcurrent(t *testing.T) {
	pol := compile(t, judgePolicy)
	e := New(pol, Options{})
	r := rand.New(rand.NewPCG(14, 15))
	qs := make([]Query, 200)
	want := make([]Decision, len(qs))
	for i := range qs {
		qs[i] = randomQuery(r)
		want[i] = e.Judge(qs[i])
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				for i := range qs {
					if d := e.Judge(qs[i]); d != want[i] {
						t.Errorf("query %d: %+v, alone %+v", i, d, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := e.NewWorker()
		for k := 0; k < 2000; k++ {
			w.Judge(pkt(t, "tcp 10.77.0.11:40000 -> 192.168.1.20:554 flags=S"), monday10.UnixNano()+int64(k), NoMeta)
			if k%100 == 0 {
				e.Swap(pol, 0) // the same policy: the same answers
			}
		}
	}()
	wg.Wait()
}

// A query about a later time leaves the device's budget period alone: the
// period a device spent its budget in is not closed early by someone
// asking about tomorrow.
func TestJudgeLeavesBudgetPeriods(t *testing.T) {
	e := New(compile(t, replaceOnce(t, judgePolicy, `amount = "1MB"`, `amount = "1KB"`)), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	for i := 0; i < 4; i++ {
		w.Judge(pkt(t, "udp 10.77.0.21:5000 -> 198.51.100.7:9000 len=400"), now+int64(i), NoMeta)
	}
	plug := Query{From: netip.MustParseAddr("10.77.0.21"), To: netip.MustParseAddr("198.51.100.7"), Proto: packet.ProtoUDP, DPort: 9000, At: monday10.Add(time.Minute), Existing: true}
	if d := e.Judge(plug); d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("the plug over its budget: %+v", d)
	}
	plug.At = monday10.Add(2 * time.Hour)
	if d := e.Judge(plug); d.Verdict != Accept {
		t.Fatalf("the plug in the next period: %+v", d)
	}
	if d := w.Judge(pkt(t, "udp 10.77.0.21:5001 -> 198.51.100.7:9000 len=400"), monday10.Add(2*time.Minute).UnixNano(), NoMeta); d.Verdict != Drop || d.Reason != ReasonDeviceBytes {
		t.Fatalf("the plug's next flow, still in the spent period: %+v", d)
	}
}
