//go:build linux

package nft

import (
	"reflect"
	"testing"
)

// The rules that pass before judging are pinned, as nft prints them, in
// TestKernelInstall's wantRuleset.

// The input hook judges traffic to the gateway as the forward hook judges
// traffic through it: after loopback, the forward chain's cleaning (marks,
// invalid packets, forged sources), then the replies to the gateway's own
// connections, then the rest of the forward chain's rules, and the same
// verdict chain. A reply with a forged source is dropped before it can be
// accepted as a reply.
func TestInstallInputChains(t *testing.T) {
	opts := testOptions
	opts.ReversePathInterfaces = []string{"br-iot"}
	var rec recorder
	if _, err := Install(rec.conn(t), opts, QueueNative); err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, rec.msgs)
	input := rulesOf(msgs, chainInput)
	forward := rulesOf(msgs, chainForward)
	cleaning := len(cleaningRules(opts))
	if cleaning != 3 {
		t.Fatalf("%d cleaning rules, want mark, invalid and reverse path", cleaning)
	}
	errs := len(gatewayErrorRules(opts, QueueNative))
	if errs != 4 {
		t.Fatalf("%d rules for errors about the gateway's connections, want a guard and a queue rule for ICMP and ICMPv6", errs)
	}
	if len(input) != len(forward)+2+errs {
		t.Fatalf("input chain has %d rules, want the forward chain's %d and %d more", len(input), len(forward), 2+errs)
	}
	for i := range forward {
		j := i + 1 // after loopback
		if i >= cleaning {
			j += errs + 1 // after the gateway's errors and the replies
		}
		if !reflect.DeepEqual(input[j], forward[i]) {
			t.Errorf("input rule %d differs from forward rule %d", j, i)
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
