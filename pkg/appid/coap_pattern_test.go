package appid

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// refPathMatch is CoAPConstraint's path matching written the obvious way:
// each pattern segment a regular expression over one path segment, a last
// "**" any number of further segments.
func refPathMatch(pattern string, segs []string) bool {
	var ps []string
	if pattern != "/" {
		ps = strings.Split(pattern[1:], "/")
	}
	rest := len(ps) > 0 && ps[len(ps)-1] == "**"
	if rest {
		ps = ps[:len(ps)-1]
	}
	if len(segs) < len(ps) || (!rest && len(segs) != len(ps)) {
		return false
	}
	for i, p := range ps {
		re := regexp.MustCompile("^(?s)" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
		if !re.MatchString(segs[i]) {
			return false
		}
	}
	return true
}

// TestCoAPPathsAgainstReference checks the checker's path matching
// against refPathMatch on random patterns and request paths.
func TestCoAPPathsAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	segPatterns := []string{"a", "b", "*", "a*", "*b", "a*b", "", "**"}
	segValues := []string{"a", "b", "ab", "aab", "ba", "", "a/b", "x"}
	tested, passed := 0, 0
	for range 3000 {
		var parts []string
		for n := r.IntN(4); len(parts) < n; {
			parts = append(parts, pick(segPatterns))
		}
		pattern := "/" + strings.Join(parts, "/")
		if ValidCoAPPath(pattern) != "" {
			continue
		}
		k := mustCoAP(t, CoAPConstraint{Paths: []string{pattern}})
		var segs []string
		for n := r.IntN(5); len(segs) < n; {
			segs = append(segs, pick(segValues))
		}
		msg := coapMsg(0, CoAPGet, "", coapPath(segs...), "")
		got := k.Check(msg).Outcome == Pass
		tested++
		if got {
			passed++
		}
		if want := refPathMatch(pattern, segs); got != want {
			t.Errorf("pattern %q, segments %q: pass %v, want %v", pattern, segs, got, want)
		}
	}
	// The random cases must exercise both answers.
	if tested < 1000 || passed < 50 || tested-passed < 50 {
		t.Errorf("%d cases, %d passed: the generator does not cover both answers", tested, passed)
	}
	t.Logf("%d cases, %d passed", tested, passed)
}
