package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/flow"
)

// randomPicoRule is an allow rule for the camera's cloud with random hours
// (some wrapping past midnight), days and packet sizes.
func randomPicoRule(r *rand.Rand) string {
	var hours []string
	for n := r.IntN(3); n > 0; n-- {
		a, b := r.IntN(24*4)*15, r.IntN(24*4)*15
		if a == b {
			continue
		}
		hours = append(hours, fmt.Sprintf("%q", fmt.Sprintf("%02d:%02d-%02d:%02d", a/60, a%60, b/60, b%60)))
	}
	var days []string
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		if r.IntN(3) != 0 {
			days = append(days, fmt.Sprintf("%q", d))
		}
	}
	rule := "\n[[allow]]\nname = \"cam-cloud-random\"\nfrom = \"device:cam\"\nto = \"net:203.0.113.0/24\"\nservices = [\"tcp/443\"]\n"
	if len(hours) > 0 {
		rule += "hours = [" + strings.Join(hours, ", ") + "]\n"
	}
	if len(days) > 0 {
		rule += "days = [" + strings.Join(days, ", ") + "]\n"
	}
	if r.IntN(2) == 0 {
		lo := 20 + r.IntN(40)
		rule += fmt.Sprintf("packet_size = \"%d-%d\"\n", lo, 1500+r.IntN(200))
	}
	return rule
}

// The re-check on the cached path and the pico stage on a fresh flow agree:
// a running flow's packet passes exactly when the same packet, at the same
// time, would open the flow anew, and every earlier one passed too (a cut
// flow stays cut). Random rules, random times over a week, random sizes.
func TestRecheckAgreesWithFreshJudgement(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// homePolicy without its own rule for the camera's cloud.
	base := homePolicy[:strings.Index(homePolicy, "[[allow]]\nname = \"cam-cloud\"")]
	// Flows live as long as the test's week: a gap between two packets
	// must not turn the flow into a new one.
	week := 8 * 24 * time.Hour
	ttl := flow.TTLs{TCPHandshake: week, TCPEstablished: week, TCPClosing: week, UDP: week, ICMP: week, Other: week}
	checked, cut := 0, 0
	for round := 0; round < 150; round++ {
		src := base + randomPicoRule(r)
		pol := compile(t, src)
		w := New(pol, Options{TTLs: &ttl}).NewWorker()
		fresh := New(pol, Options{FlowCapacity: 64}).NewWorker()
		at := monday10.Add(time.Duration(r.IntN(7*24*60)) * time.Minute)
		alive := true
		var trail []string
		for i := 0; i < 40; i++ {
			p := pkt(t, "tcp 10.77.0.11:40000 -> 203.0.113.9:443 flags=A")
			if i == 0 {
				p.TCPFlags = 0x02
			}
			p.Length = uint16(60 + r.IntN(1300))
			if r.IntN(20) == 0 {
				p.Length = uint16(20 + r.IntN(1700)) // now and then one out of bounds
			}
			p.SrcPort = uint16(40000 + round)
			q := *p
			q.TCPFlags, q.SrcPort = 0x02, uint16(1000+i) // a flow of its own
			want := fresh.Judge(&q, at.UnixNano(), NoMeta).Verdict != Drop && alive
			got := w.Judge(p, at.UnixNano(), NoMeta)
			trail = append(trail, fmt.Sprintf("%s len %d: %s %s", at.Format("Mon 15:04"), p.Length, got.Verdict, got.Reason))
			if (got.Verdict != Drop) != want {
				t.Fatalf("round %d packet %d: running flow %s, fresh judgement says pass=%v\n%s\n%s", round, i, got.Verdict, want, src[len(base):], strings.Join(trail, "\n"))
			}
			if !want {
				alive = false
			}
			checked++
			at = at.Add(time.Duration(r.IntN(60)) * time.Minute)
		}
		if !alive {
			cut++
		}
	}
	t.Logf("%d packets agreed; %d of 150 flows were cut", checked, cut)
}
