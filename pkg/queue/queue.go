package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Packet is one queued packet as the Handler sees it. It and the slices in
// it are only valid during the call to Judge.
type Packet struct {
	// Queue is the queue number the packet came from.
	Queue uint16
	// Payload starts at the IP header; it may be cut to CopyRange bytes.
	Payload []byte
	// InIfindex and OutIfindex are the interfaces the packet came in and
	// goes out on (0 when none).
	InIfindex, OutIfindex uint32
	// PhysInIfindex is the bridge port the packet came in on, when it
	// came through a bridge whose traffic the kernel hands to the IP hooks
	// (br_netfilter); 0 otherwise. InIfindex is then the bridge itself.
	PhysInIfindex uint32
	// HwAddr is the sender's hardware address (the source MAC of the frame
	// it came in), when the kernel knows one.
	HwAddr []byte
	// Mark is the packet mark it was queued with.
	Mark uint32
	// GSO is set when the packet is several segments the kernel merged
	// (GRO): its length is theirs together, not any one packet's.
	GSO bool
	// Time is when the read that brought the packet returned (Options.Now),
	// the same for every packet of one read: a handler that needs the time
	// reads no clock of its own.
	Time time.Time
}

// Handler judges one queued packet.
//
// accept=true accepts the packet; a non-zero mark is then set as its packet
// mark (only the MarkMask bits, when MarkMask is set). accept=false drops the
// packet and mark is ignored. To record a drop in the conntrack entry of an
// already confirmed flow, accept it with the DROPPED mark: the ruleset's
// verdict chain stores the mark and then drops the packet. "Need more
// packets" is accept with mark 0, so the next packet is queued again.
type Handler interface {
	Judge(p *Packet) (accept bool, mark uint32)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(p *Packet) (accept bool, mark uint32)

var _ Handler = HandlerFunc(nil)

// Judge calls f.
func (f HandlerFunc) Judge(p *Packet) (bool, uint32) { return f(p) }

// DefaultCopyRange is how many bytes of each packet the kernel copies to
// userspace unless Options.CopyRange says otherwise: IPv6 (40) with a few
// extension headers, TCP with full options (60), and the payload for
// application identity: a whole MTU-sized segment, and two of them merged
// by GRO, so that a ClientHello of up to 4 KiB in one or two segments is
// read whole. Most queued packets (SYNs) are far smaller; only the bytes
// a packet has are copied.
const DefaultCopyRange = 4096

// DefaultMaxQueueLen is the kernel queue length unless Options.MaxQueueLen
// says otherwise. The kernel's own default, 1024, overflows within a
// fraction of a second of a burst of new flows; 4096 queued packets (mostly
// SYNs of a few dozen bytes) is a few MiB of kernel memory per queue at
// worst, and beyond it on_queue_full decides.
const DefaultMaxQueueLen = 4096

// DefaultReadBuffer is the socket receive buffer unless Options.ReadBuffer
// says otherwise. A burst of new flows must not overflow it (ENOBUFS).
const DefaultReadBuffer = 8 << 20

// Back-off between re-opening a failed queue.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// A queue that stayed up this long starts again at minBackoff.
	backoffReset = 30 * time.Second
)

// Options configures the adapter.
type Options struct {
	// QueueBase is the first queue number.
	QueueBase uint16
	// Queues is how many queues, from QueueBase on, to serve.
	Queues int
	// FailOpen (NFQA_CFG_F_FAIL_OPEN) accepts packets when the queue is
	// full instead of dropping them.
	FailOpen bool
	// MaxQueueLen is the kernel queue length (NFQA_CFG_QUEUE_MAXLEN),
	// always set explicitly; 0 means DefaultMaxQueueLen.
	MaxQueueLen uint32
	// ReadBuffer is the socket receive buffer in bytes; 0 means
	// DefaultReadBuffer. It is forced past rmem_max when running as root.
	ReadBuffer int
	// CopyRange is how many bytes of each packet are copied to userspace;
	// 0 means DefaultCopyRange.
	CopyRange uint32
	// MarkMask, if non-zero, limits the verdict mark to these bits: the
	// packet keeps its other mark bits (mwan3, pbr, SQM). Set it to the
	// ruleset's mark mask.
	MarkMask uint32
	// NetNS, if non-zero, is an fd of the network namespace whose queues
	// are served; 0 means the caller's namespace.
	NetNS int
	// Logger receives re-open and error reports; nil discards them.
	Logger *slog.Logger
	// Now is the clock read once per socket read for Packet.Time; nil
	// means time.Now.
	Now func() time.Time
}

func (o Options) normalized() (Options, error) {
	if o.Queues <= 0 {
		return o, fmt.Errorf("queue: queues = %d, need at least 1", o.Queues)
	}
	if int(o.QueueBase)+o.Queues > 1<<16 {
		return o, fmt.Errorf("queue: queues %d..%d exceed the largest queue number 65535", o.QueueBase, int(o.QueueBase)+o.Queues-1)
	}
	if o.ReadBuffer == 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	if o.MaxQueueLen == 0 {
		o.MaxQueueLen = DefaultMaxQueueLen
	}
	if o.CopyRange == 0 {
		o.CopyRange = DefaultCopyRange
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Stats are the counters of one queue.
type Stats struct {
	// Received counts packets read from the queue.
	Received uint64
	// Accepted and Dropped count verdicts sent.
	Accepted, Dropped uint64
	// VerdictErrors counts verdicts the kernel could not be sent.
	VerdictErrors uint64
	// ENOBUFS counts socket overruns: each means the kernel dropped queue
	// messages because the receive buffer was full.
	ENOBUFS uint64
	// Reopens counts attempts to open the queue again after a socket
	// error.
	Reopens uint64
}

// QueueStats are the counters of the queue numbered Queue.
type QueueStats struct {
	Queue uint16
	Stats
}

type counters struct {
	received, accepted, dropped, verdictErrors, enobufs, reopens atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received:      c.received.Load(),
		Accepted:      c.accepted.Load(),
		Dropped:       c.dropped.Load(),
		VerdictErrors: c.verdictErrors.Load(),
		ENOBUFS:       c.enobufs.Load(),
		Reopens:       c.reopens.Load(),
	}
}

// Adapter serves a range of queues with one Handler.
type Adapter struct {
	opts     Options
	h        Handler
	counters []counters
	running  atomic.Bool
	ready    chan struct{}
	setReady sync.Once
}

// New returns an Adapter for opts and h; Run starts it.
func New(opts Options, h Handler) (*Adapter, error) {
	if h == nil {
		return nil, errors.New("queue: nil handler")
	}
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	return &Adapter{opts: o, h: h, counters: make([]counters, o.Queues), ready: make(chan struct{})}, nil
}

// Stats returns a snapshot of every queue's counters. It is safe to call
// while Run is running.
func (a *Adapter) Stats() []QueueStats {
	out := make([]QueueStats, len(a.counters))
	for i := range a.counters {
		out[i] = QueueStats{Queue: a.opts.QueueBase + uint16(i), Stats: a.counters[i].snapshot()}
	}
	return out
}

// Ready is closed once Run has bound every queue for the first time: from
// then on queued packets reach the Handler instead of the bypass.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// Run serves the queues until ctx is done, then returns nil. It returns an
// error at once if a queue cannot be opened at start-up (no permission,
// queue bound by another process). An Adapter runs at most once at a time.
func (a *Adapter) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("queue: adapter is already running")
	}
	defer a.running.Store(false)
	return a.run(ctx)
}

// Run serves the queues of opts with h until ctx is done; see Adapter.Run.
// Use New and Adapter.Stats to read the counters while it runs.
func Run(ctx context.Context, opts Options, h Handler) error {
	a, err := New(opts, h)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// verdictKind is the kernel verdict for one packet.
type verdictKind uint8

const (
	verdictDrop verdictKind = iota
	verdictAccept
)

// decide turns a Handler answer into the kernel verdict and, if the packet
// mark changes, the new mark. With a mask, only the mask bits of the packet
// mark change.
func decide(accept bool, mark, pktMark, mask uint32) (v verdictKind, setMark bool, newMark uint32) {
	if !accept {
		return verdictDrop, false, 0
	}
	if mark == 0 {
		return verdictAccept, false, 0
	}
	if mask == 0 {
		return verdictAccept, true, mark
	}
	return verdictAccept, true, pktMark&^mask | mark&mask
}

// nextBackoff returns the wait before re-opening after d, doubled and capped.
func nextBackoff(d time.Duration) time.Duration {
	d *= 2
	if d > maxBackoff {
		d = maxBackoff
	}
	return d
}
