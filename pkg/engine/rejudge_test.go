package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
)

// A flow judged again after a reload carries its whole new judgement: its
// budget slot is the new generation's. With the old slot, the flow's next
// packet indexed the new, smaller budget table and panicked.
func TestRejudgedFlowTakesTheNewBudgetSlot(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plugs-telemetry"
from = "group:plugs"
to = "zone:wan"
services = ["udp/9000"]
max_device_bytes = { amount = "1MB", per = "1h" }
`
	e := New(compile(t, src), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	// Two devices under the budget: plug2's flow holds slot 1.
	w.Judge(pkt(t, "udp 10.77.0.21:5000 -> 198.51.100.7:9000"), now, NoMeta)
	w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000"), now+1, NoMeta)
	// A reload with another bound starts the budgets afresh: the new
	// table has no slot until a flow needs one.
	e.Swap(compile(t, replaceOnce(t, src, `amount = "1MB"`, `amount = "2MB"`)), now+2)
	// plug2's flow is judged again and takes slot 0 of the new table
	// (its handle also carries the slot's reuse count).
	if d := w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000"), now+3, NoMeta); d.Verdict != Accept {
		t.Fatalf("re-judged flow: %+v", d)
	}
	// Its next packet is counted against that slot.
	d := w.Judge(pkt(t, "udp 198.51.100.7:9000 -> 10.77.0.22:5000"), now+4, NoMeta)
	if d.Verdict != Accept || !d.Cached {
		t.Fatalf("next packet of the re-judged flow: %+v", d)
	}
	st, ok := lookup(e, pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000"), now+5)
	if !ok || st.Budget < 0 || st.Budget&handleIndexMask != 0 || st.Gen != e.Generation() {
		t.Fatalf("flow state after the reload: %+v", st)
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q is not in the text exactly once", old)
	}
	return strings.Replace(s, old, new, 1)
}

// lookup returns the state of p's flow without counting p.
func lookup(e *Engine, p *packet.Packet, now int64) (flow.State, bool) {
	k, _ := flow.KeyOf(p)
	var st flow.State
	ok := e.flows.Peek(k, now, &st)
	return st, ok
}

// Nothing of an older judgement survives a new one: a flow judged under a
// rule with hours, judged again under the same rule without them, is not
// cut when the old window would have closed.
func TestRejudgedFlowForgetsItsOldWindow(t *testing.T) {
	src := homePolicy + `
[[allow]]
name = "plug-telemetry"
from = "device:plug2"
to = "zone:wan"
services = ["udp/9000"]
packet_size = "20-1500"
hours = ["09:00-10:02"]
`
	e := New(compile(t, src), Options{})
	w := e.NewWorker()
	now := monday10.UnixNano()
	if d := w.Judge(pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000"), now, NoMeta); d.Verdict == Drop {
		t.Fatalf("in the window: %+v", d)
	}
	e.Swap(compile(t, replaceOnce(t, src, "hours = [\"09:00-10:02\"]\n", "")), now+1)
	for i, at := range []time.Time{monday10.Add(time.Minute), monday10.Add(3 * time.Minute)} {
		p := pkt(t, "udp 10.77.0.22:5000 -> 198.51.100.7:9000")
		if d := w.Judge(p, at.UnixNano(), NoMeta); d.Verdict == Drop {
			t.Fatalf("packet %d at %s, the rule has no hours any more: %+v", i, at.Format("15:04"), d)
		}
		if st, _ := lookup(e, p, at.UnixNano()); st.ValidUntil != 0 {
			t.Fatalf("packet %d: the flow still ends at %s, its old window's end", i, time.Unix(0, st.ValidUntil).UTC().Format("15:04"))
		}
	}
}
