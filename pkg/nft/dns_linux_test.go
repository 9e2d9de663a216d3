//go:build linux

package nft

import (
	"reflect"
	"testing"
)

// With dns: destinations in the policy, the forward and input chains queue
// DNS queries (through the new-flow guard) and answers of accepted flows
// before the fast path, and an output chain queues the gateway's own
// resolver's answers, with a verdict chain after it. Without them the
// ruleset is what it was.
func TestInstallDNSRules(t *testing.T) {
	install := func(dns bool) []message {
		opts := testOptions
		opts.DNS = dns
		var rec recorder
		if _, err := Install(rec.conn(t), opts, QueueNative); err != nil {
			t.Fatal(err)
		}
		return decode(t, rec.msgs)
	}
	off, on := install(false), install(true)
	if n := len(rulesOf(off, chainDNSOutput)); n != 0 {
		t.Errorf("without DNS: %d output rules", n)
	}
	for _, chain := range []string{chainForward, chainInput} {
		before, after := rulesOf(off, chain), rulesOf(on, chain)
		if len(after) != len(before)+3 {
			t.Fatalf("%s: %d rules with DNS, %d without: want the guard jump, the query and the answer rules", chain, len(after), len(before))
		}
		// The DNS rules come right before the fast path: every rule before
		// them, and every rule after them, is unchanged.
		fast := -1
		for i := range before {
			if !reflect.DeepEqual(before[i], after[i]) {
				fast = i
				break
			}
		}
		if fast < 0 {
			t.Fatalf("%s: the DNS rules are last", chain)
		}
		for i := fast; i < len(before); i++ {
			if !reflect.DeepEqual(before[i], after[i+3]) {
				t.Errorf("%s: rule %d changed", chain, i)
			}
		}
	}
	if n := len(rulesOf(on, chainDNSOutput)); n != 1 {
		t.Errorf("output chain has %d rules, want 1", n)
	}
	verdict, outVerdict := rulesOf(on, chainVerdict), rulesOf(on, chainDNSOutputVerdict)
	if !reflect.DeepEqual(verdict, outVerdict) {
		t.Errorf("output verdict chain differs from the forward one")
	}
}
