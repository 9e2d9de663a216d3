package appid

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// refMatch is MQTT's topic matching written the obvious way (MQTT 3.1.1
// §4.7): does filter match the topic name topic?
func refMatch(filter, topic string) bool {
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (fl[0] == "+" || fl[0] == "#") {
		return false
	}
	for i, f := range fl {
		switch {
		case f == "#":
			return true
		case i >= len(tl):
			return false
		case f != "+" && f != tl[i]:
			return false
		}
	}
	return len(fl) == len(tl)
}

// topicUniverse is every topic of up to five levels over a, b, z and the
// empty level, and the same of up to four under a "$s" first level: z is a
// level no filter names, so a wildcard one filter has and another lacks
// shows up in it.
func topicUniverse() []string {
	levels := []string{"a", "b", "z", ""}
	var out, shallow []string
	prev := []string{""}
	for depth := 1; depth <= 5; depth++ {
		var next []string
		for _, p := range prev {
			for _, l := range levels {
				t := l
				if depth > 1 {
					t = p + "/" + l
				}
				next = append(next, t)
			}
		}
		out = append(out, next...)
		if depth <= 4 {
			shallow = append(shallow, next...)
		}
		prev = next
	}
	for _, t := range shallow {
		out = append(out, "$s/"+t)
	}
	out = append(out, "$s")
	for i, t := range out {
		if t == "" { // no topic
			return append(out[:i], out[i+1:]...)
		}
	}
	return out
}

func randomFilter(r *rand.Rand) string {
	levels := []string{"a", "b", "", "+"}
	n := 1 + r.IntN(4)
	parts := make([]string, 0, n+1)
	if r.IntN(6) == 0 {
		parts = append(parts, "$s")
	}
	for range n {
		parts = append(parts, levels[r.IntN(len(levels))])
	}
	if r.IntN(3) == 0 {
		parts = append(parts, "#")
	}
	if f := strings.Join(parts, "/"); f != "" {
		return f
	}
	return "a" // "" is no filter
}

// TestMQTTCoversAgainstReference checks covers against the obvious
// definition on random filters: a covers f exactly when every topic f
// matches, a matches too (over a universe rich enough to hold a witness),
// and a covers a topic name exactly when it matches it.
func TestMQTTCoversAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	universe := topicUniverse()
	for range 1500 {
		as, fs := randomFilter(r), randomFilter(r)
		a, ok := newMQTTFilter(as)
		if !ok || !ValidMQTTFilter(fs) {
			t.Fatalf("generated an invalid filter: %q %q", as, fs)
		}
		want := true
		for _, topic := range universe {
			if refMatch(fs, topic) && !refMatch(as, topic) {
				want = false
				break
			}
		}
		if got := a.covers([]byte(fs)); got != want {
			t.Errorf("%q covers %q = %v, want %v", as, fs, got, want)
		}
		topic := universe[r.IntN(len(universe))]
		if got, want := a.covers([]byte(topic)), refMatch(as, topic); got != want {
			t.Errorf("%q covers the topic %q = %v, want %v", as, topic, got, want)
		}
	}
}
