//go:build linux

package harness

import "testing"

// A perf report with --children lists each symbol once at the top level,
// then call-graph lines ("|", "---") that may name it again: only the top
// level counts.
func TestParsePerfChildren(t *testing.T) {
	out := `# Samples: 6K of event 'cpu-clock'
#
# Children      Self  Symbol
# ........  ........  ......................
#
     8.00%     1.74%  [k] handle_softirqs
            |
            ---handle_softirqs
               |--0.69%--nft_do_chain_inet
     0.69%     0.01%  [k] nft_do_chain_inet
     0.12%     0.05%  [k] nft_fib4_eval
     0.11%     0.07%  [.] iperf_tcp_send
`
	got := parsePerfChildren(out)
	for sym, want := range map[string]float64{"handle_softirqs": 8, "nft_do_chain_inet": 0.69, "nft_fib4_eval": 0.12, "iperf_tcp_send": 0.11} {
		if got[sym] != want {
			t.Errorf("%s = %v, want %v (all: %v)", sym, got[sym], want, got)
		}
	}
	if _, ok := got["--0.69%--nft_do_chain_inet"]; ok || len(got) != 4 {
		t.Errorf("call-graph lines parsed as symbols: %v", got)
	}
}
