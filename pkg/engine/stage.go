package engine

import (
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Stage is one step of the pipeline.
//
// Contract: Evaluate looks only at the Context it is handed (the packet,
// the policy, what earlier stages recorded in the Context's fields) and
// returns a Result. It returns Continue when it has no opinion. It never
// allocates, never blocks and never formats text: Reason is a constant. A
// stage may record facts for later stages in the Context (identify fills
// Src and Dst, micro fills Rule) but never reads another stage's private
// state. When Context.DryRun is set it must not change any counter.
type Stage interface {
	// Name is the stage's stable name, used in explain output.
	Name() string
	// Layer is the layer credited with the stage's decisions.
	Layer() Layer
	// Evaluate judges the flow's current packet.
	Evaluate(c *Context) Result
}

// Result is a stage's answer.
type Result struct {
	Verdict Verdict
	// Rule is the deciding rule within the stage's layer: an index into
	// Policy.Segments for the segment layer, into Policy.Rules for micro
	// and pico; policy.None for a default.
	Rule   int32
	Reason Reason
	// Event, when set, is the event type a Drop should raise (EventDeny
	// when zero).
	Event EventType
}

// Context is what the stages see of one packet. It is reused for every
// packet a Worker judges.
type Context struct {
	Packet *packet.Packet
	Now    int64 // unix nanoseconds
	Policy *policy.Policy
	// InZone and OutZone are the zones of the interfaces the packet came in
	// and goes out on, when the caller knows them (the kernel path);
	// policy.None otherwise, and the zones follow from the addresses.
	InZone, OutZone int32
	// InPort is Meta.InPort: the bridge port the packet came in on, 0
	// when unknown.
	InPort uint32
	// Merged is Meta.Merged: the packet is several merged segments.
	Merged bool
	// Reversed is set when a mid-stream TCP packet is judged as the reply
	// of a flow its destination opened: Src and Dst are then swapped, and
	// the hardware address belongs to Dst.
	Reversed bool
	// Src and Dst are filled in by the identify stage.
	Src, Dst policy.Side
	// DPort is the destination port of the flow's initiator.
	DPort uint16
	// Rule is the allow rule the micro stage matched, policy.None before.
	Rule int32
	// Flow is the state of the flow being judged; pico reads its counters
	// and records the end of its time window.
	Flow *flow.State
	// DryRun is set by explain: decide, but count nothing.
	DryRun bool
	// Existing is set when the flow is not new: it is judged again (after
	// a reload, or from its conntrack entry). It does not count against a
	// new-flow rate.
	Existing bool

	gen *generation
	// senderAddrDevice is the device the packet's source address names
	// (before its MAC is looked at), and dstBroadcast whether Dst.Addr
	// reaches a whole link: the identify stage's findings, for the
	// stages after it.
	senderAddrDevice int32
	dstBroadcast     bool
	memo             *memo
	scratch          policy.Scratch
	// owner is whose budget the pico stage charged the flow to.
	owner budgetOwner
	spa   *spaState
	// app describes the application of an app_* event.
	app EventApp
}

// judging says how a packet is judged besides the packet itself. The
// stages read it as Context.Reversed, Context.Existing and Context.DryRun.
type judging uint8

const (
	// opening judges a flow's opening packet as it was sent, a new flow
	// for the new-flow rate.
	opening judging = 0
	// asReply judges a packet as the reply of a flow its destination
	// opened (Context.Reversed).
	asReply judging = 1 << (iota - 1)
	// existingFlow judges a flow that is not new: after a reload, or from
	// its conntrack entry (Context.Existing).
	existingFlow
	// dryRun decides and changes no counter (Context.DryRun).
	dryRun
)

// set applies how to the Context's fields.
func (c *Context) set(how judging) {
	c.Reversed, c.Existing, c.DryRun = how&asReply != 0, how&existingFlow != 0, how&dryRun != 0
}

// judging is how the Context's packet is being judged.
func (c *Context) judging() judging {
	var how judging
	if c.Reversed {
		how |= asReply
	}
	if c.Existing {
		how |= existingFlow
	}
	if c.DryRun {
		how |= dryRun
	}
	return how
}

// The stages of the pipeline fill the Stage seam.
var (
	_ Stage = identifyStage{}
	_ Stage = gatewayStage{}
	_ Stage = segmentStage{}
	_ Stage = microStage{}
	_ Stage = picoStage{}
)
