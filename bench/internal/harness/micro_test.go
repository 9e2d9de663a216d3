package harness

import (
	"strings"
	"testing"

	"github.com/picoseg/picoseg/bench/internal/stats"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/picoseg/picoseg/pkg/engine
cpu: AMD EPYC
BenchmarkJudgeMiss/devices=10000/rules=1000-2   	   81324	      1294 ns/op	       0 B/op	       0 allocs/op
BenchmarkJudgeMiss/devices=10000/rules=1000-2   	   78631	      1300 ns/op	       0 B/op	       0 allocs/op
PASS
pkg: github.com/picoseg/picoseg/pkg/daemon
BenchmarkRejudge100k-2   	      12	  91000000 ns/op	       0 B/op	       3 allocs/op
pkg: github.com/picoseg/picoseg/pkg/capture
BenchmarkReplayIoT-2   	     654	    178257 ns/op	       109.3 ns/packet	      1631 packets/op	     416 B/op	       7 allocs/op
`

func TestParseBench(t *testing.T) {
	rs := parseBench(sampleBench)
	if len(rs) != 4 {
		t.Fatalf("parsed %d results, want 4: %+v", len(rs), rs)
	}
	r := rs[3]
	if r.Pkg != "github.com/picoseg/picoseg/pkg/capture" || r.Name != "BenchmarkReplayIoT" || r.NsPerOp != 178257 || r.Allocs != 7 || r.Metrics["ns/packet"] != 109.3 {
		t.Errorf("ReplayIoT = %+v", r)
	}
	if got := microKey(rs[0]); got != "micro_engine_JudgeMiss_devices10000_rules1000_ns_per_op" {
		t.Errorf("key = %q", got)
	}
}

func TestAddMicro(t *testing.T) {
	rep := &stats.Report{}
	addMicro(rep, parseBench(sampleBench))
	f, ok := rep.Get("micro_engine_JudgeMiss_devices10000_rules1000_ns_per_op")
	if !ok || f.Median != 1297 || f.Min != 1294 || f.Max != 1300 {
		t.Errorf("JudgeMiss figure = %+v", f)
	}
	if len(rep.Extra) != 1 || !strings.Contains(rep.Extra[0].Body, "109.3 ns/packet") {
		t.Errorf("section = %+v", rep.Extra)
	}
	// The re-judge benchmark's allocations are a figure of their own.
	if a, ok := rep.Get("micro_daemon_Rejudge100k_allocs_per_op"); !ok || a.Median != 3 {
		t.Errorf("Rejudge allocs figure = %+v, %v", a, ok)
	}
	if _, ok := rep.Get("micro_engine_JudgeMiss_devices10000_rules1000_allocs_per_op"); ok {
		t.Error("allocs figure for a benchmark other than the re-judge one")
	}
}

func TestLastTook(t *testing.T) {
	out := "time=x level=INFO msg=\"policy reloaded\" hash=1 took=12.5ms\n" +
		"time=y level=INFO msg=\"policy reloaded\" hash=2 generation=3 took=181.034ms\nother\n"
	d, ok := lastTook(out)
	if !ok || d.Milliseconds() != 181 {
		t.Errorf("lastTook = %v, %v", d, ok)
	}
	if _, ok := lastTook("msg=\"policy reloaded\" hash=1\n"); ok {
		t.Error("took found in a line without it")
	}
}
