package engine

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// withRandomPico gives some of cfg's allow rules random pico constraints:
// hours (some wrapping past midnight), days, packet sizes, a flow byte bound
// and a device budget, new-flow rates.
func withRandomPico(r *rand.Rand, cfg *config.Config) {
	for i := range cfg.Allows {
		a := &cfg.Allows[i]
		if r.IntN(3) == 0 {
			continue
		}
		for n := r.IntN(3); n > 0; n-- {
			if s, e := r.IntN(24*4)*15, r.IntN(24*4)*15; s != e {
				a.Hours = append(a.Hours, config.TimeRange{Start: s, End: e})
			}
		}
		if r.IntN(2) == 0 {
			a.Days = config.Weekdays(1 + r.IntN(127))
		}
		if r.IntN(2) == 0 {
			a.PacketSize = &config.SizeRange{Min: 20 + r.IntN(60), Max: 1000 + r.IntN(700)}
		}
		if r.IntN(2) == 0 {
			a.MaxFlowBytes = int64(2000 + r.IntN(12000))
		}
		if r.IntN(4) == 0 {
			a.MaxDeviceBytes = &config.Budget{Bytes: int64(2000 + r.IntN(8000)), Per: time.Duration(1+r.IntN(6)) * time.Hour}
		}
		if r.IntN(4) == 0 {
			a.MaxNewFlows = config.Rate{Count: 1 + r.IntN(3), Per: time.Minute}
		}
	}
}

// flowPacket is packet i of a TCP or UDP flow from src:sport to dst:dport:
// the opener's SYN first, then data either way.
func flowPacket(proto uint8, src, dst netip.Addr, sport, dport uint16, i int, reply bool, length uint16) *packet.Packet {
	p := &packet.Packet{Kind: packet.KindOK, Proto: proto, Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Length: length}
	if reply {
		p.Src, p.Dst, p.SrcPort, p.DstPort = dst, src, dport, sport
	}
	if proto == packet.ProtoTCP {
		p.TCPFlags = packet.TCPAck
		if i == 0 {
			p.TCPFlags = packet.TCPSyn
		}
	}
	return p
}

// The verdict cached for a running flow and a fresh judgement agree, over
// random policies with random pico constraints, random flows and random
// packets at random times across their rules' windows and byte bounds.
// The reference is Judge, which knows no flow: a flow's packet passes
// exactly when the flow has passed so far, Judge lets the same flow through
// at the packet's time with the packet's size, and the flow's bytes (this
// packet's included) are within its rule's max_flow_bytes. A flow's first
// packet is judged exactly as Judge judges its query, by the layer and rule
// the naive reader of the policy names.
func TestCachedAgreesWithJudge(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	week := 8 * 24 * time.Hour
	ttl := flow.TTLs{TCPHandshake: week, TCPEstablished: week, TCPClosing: week, UDP: week, ICMP: week, Other: week}
	var packets, flows, passed int
	cuts := map[Reason]int{}
	for round := 0; round < 120; round++ {
		cfg := randomPolicy(r, 20, 1+r.IntN(30))
		withRandomPico(r, cfg)
		pol, err := policy.Compile(cfg, policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e := New(pol, Options{TTLs: &ttl, FlowCapacity: 1 << 12})
		w := e.NewWorker()
		budgets := naiveBudgets{}
		at := monday10.Add(time.Duration(r.IntN(7*24*60)) * time.Minute)
		for f := 0; f < 30; f++ {
			n, why, ok := recheckFlow(t, r, e, w, naive{cfg}, budgets, &at, uint16(10000+f))
			packets, flows = packets+n, flows+1
			if why != ReasonNone {
				cuts[why]++
			}
			if ok {
				passed++
			}
			at = at.Add(time.Duration(r.IntN(90)) * time.Minute)
		}
	}
	t.Logf("%d packets of %d flows agreed; %d flows opened, cut later by %v", packets, flows, passed, cuts)
	for _, why := range []Reason{ReasonOutsideWindow, ReasonPacketSize, ReasonFlowBytes, ReasonDeviceBytes} {
		if cuts[why] == 0 {
			t.Errorf("no running flow was cut with %q: the test does not reach that check", why)
		}
	}
}

// recheckFlow runs one random flow through w from *clock on (and moves the
// clock to its end), checking each packet
// against e.Judge. It returns how many packets it checked, why the flow was
// cut after it opened (ReasonNone if it was not), and whether it opened.
func recheckFlow(t *testing.T, r *rand.Rand, e *Engine, w *Worker, ref naive, budgets naiveBudgets, clock *time.Time, sport uint16) (checked int, cut Reason, opened bool) {
	t.Helper()
	at := *clock
	defer func() { *clock = at }()
	src, dst := randAddr(r), randAddr(r)
	proto := []uint8{packet.ProtoTCP, packet.ProtoUDP}[r.IntN(2)]
	dport := uint16(r.IntN(50))
	q := Query{From: src, To: dst, Proto: proto, DPort: dport}
	var bytes uint64
	var trail []string
	alive := false
	for i := 0; i < 25; i++ {
		length := uint16(40 + r.IntN(1400))
		if r.IntN(15) == 0 {
			length = uint16(20 + r.IntN(1700)) // now and then one out of bounds
		}
		q.At, q.Size, q.Existing = at, length, i > 0
		fresh := e.Judge(q)
		got := w.Judge(flowPacket(proto, src, dst, sport, dport, i, i > 0 && r.IntN(2) == 0, length), at.UnixNano(), NoMeta)
		bytes += uint64(length)
		trail = append(trail, fmt.Sprintf("%s len %d (flow %d bytes): %s %s %s; fresh %s %s", at.Format("Mon 15:04"), length, bytes, got.Verdict, got.Layer, got.Reason, fresh.Verdict, fresh.Reason))
		var want bool
		pol := e.Policy()
		if i == 0 {
			if got.Verdict != fresh.Verdict || got.Layer != fresh.Layer || got.Rule != fresh.Rule || got.Reason != fresh.Reason || !got.NewFlow {
				t.Fatalf("first packet of %+v: %+v, Judge says %+v", q, got, fresh)
			}
			// The naive reader knows no pico constraint, but the rule and
			// the layer it names are the ones that decide.
			if layer, rule := ref.judge(flowPacket(proto, src, dst, sport, dport, 0, false, length)); layer != got.Layer || rule != got.RuleName(pol) {
				t.Fatalf("first packet of %+v: %s %q, the naive reader says %s %q", q, got.Layer, got.RuleName(pol), layer, rule)
			}
			alive = got.Verdict != Drop
			opened = alive
			budgets.open(pol, fresh, src, at)
			if alive {
				budgets.charge(pol, fresh, src, at, length)
			}
		} else {
			// A packet within its window, size and flow bound is charged
			// to its device's budget, and the flow is cut when that goes
			// over: Judge, before the packet, sees a budget already spent.
			within := withinFlowBytes(pol, fresh, bytes)
			within = within && (fresh.Verdict != Drop || fresh.Reason == ReasonDeviceBytes)
			inBudget := true
			if alive && within {
				inBudget = budgets.charge(pol, fresh, src, at, length)
			}
			want = alive && within && fresh.Verdict != Drop && inBudget
			if !got.Cached || (got.Verdict != Drop) != want || want && got.Rule != fresh.Rule {
				t.Fatalf("flow %+v packet %d: cached %+v, want pass=%v (rule %d)\n%s", q, i, got, want, fresh.Rule, strings.Join(trail, "\n"))
			}
			if alive && !want {
				cut = got.Reason
			}
			alive = want
		}
		checked++
		at = at.Add(time.Duration(r.IntN(120)) * time.Minute)
	}
	return checked, cut, opened
}

// withinFlowBytes reports whether a flow of bytes is within the
// max_flow_bytes of the rule that decided d.
func withinFlowBytes(pol *policy.Policy, d Decision, bytes uint64) bool {
	if d.Layer != LayerPico || d.Rule < 0 {
		return true
	}
	r := &pol.Rules[d.Rule]
	return r.MaxFlow == 0 || bytes <= r.MaxFlow
}

// naiveBudgets is the obvious reading of max_device_bytes: bytes per rule
// and device (or address, for no device) in periods that start when the
// device's first flow under the rule is admitted.
type naiveBudgets map[[2]string]*naiveBudget

type naiveBudget struct {
	start time.Time
	bytes uint64
}

func (nb naiveBudgets) key(pol *policy.Policy, d Decision, src netip.Addr) ([2]string, *policy.Rule) {
	if d.Layer != LayerPico || d.Rule < 0 || pol.Rules[d.Rule].MaxDevice == 0 {
		return [2]string{}, nil
	}
	owner := src.String()
	if d.SrcDevice != policy.None {
		owner = pol.DeviceName(d.SrcDevice)
	}
	return [2]string{pol.Rules[d.Rule].Name, owner}, &pol.Rules[d.Rule]
}

// open starts the device's budget when a flow's first packet reached it
// (was admitted, or refused by the budget or the new-flow rate).
func (nb naiveBudgets) open(pol *policy.Policy, d Decision, src netip.Addr, at time.Time) {
	k, r := nb.key(pol, d, src)
	if r == nil || nb[k] != nil {
		return
	}
	switch d.Reason {
	case ReasonInspecting, ReasonWithinLimits, ReasonDeviceBytes, ReasonNewFlowRate:
		nb[k] = &naiveBudget{start: at}
	}
}

// charge counts length bytes at at, and reports whether the device is
// still within its budget.
func (nb naiveBudgets) charge(pol *policy.Policy, d Decision, src netip.Addr, at time.Time, length uint16) bool {
	k, r := nb.key(pol, d, src)
	if r == nil {
		return true
	}
	b := nb[k]
	for per := time.Duration(r.MaxPer); per > 0 && at.Sub(b.start) >= per; {
		b.start, b.bytes = b.start.Add(per), 0
	}
	b.bytes += uint64(length)
	return b.bytes <= r.MaxDevice
}
