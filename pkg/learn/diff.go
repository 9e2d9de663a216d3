package learn

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/picoseg/picoseg/internal/lru"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/replay"
)

// MaxDiffFlows bounds the flows a Diff compares; the rest are counted.
const MaxDiffFlows = 1 << 20

// Outcome is what one policy made of a flow: accepted, or the decision
// that dropped it (its first drop: a flow is dropped when any of its
// packets is).
type Outcome struct {
	Accepted bool   `json:"accepted"`
	Layer    string `json:"layer"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	Device   string `json:"device,omitempty"`
}

// String says the outcome in one line: "drop at micro, rule (default): ...".
func (o Outcome) String() string {
	verdict := "drop"
	if o.Accepted {
		verdict = "accept"
	}
	rule := o.Rule
	if rule == "" {
		rule = "(default)"
	}
	return fmt.Sprintf("%s at %s, rule %s: %s", verdict, o.Layer, rule, o.Reason)
}

// FlowChange is one flow the two policies judge differently.
type FlowChange struct {
	First     time.Time `json:"first"`
	Proto     string    `json:"proto"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	DPort     uint16    `json:"dport,omitempty"`
	Old       Outcome   `json:"old"`
	New       Outcome   `json:"new"`
	seq       uint64
	canonical flowKey
}

// DiffResult is what Diff found. Both lists are in the order the flows
// began in the captures, so two runs over the same captures print the
// same.
type DiffResult struct {
	Flows        int          `json:"flows"`
	NewlyAllowed []FlowChange `json:"newly_allowed"`
	NewlyDenied  []FlowChange `json:"newly_denied"`
	// NotCompared counts flows past MaxDiffFlows.
	NotCompared uint64 `json:"not_compared,omitempty"`
}

// Changed reports whether any flow is judged differently.
func (r *DiffResult) Changed() bool { return len(r.NewlyAllowed)+len(r.NewlyDenied) > 0 }

// flowID names one flow of a pass over the captures: its key and the
// packet that began it, the same in every pass.
type flowID struct {
	key flowKey
	seq uint64
}

type diffFlow struct {
	ends  flowEnds
	first int64
	seq   uint64
	out   Outcome
}

// diffPass replays the captures against one policy and records each
// flow's outcome.
type diffPass struct {
	pol   *policy.Policy
	id    *inventory.Identifier
	live  *lru.Map[flowKey, flowID]
	flows map[flowID]*diffFlow
	seq   uint64
	over  uint64
}

func (d *diffPass) local(a netip.Addr) bool {
	_, ok := d.id.Identify(a.Unmap())
	return ok
}

func (d *diffPass) packet(p *packet.Packet, dec engine.Decision, now int64) {
	d.seq++
	k, fromA, ok := keyOf(p)
	if !ok || dec.Related {
		return
	}
	var f *diffFlow
	if id := d.live.Get(k); id != nil {
		f = d.flows[*id]
	}
	if f == nil {
		if len(d.flows) >= MaxDiffFlows {
			d.over++
			return
		}
		id := flowID{key: k, seq: d.seq}
		if prev := d.live.Get(k); prev != nil {
			*prev = id
		} else {
			d.live.Add(k, id)
		}
		f = &diffFlow{ends: endsOf(k, fromA == openedBySender(p, d.local)), first: now, seq: d.seq, out: d.outcome(dec)}
		d.flows[id] = f
	}
	if dropped := dec.Verdict == engine.Drop || dec.WouldDrop; dropped && f.out.Accepted {
		f.out = d.outcome(dec)
	}
}

func (d *diffPass) outcome(dec engine.Decision) Outcome {
	dropped := dec.Verdict == engine.Drop || dec.WouldDrop
	return Outcome{Accepted: !dropped, Layer: dec.Layer.String(), Rule: dec.RuleName(d.pol), Reason: dec.Reason.String(), Device: d.pol.DeviceName(dec.SrcDevice)}
}

// Diff replays the captures against old and new, and lists the flows
// that one accepts and the other drops. Monitor mode makes no difference:
// a flow monitor mode would have dropped counts as dropped.
func Diff(old, new *policy.Policy, captures []string) (*DiffResult, error) {
	var passes [2]*diffPass
	for i, pol := range []*policy.Policy{old, new} {
		d, err := runPass(pol, captures)
		if err != nil {
			return nil, err
		}
		passes[i] = d
	}
	res := &DiffResult{Flows: len(passes[0].flows), NotCompared: passes[0].over, NewlyAllowed: []FlowChange{}, NewlyDenied: []FlowChange{}}
	for id, o := range passes[0].flows {
		n := passes[1].flows[id]
		if n == nil || n.out.Accepted == o.out.Accepted {
			continue
		}
		c := FlowChange{First: time.Unix(0, o.first).UTC(), Proto: packet.ProtoName(o.ends.proto), Src: o.ends.opener.String(), Dst: o.ends.responder.String(),
			Old: o.out, New: n.out, seq: o.seq, canonical: id.key}
		if o.ends.proto == packet.ProtoTCP || o.ends.proto == packet.ProtoUDP {
			c.DPort = o.ends.rport
		}
		if n.out.Accepted {
			res.NewlyAllowed = append(res.NewlyAllowed, c)
		} else {
			res.NewlyDenied = append(res.NewlyDenied, c)
		}
	}
	order := func(a, b FlowChange) int { return cmp.Compare(a.seq, b.seq) }
	slices.SortFunc(res.NewlyAllowed, order)
	slices.SortFunc(res.NewlyDenied, order)
	return res, nil
}

// runPass replays the captures against pol and records every flow.
func runPass(pol *policy.Policy, captures []string) (*diffPass, error) {
	d := &diffPass{pol: pol, id: inventory.NewIdentifier(pol), live: lru.NewMap[flowKey, flowID](DefaultMaxFlows), flows: map[flowID]*diffFlow{}}
	r := replay.New(pol)
	r.ObservePackets(d.packet)
	for _, c := range captures {
		if err := r.File(c); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
	}
	return d, nil
}

// WriteText writes the result for people: one line per flow.
func (r *DiffResult) WriteText(w io.Writer) error {
	var err error
	pr := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	pr("%d flows compared: %d newly allowed, %d newly denied\n", r.Flows, len(r.NewlyAllowed), len(r.NewlyDenied))
	if r.NotCompared > 0 {
		pr("%d flows past %d not compared\n", r.NotCompared, MaxDiffFlows)
	}
	for _, l := range []struct {
		title string
		list  []FlowChange
	}{{"newly allowed", r.NewlyAllowed}, {"newly denied", r.NewlyDenied}} {
		for _, c := range l.list {
			pr("%s  %s  %s\n    old: %s\n    new: %s\n", l.title, c.First.Format("2006-01-02 15:04:05.000000"), c.flowText(), c.Old, c.New)
		}
	}
	return err
}

func (c *FlowChange) flowText() string {
	dst := c.Dst
	if a, err := netip.ParseAddr(c.Dst); err == nil && (c.Proto == "tcp" || c.Proto == "udp") {
		dst = netip.AddrPortFrom(a, c.DPort).String()
	}
	dev := ""
	if c.New.Device != "" {
		dev = " (device " + c.New.Device + ")"
	} else if c.Old.Device != "" {
		dev = " (device " + c.Old.Device + ")"
	}
	return fmt.Sprintf("%s %s%s -> %s", c.Proto, c.Src, dev, dst)
}

// Verify compiles a proposal's text (name places it, so that the base's
// includes resolve as they will when it is loaded from there) and replays
// the captures against the base policy and against it: a proposal that
// only adds what was learned newly denies nothing. The proposal's
// warnings (what `check` would say of it) come back too.
func Verify(base *policy.Policy, name string, text []byte, opts policy.Options, captures []string) (*DiffResult, []config.Warning, error) {
	cfg, warnings, err := config.Parse(name, text)
	if err != nil {
		return nil, warnings, fmt.Errorf("the proposal does not load: %w", err)
	}
	opts.Source = text
	pol, err := policy.Compile(cfg, opts)
	if err != nil {
		return nil, warnings, fmt.Errorf("the proposal does not compile: %w", err)
	}
	d, err := Diff(base, pol, captures)
	return d, warnings, err
}
