package policy

import "testing"

// Rules with the same kernel checks share a class; a different window,
// size or byte bound is another class; a rule with a new-flow rate has a
// class of its own (the kernel counts its openings per rule, as the engine
// does); a rule without checks stays in class 0, and so does the fan-out
// bound alone (the engine's).
func TestClasses(t *testing.T) {
	rule := func(name, port, extra string) string {
		return "\n[[allow]]\nname = \"" + name + "\"\nfrom = \"zone:iot\"\nto = \"zone:wan\"\nservices = [\"tcp/" + port + "\"]\n" + extra
	}
	src := gatewayTestPolicy +
		rule("a", "1", "hours = [\"06:00-23:00\"]\npacket_size = \"40-1500\"\n") +
		rule("b", "2", "hours = [\"06:00-23:00\"]\npacket_size = \"40-1500\"\n") +
		rule("c", "3", "hours = [\"06:00-22:00\"]\npacket_size = \"40-1500\"\n") +
		rule("d", "4", "max_flow_bytes = \"5MB\"\n") +
		rule("e", "5", "max_new_flows = \"3/m\"\n") +
		rule("f", "6", "max_new_flows = \"3/m\"\n") +
		rule("g", "7", "max_peers = 5\n") +
		rule("h", "8", "")
	p := compileTest(t, src)
	class := map[string]uint16{}
	for _, r := range p.Rules {
		class[r.Name] = r.Class
	}
	if class["a"] == 0 || class["a"] != class["b"] {
		t.Errorf("a and b have the same checks: classes %d and %d", class["a"], class["b"])
	}
	for _, pair := range [][2]string{{"a", "c"}, {"a", "d"}, {"d", "e"}, {"e", "f"}} {
		if class[pair[0]] == class[pair[1]] {
			t.Errorf("%s and %s share class %d", pair[0], pair[1], class[pair[0]])
		}
	}
	for _, n := range []string{"g", "h", "r"} {
		if class[n] != 0 {
			t.Errorf("%s: class %d, want 0 (no kernel checks)", n, class[n])
		}
	}
	if len(p.Classes) != 6 {
		t.Errorf("%d classes, want 6 (none, a+b, c, d, e, f)", len(p.Classes))
	}
	if e := p.Classes[class["e"]]; e.NewFlows != 3 || e.RateRule < 0 || p.Rules[e.RateRule].Name != "e" {
		t.Errorf("class of e: %+v", e)
	}
}
