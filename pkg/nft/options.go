package nft

import (
	"errors"
	"fmt"
)

// TableName is the name of picoseg's table in the inet family.
const TableName = "picoseg"

// ErrUnsupported is returned on systems without nftables.
var ErrUnsupported = errors.New("nft: nftables is only available on Linux")

// QueueMethod says how the ruleset hands packets to userspace.
type QueueMethod uint8

// The queue methods Probe can find.
const (
	// QueueNative is the nftables `queue` expression (module nft_queue).
	QueueNative QueueMethod = iota + 1
	// QueueXtables is the xtables NFQUEUE target through nft_compat.
	QueueXtables
)

// String returns "native" or "xtables".
func (q QueueMethod) String() string {
	switch q {
	case QueueNative:
		return "native"
	case QueueXtables:
		return "xtables"
	}
	return fmt.Sprintf("QueueMethod(%d)", uint8(q))
}

// Options configures the ruleset. Its base chains hook forward only:
// picoseg judges traffic it routes, not traffic to or from the gateway.
type Options struct {
	// QueueBase is the first NFQUEUE number.
	QueueBase uint16
	// Queues is how many queues, starting at QueueBase, share the load. The
	// kernel picks the queue from a hash of the addresses that is the same
	// for both directions, so one flow always lands in one queue.
	Queues int
	// Marks is the mark field picoseg owns. A zero Mask means DefaultMarkMask.
	Marks Marks
	// FailClosed ("on_daemon_down = closed") drops queued packets while no
	// daemon listens on the queue; otherwise the queue is bypassed and they
	// are accepted. Flows already accepted keep their fast path either way.
	FailClosed bool
	// NewFlowRate is the per-source budget of new flows (packets in
	// conntrack state new) per second; 0 disables the guard.
	NewFlowRate uint32
	// NewFlowBurst is the guard's burst in packets; 0 means NewFlowRate.
	NewFlowBurst uint32
	// ClassBytes are the kernel checks of each pico class, indexed by
	// class: a fast-pathed flow of class c that has moved more than
	// ClassBytes[c] bytes (both directions, from conntrack's counters) has
	// its next packet queued again with the Tripped mark, for userspace to
	// cut. Zero means no check. Needs conntrack accounting.
	ClassBytes []uint64
}

// Queue numbers fit a uint16, and xt_NFQ_info_v3 counts them in a uint16.
const maxQueues = 1 << 16

func (o Options) normalized() (Options, error) {
	if o.Marks.Mask == 0 {
		o.Marks = DefaultMarks()
	}
	if err := o.Marks.Validate(); err != nil {
		return o, err
	}
	if o.Queues <= 0 {
		return o, fmt.Errorf("nft: queues = %d, need at least 1", o.Queues)
	}
	if int(o.QueueBase)+o.Queues > maxQueues {
		return o, fmt.Errorf("nft: queues %d..%d exceed the largest queue number %d",
			o.QueueBase, int(o.QueueBase)+o.Queues-1, maxQueues-1)
	}
	if n := len(o.ClassBytes); n > o.Marks.MaxClasses() {
		return o, fmt.Errorf("nft: %d pico classes, but mark_mask %#x holds %d", n, o.Marks.Mask, o.Marks.MaxClasses())
	}
	if o.NewFlowRate > 0 && o.NewFlowBurst == 0 {
		o.NewFlowBurst = o.NewFlowRate
	}
	return o, nil
}

// Counter is one named counter of the ruleset.
type Counter struct {
	Packets, Bytes uint64
}

// Counters are the ruleset's named counters.
type Counters struct {
	// FastPath counts packets of accepted flows that stayed in the kernel.
	FastPath Counter
	// FlowDropped counts packets of flows whose conntrack mark says DROPPED.
	FlowDropped Counter
	// GuardDropped counts new-flow packets dropped by the per-source guard.
	GuardDropped Counter
	// Queued counts packets handed to NFQUEUE.
	Queued Counter
	// VerdictDropped counts packets that came back from userspace with the
	// DROPPED mark and were dropped after it was recorded in conntrack.
	VerdictDropped Counter
	// Tripped counts packets of fast-pathed flows queued again because
	// they broke a class check.
	Tripped Counter
}

// Names of the counter objects in the table.
const (
	counterFastPath       = "fastpath"
	counterFlowDropped    = "flow_dropped"
	counterGuardDropped   = "guard_dropped"
	counterQueued         = "queued"
	counterVerdictDropped = "verdict_dropped"
	counterTripped        = "tripped"
)

func (c *Counters) byName(name string) *Counter {
	switch name {
	case counterFastPath:
		return &c.FastPath
	case counterFlowDropped:
		return &c.FlowDropped
	case counterGuardDropped:
		return &c.GuardDropped
	case counterQueued:
		return &c.Queued
	case counterVerdictDropped:
		return &c.VerdictDropped
	case counterTripped:
		return &c.Tripped
	}
	return nil
}

// Names of the chains and sets in the table.
const (
	chainForward  = "forward"
	chainAccepted = "accepted"
	chainSetMark  = "setmark"
	chainVerdict  = "verdict"
	setGuard4     = "guard4"
	setGuard6     = "guard6"
)
