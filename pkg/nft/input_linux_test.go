//go:build linux

package nft

import (
	"reflect"
	"testing"
)

// The rules that pass before judging are pinned, as nft prints them, in
// TestKernelInstall's wantRuleset.

// The input hook judges traffic to the gateway as the forward hook judges
// traffic through it: after loopback and the replies to the gateway's own
// connections, the forward chain's rules, and the same verdict chain.
func TestInstallInputChains(t *testing.T) {
	var rec recorder
	if _, err := Install(rec.conn(t), testOptions, QueueNative); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	input := rulesOf(msgs, chainInput)
	forward := rulesOf(msgs, chainForward)
	if len(input) != len(forward)+2 {
		t.Fatalf("input chain has %d rules, want the forward chain's %d and 2 before them", len(input), len(forward))
	}
	for i := range forward {
		if !reflect.DeepEqual(input[i+2], forward[i]) {
			t.Errorf("input rule %d differs from forward rule %d", i+2, i)
		}
	}
	verdict, inputVerdict := rulesOf(msgs, chainVerdict), rulesOf(msgs, chainInputVerdict)
	if len(verdict) != len(inputVerdict) {
		t.Fatalf("input verdict chain has %d rules, the forward one %d", len(inputVerdict), len(verdict))
	}
	for i := range verdict {
		if !reflect.DeepEqual(verdict[i], inputVerdict[i]) {
			t.Errorf("input verdict rule %d differs from the forward verdict chain's", i)
		}
	}
}
