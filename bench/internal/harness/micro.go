package harness

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/picoseg/picoseg/bench/internal/stats"
)

// microPackages are the packages whose Go benchmarks the report summarises.
// pkg/daemon holds the benchmark of re-judging the conntrack table after a
// reload (its allocations must not grow with the entries).
var microPackages = []string{"./pkg/engine", "./pkg/flow", "./pkg/packet", "./pkg/capture", "./pkg/daemon", "./bench/internal/flowmem"}

// benchResult is one line of `go test -bench` output.
type benchResult struct {
	Pkg, Name string
	NsPerOp   float64
	Allocs    float64 // allocs/op; -1 when not reported
	Metrics   map[string]float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads `go test -bench -benchmem` output: "pkg:" lines name the
// package of the benchmark lines that follow.
func parseBench(out string) []benchResult {
	var res []benchResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := benchResult{Pkg: pkg, Name: m[1], Allocs: -1, Metrics: map[string]float64{}}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.NsPerOp = v
			case "allocs/op":
				r.Allocs = v
			default:
				r.Metrics[f[i+1]] = v
			}
		}
		res = append(res, r)
	}
	return res
}

// microKey names a benchmark's figure: micro_<package>_<benchmark>.
func microKey(r benchResult) string {
	pkg := r.Pkg[strings.LastIndex(r.Pkg, "/")+1:]
	name := strings.TrimPrefix(r.Name, "Benchmark")
	name = strings.NewReplacer("/", "_", "=", "", "-", "_").Replace(name)
	return "micro_" + pkg + "_" + name + "_ns_per_op"
}

// addMicro adds one figure per benchmark (ns/op over the -count runs) and a
// section with allocations and custom metrics.
func addMicro(rep *stats.Report, results []benchResult) {
	byKey := map[string][]benchResult{}
	var keys []string
	for _, r := range results {
		k := microKey(r)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	var b strings.Builder
	b.WriteString("| benchmark | ns/op (median) | allocs/op | other |\n|---|---:|---:|---|\n")
	for _, k := range keys {
		rs := byKey[k]
		var ns []float64
		for _, r := range rs {
			ns = append(ns, r.NsPerOp)
		}
		first := rs[0]
		title := strings.TrimPrefix(first.Pkg, "github.com/picoseg/picoseg/") + " " + first.Name
		f := stats.New(k, "µbench "+title, "ns/op", stats.Info, 0, ns)
		rep.Add(f)
		if strings.Contains(first.Name, "Rejudge") && first.Allocs >= 0 {
			var allocs []float64
			for _, r := range rs {
				allocs = append(allocs, r.Allocs)
			}
			a := stats.New(strings.TrimSuffix(k, "_ns_per_op")+"_allocs_per_op", "µbench "+title+", allocations per op", "allocs/op", stats.Info, 0, allocs)
			a.Note = "issue 10: re-judging the conntrack table must allocate nothing per entry"
			rep.Add(a)
		}
		var other []string
		names := make([]string, 0, len(first.Metrics))
		for n := range first.Metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			other = append(other, fmt.Sprintf("%g %s", first.Metrics[n], n))
		}
		allocs := "—"
		if first.Allocs >= 0 {
			allocs = strconv.FormatFloat(first.Allocs, 'f', -1, 64)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %s | %s |\n", title, f.Median, allocs, strings.Join(other, ", "))
	}
	rep.Extra = append(rep.Extra, stats.Section{Title: "Micro-benchmarks (go test -bench -count 3)", Body: b.String()})
}

// micro runs the micro-benchmarks in repo and adds them to rep.
func micro(ctx context.Context, repo string, rep *stats.Report) error {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "3", "-benchtime", "100ms"}, microPackages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	results := parseBench(string(out))
	if len(results) == 0 {
		return fmt.Errorf("no benchmark results in:\n%s", out)
	}
	addMicro(rep, results)
	return nil
}

func numCPU() int { return runtime.NumCPU() }
