package daemon

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/queue"
)

// A bug met while judging one packet costs that packet the fail-mode
// verdict and an alert, never the process: the queue judges the next
// packet as usual.
func TestHandlerSurvivesABug(t *testing.T) {
	for _, tt := range []struct {
		failOpen bool
		accept   bool
	}{{failOpen: true, accept: true}, {failOpen: false, accept: false}} {
		l := loadText(t, policyText)
		eng := engine.New(l.Policy, engine.Options{})
		zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 4: "wan0"}, nil })
		noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		h := newHandler(eng, nft.DefaultMarks(), 4200, 1, zones, func() time.Time { return noon })
		var alerts []alert.Alert
		h.failOpen, h.raise = tt.failOpen, func(a alert.Alert) { alerts = append(alerts, a) }
		bug := true
		h.flowStarted = func(int, *packet.Packet, time.Time) {
			if bug {
				bug = false
				var slots []int
				_ = slots[len(alerts)+3] // index out of range, as a bug would
			}
		}
		accept, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: tcpSYN(t, "10.77.0.11", "198.51.100.7", 443, 60), InIfindex: 3, OutIfindex: 4})
		if accept != tt.accept || mark != 0 {
			t.Fatalf("failOpen=%v: packet that hit a bug: accept=%v mark=%#x, want %v and no mark", tt.failOpen, accept, mark, tt.accept)
		}
		if len(alerts) != 1 || alerts[0].Type != alert.TypeInternalError || !strings.Contains(alerts[0].Message, "index out of range") {
			t.Fatalf("alerts %+v", alerts)
		}
		// The worker goes on judging: an allowed flow is accepted, a
		// denied one dropped.
		if accept, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: tcpSYN(t, "10.77.0.11", "198.51.100.8", 443, 60), InIfindex: 3, OutIfindex: 4}); !accept || mark != nft.DefaultMarks().Accepted(0) {
			t.Fatalf("next allowed SYN: accept=%v mark=%#x", accept, mark)
		}
		if _, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: tcpSYN(t, "10.77.0.11", "198.51.100.7", 22, 60), InIfindex: 3, OutIfindex: 4}); mark != nft.DefaultMarks().Dropped() {
			t.Fatalf("next denied SYN: mark %#x, want DROPPED", mark)
		}
		if h.internalErrors.Load() != 1 {
			t.Fatalf("internal errors %d", h.internalErrors.Load())
		}
	}
}

// An ICMP error shares the conntrack entry of the flow it quotes, so its
// verdict carries no mark: a forged error must neither cut that flow
// (DROPPED) nor change its class.
func TestRelatedVerdictsCarryNoMark(t *testing.T) {
	h := &handler{marks: nft.DefaultMarks()}
	if accept, mark := h.verdict(engine.Decision{Verdict: engine.Accept, Related: true, Class: 3}); !accept || mark != 0 {
		t.Errorf("accepted error: accept=%v mark=%#x, want true 0", accept, mark)
	}
	if accept, mark := h.verdict(engine.Decision{Verdict: engine.Drop, Related: true}); accept || mark != 0 {
		t.Errorf("refused error: accept=%v mark=%#x, want a plain drop", accept, mark)
	}
	// A forged SYN on an established connection's tuple: dropped alone,
	// never the DROPPED mark that would cut the connection.
	if accept, mark := h.verdict(engine.Decision{Verdict: engine.Drop, PacketOnly: true}); accept || mark != 0 {
		t.Errorf("refused SYN on an established tuple: accept=%v mark=%#x, want a plain drop", accept, mark)
	}
}

// A flow picked up from its reply is credited to the side that opened it:
// in `status flows`, and the inventory does not hear of it as the replier's.
func TestPickedUpFlowIsTheOpeners(t *testing.T) {
	demo, err := os.ReadFile("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	l := loadText(t, string(demo))
	eng := engine.New(l.Policy, engine.Options{})
	zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 5: "lan0"}, nil })
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := newHandler(eng, nft.DefaultMarks(), 4200, 1, zones, func() time.Time { return noon })
	var started []string
	h.flowStarted = func(_ int, p *packet.Packet, _ time.Time) { started = append(started, p.Src.String()) }
	// The hub's lone ACK from its web port to the admin: the reply of the
	// admin's allowed connection (admin-to-hub, tcp/80).
	ack := tcpSYN(t, "10.77.0.30", "10.88.0.10", 40000, 60)
	ack[20], ack[21], ack[33] = 0, 80, 0x10
	if accept, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: ack, InIfindex: 3, OutIfindex: 5, HwAddr: []byte{2, 0, 0, 0, 0, 0x30}}); !accept || mark != nft.DefaultMarks().Accepted(0) {
		t.Fatalf("the hub's reply: accept=%v mark=%#x", accept, mark)
	}
	views := flowViews(eng, noon, "", 0)
	if len(views) != 1 || views[0].Src != "10.88.0.10:40000" || views[0].SrcDevice != "admin" || views[0].Dst != "10.77.0.30:80" {
		t.Fatalf("status flows: %+v, want the admin's flow to the hub", views)
	}
	if len(started) != 0 {
		t.Errorf("the inventory heard of the admin's flow as the hub's: %v", started)
	}
	// The hub's SYN on the same ports is its own flow, denied.
	syn := append([]byte(nil), ack...)
	syn[33] = 0x02
	if _, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: syn, InIfindex: 3, OutIfindex: 5, HwAddr: []byte{2, 0, 0, 0, 0, 0x30}}); mark != nft.DefaultMarks().Dropped() {
		t.Fatalf("the hub's SYN: mark %#x, want DROPPED", mark)
	}
	if views := flowViews(eng, noon, "", 0); len(views) != 1 || views[0].Src != "10.77.0.30:80" || views[0].Verdict != "drop" {
		t.Fatalf("status flows after the SYN: %+v, want the hub's denied flow", views)
	}
}

// The bridge port the kernel reports reaches the engine: a device known
// only by its address, seen first on one port, is refused from another.
func TestHandlerPassesTheBridgePort(t *testing.T) {
	demo, err := os.ReadFile("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(demo), "mac = \"02:00:00:00:00:30\"\n", "", 1)
	l := loadText(t, text)
	eng := engine.New(l.Policy, engine.Options{})
	zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 5: "lan0"}, nil })
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := newHandler(eng, nft.DefaultMarks(), 4200, 1, zones, func() time.Time { return noon })
	hubToPlug := func(sport uint16, port uint32, mac byte) uint32 {
		syn := tcpSYN(t, "10.77.0.30", "10.77.0.21", 80, 60)
		syn[20], syn[21] = byte(sport>>8), byte(sport)
		_, mark := h.Judge(&queue.Packet{Queue: 4200, Payload: syn, InIfindex: 3, OutIfindex: 3, PhysInIfindex: port, HwAddr: []byte{2, 0, 0, 0, 0, mac}})
		return mark
	}
	if mark := hubToPlug(40000, 6, 0x30); mark != nft.DefaultMarks().Accepted(0) {
		t.Fatalf("the hub from its port: mark %#x, want accepted", mark)
	}
	if mark := hubToPlug(40001, 5, 0x99); mark != nft.DefaultMarks().Dropped() {
		t.Fatalf("the hub's address from another bridge port: mark %#x, want DROPPED", mark)
	}
}

// A queue's remembered zone follows every change the slow path sees: a
// new interface map (an interface renamed or moved to another zone), a new
// policy, another interface, an index no map knows. Random changes and
// questions, each answer compared with the uncached lookup.
func TestCachedZoneFollowsChanges(t *testing.T) {
	pols := []*policy.Policy{loadText(t, policyText).Policy,
		loadText(t, strings.NewReplacer(`"wan0"`, `"br-iot"`, `"br-iot"`, `"wan0"`).Replace(policyText)).Policy}
	maps := []map[uint32]string{{3: "br-iot", 4: "wan0"}, {3: "wan0", 4: "br-iot"}, {4: "wan0", 5: "br-iot"}, {}}
	cur := maps[0]
	z := newIfaceZones(func() (map[uint32]string, error) { return cur, nil })
	rng := rand.New(rand.NewPCG(1, 2))
	var c zoneAnswer
	pol := pols[0]
	for i := 0; i < 5000; i++ {
		switch rng.IntN(10) {
		case 0:
			m := maps[rng.IntN(len(maps))]
			cur = m
			z.names.Store(&m)
		case 1:
			pol = pols[rng.IntN(len(pols))]
		}
		index := uint32(rng.IntN(7))
		got := z.cachedZone(&c, pol, index)
		if want := z.zone(pol, index); got != want {
			t.Fatalf("step %d: interface %d in zone %d, want %d (names %v)", i, index, got, want, *z.names.Load())
		}
	}
}
