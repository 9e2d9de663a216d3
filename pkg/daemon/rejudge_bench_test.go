package daemon

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/conntrack"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
)

// trackedFlows returns n flows of portForwardPolicy as a busy gateway
// tracks them: port forwards to the NVR, the NVR's NTP, and denied
// attempts on the NVR's SSH port, each marked with the judgement it has at
// noon (so that a pass at noon re-marks none).
func trackedFlows(eng *engine.Engine, marks nft.Marks, n int) []conntrack.Flow {
	gw, nvr := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("10.88.0.10")
	flows := make([]conntrack.Flow, n)
	for i := range flows {
		peer := netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)})
		f := conntrack.Flow{ID: uint32(i + 1), Proto: 6, Src: peer, SrcPort: uint16(1024 + i%60000), Dst: gw, DstPort: 8080, ReplySrc: nvr, ReplySrcPort: 80}
		switch i % 4 {
		case 1:
			f = conntrack.Flow{ID: uint32(i + 1), Proto: 17, Src: nvr, SrcPort: uint16(1024 + i%60000), Dst: peer, DstPort: 123}
		case 2:
			f.DstPort, f.ReplySrcPort = 2222, 22
		}
		d := eng.Judge(judgedQuery(&f, noon))
		f.Mark = marks.Dropped()
		if d.Verdict == engine.Accept {
			f.Mark = marks.Accepted(d.Class)
		}
		flows[i] = f
	}
	return flows
}

// streamed is a conntrack table whose dump hands out its flows one at a
// time from a list, as the kernel's dump does, without copying them first.
// Marks go to the embedded Fake (which tracks none of them: a flow it does
// not know is a flow that closed).
type streamed struct {
	*conntrack.Fake
	flows []conntrack.Flow
}

func (s streamed) Each(ctx context.Context, fn func(conntrack.Flow) error) error {
	for _, f := range s.flows {
		if err := fn(f); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Judging a conntrack entry again allocates nothing: the 10 s pass and
// every reload go over every flow the kernel tracks.
func TestRejudgeFlowAllocatesNothing(t *testing.T) {
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(t, portForwardPolicy).Policy, engine.Options{})
	ct := &conntrack.Fake{}
	flows := trackedFlows(eng, marks, 64)
	for _, f := range flows {
		ct.Add(f)
	}
	var res rejudgeResult
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		if err := rejudgeFlow(flows[i%len(flows)], ct, eng, marks, noon, &res); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if n != 0 {
		t.Errorf("re-judging a conntrack entry: %v allocations, want 0", n)
	}
	if res.Checked == 0 || res.Cut+res.Cleared+res.Reclassed != 0 {
		t.Fatalf("pass at noon: %+v, want every flow checked and none changed", res)
	}
}

// BenchmarkRejudge100k is one pass over 100 000 tracked flows; allocs/op
// is the whole pass's, allocs/entry and ns/entry what each flow costs.
func BenchmarkRejudge100k(b *testing.B) {
	const entries = 100000
	marks := nft.DefaultMarks()
	eng := engine.New(loadText(b, portForwardPolicy).Policy, engine.Options{})
	ct := streamed{&conntrack.Fake{}, trackedFlows(eng, marks, entries)}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := rejudge(ctx, ct, eng, marks, noon.Add(time.Duration(i)*time.Millisecond))
		if err != nil || res.Checked != entries || res.Cut+res.Cleared+res.Reclassed != 0 {
			b.Fatalf("pass: %+v %v", res, err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entries, "ns/entry")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/entries, "allocs/entry")
}
