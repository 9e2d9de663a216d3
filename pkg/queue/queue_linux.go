//go:build linux

package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/nlwalk"
)

func (a *Adapter) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Open every queue first, so a start-up error (no permission, queue
	// bound by another process) is returned rather than retried forever.
	sessions := make([]*session, a.opts.Queues)
	for i := range sessions {
		s, err := a.open(ctx, i)
		if err != nil {
			for _, s := range sessions[:i] {
				s.close()
			}
			return err
		}
		sessions[i] = s
	}

	a.setReady.Do(func() { close(a.ready) })

	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serve(ctx, i, s)
		}()
	}
	wg.Wait()
	return nil
}

// serve keeps queue i open until ctx is done, re-opening it with back-off
// after socket errors.
func (a *Adapter) serve(ctx context.Context, i int, s *session) {
	q := a.opts.QueueBase + uint16(i)
	log := a.opts.Logger.With("queue", q)
	backoff := minBackoff
	for {
		opened := time.Now()
		var err error
		select {
		case <-ctx.Done():
			s.close()
			return
		case err = <-s.failed:
			s.close()
		}
		if time.Since(opened) > backoffReset {
			backoff = minBackoff
		}
		for {
			a.counters[i].reopens.Add(1)
			log.Warn("queue: socket failed, re-opening", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = nextBackoff(backoff)
			if s, err = a.open(ctx, i); err == nil {
				break
			}
		}
	}
}

// session is one open queue socket and the goroutine that serves it.
type session struct {
	conn   *nlConn
	failed chan error // first fatal socket error
	once   sync.Once
	done   chan struct{} // closed when the reader has returned
}

func (s *session) close() {
	s.once.Do(func() {
		_ = s.conn.close()
		<-s.done
	})
}

func (s *session) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// recvBatchSize is how many queue messages one read takes at most. The
// verdicts of one read leave in one write.
const recvBatchSize = 64

func (a *Adapter) open(ctx context.Context, i int) (*session, error) {
	q := a.opts.QueueBase + uint16(i)
	flags := uint32(cfgGSO)
	if a.opts.FailOpen {
		flags |= cfgFailOpen
	}
	conn, err := dialNetfilter(a.opts.NetNS)
	if err != nil {
		return nil, fmt.Errorf("queue %d: open: %w", q, err)
	}
	if err := conn.setRecvBuffer(a.opts.ReadBuffer); err != nil {
		a.opts.Logger.Warn("queue: could not enlarge the receive buffer", "queue", q, "bytes", a.opts.ReadBuffer, "err", err)
	}
	c := &a.counters[i]
	if err := conn.bind(q, a.opts.CopyRange, a.opts.MaxQueueLen, flags, c); err != nil {
		_ = conn.close()
		return nil, fmt.Errorf("queue %d: bind: %w", q, err)
	}
	s := &session{conn: conn, failed: make(chan error, 1), done: make(chan struct{})}
	w := newBatcher(q, a.h, a.opts.MarkMask, c, conn)
	// A message holds the headers, a few attributes and at most CopyRange
	// bytes of the packet.
	rb := newRecvBatch(recvBatchSize, int(a.opts.CopyRange)+1024)
	go func() {
		defer close(s.done)
		a.readLoop(ctx, s, w, rb, c)
	}()
	go func() {
		// Cancellation closes the socket, which ends the reader.
		select {
		case <-ctx.Done():
			_ = conn.close()
		case <-s.done:
		}
	}()
	return s, nil
}

// readLoop reads, judges and answers the packets of one queue until its
// socket fails or closes.
func (a *Adapter) readLoop(ctx context.Context, s *session, w *batcher, rb *recvBatch, c *counters) {
	var yielded time.Time
	for {
		n, err := s.conn.read(rb)
		if err != nil {
			if onReadError(ctx, err, c, s.fail) != 0 {
				return
			}
			continue
		}
		w.now = a.opts.Now()
		for m := 0; m < n; m++ {
			w.handleMessages(rb.message(m))
		}
		if err := w.flush(); err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
		if w.now.Sub(yielded) >= yieldAfter {
			runtime.Gosched()
			yielded = w.now
		}
	}
}

// yieldAfter is how long the reader goes between passes through the
// scheduler. A goroutine that only ever enters and leaves system calls never
// passes through it, and after 10 ms of that the runtime's monitor counts it
// as stuck: it preempts it with a signal, or takes its P at a blocking read,
// and then wakes every 20 µs to look again (in a 1.5 s burst of one
// device's new flows some 2000 monitor wakes and 80 signals, about 4 % of
// the daemon's CPU samples). A pass every 4 ms shows the monitor that the
// goroutine is not stuck. A pass is not free either: runtime.Gosched wakes
// another thread, which takes the goroutine over while this one parks, some
// 30 µs of CPU in all (a pass every 16 reads, at some 50 000 reads a
// second, was 3.5 % of the samples; every millisecond still 3 %). So it
// goes by the clock, which each read reads anyway (Packet.Time), as seldom
// as the monitor allows.
const yieldAfter = 4 * time.Millisecond

// verdictSender writes encoded verdict messages to the kernel.
type verdictSender interface {
	write(b []byte) error
}

var _ verdictSender = (*nlConn)(nil)

// batcher judges the packets of one queue and batches their verdicts. It
// runs on the socket's reader goroutine, so verdicts go out in order and
// from the reading goroutine.
//
// Verdicts are gathered per read: consecutive packets with the same verdict
// and mark become one NFQNL_MSG_VERDICT_BATCH ("every packet up to this
// ID"), and all the messages of a read leave in one write. A batch verdict
// is exact here because the kernel hands packets out in ID order and the
// adapter judges every packet it read before it writes: no packet the
// adapter has not judged can have an ID below the batch's.
type batcher struct {
	queue uint16
	h     Handler
	mask  uint32
	c     *counters
	send  verdictSender

	pkt packetMsg
	arg Packet    // what the Handler is handed, reused
	now time.Time // when the read being judged returned
	out []byte    // encoded verdicts not yet written
	// run is the open batch: packets with one verdict and mark, the last
	// of them lastID; runLen counts them (0: no open batch).
	run struct {
		lastID  uint32
		v       verdictKind
		setMark bool
		mark    uint32
	}
	runLen int
	// The verdicts in out, counted once written.
	pendingAccepted, pendingDropped uint64
}

func newBatcher(q uint16, h Handler, mask uint32, c *counters, send verdictSender) *batcher {
	return &batcher{queue: q, h: h, mask: mask, c: c, send: send, out: make([]byte, 0, 64<<10)}
}

// handleMessages judges every packet message in b (the bytes of one
// datagram) and queues its verdict.
func (w *batcher) handleMessages(b []byte) {
	m := nlwalk.NewMessages(b)
	for m.Next() {
		w.handleMessage(m.Type(), m.Payload())
	}
	// Truncated by the read buffer: the packet header comes first, so the
	// packet can still be judged (on a shorter payload) rather than left
	// in the kernel's queue without a verdict.
	if typ, payload, ok := m.Cut(); ok {
		w.handleMessage(typ, payload)
	}
}

// handleMessage judges one packet message, or counts a refused verdict.
func (w *batcher) handleMessage(typ uint16, payload []byte) {
	switch typ {
	case msgPacket:
		parsePacket(payload, &w.pkt)
		w.judge(&w.pkt)
	case unix.NLMSG_ERROR:
		// A verdict the kernel refused (unknown packet ID, say). Sent
		// without an acknowledgement request, only failures come back.
		if len(payload) >= 4 && binary.NativeEndian.Uint32(payload) != 0 {
			w.c.verdictErrors.Add(1)
		}
	}
}

// judge asks the Handler about one packet and adds its verdict to the open
// batch, or closes the batch and opens another.
func (w *batcher) judge(p *packetMsg) {
	if !p.hasID {
		return
	}
	w.c.received.Add(1)
	w.arg = Packet{Queue: w.queue, Payload: p.payload, InIfindex: p.in, OutIfindex: p.out, PhysInIfindex: p.physIn, HwAddr: p.hwaddr, Mark: p.mark, GSO: p.gso, Time: w.now}
	accept, mark := w.h.Judge(&w.arg)
	v, setMark, newMark := decide(accept, mark, p.mark, w.mask)
	if w.runLen > 0 && (v != w.run.v || setMark != w.run.setMark || newMark != w.run.mark) {
		w.closeRun()
	}
	w.run.lastID, w.run.v, w.run.setMark, w.run.mark = p.id, v, setMark, newMark
	w.runLen++
	if v == verdictAccept {
		w.pendingAccepted++
	} else {
		w.pendingDropped++
	}
}

// closeRun encodes the open batch: a plain verdict for a single packet, a
// batch verdict for several.
func (w *batcher) closeRun() {
	if w.runLen == 0 {
		return
	}
	w.out = appendVerdict(w.out, w.queue, w.runLen > 1, w.run.lastID, w.run.v, w.run.setMark, w.run.mark)
	w.runLen = 0
}

// flush writes the verdicts of everything judged so far. An error means the
// socket is unusable.
func (w *batcher) flush() error {
	w.closeRun()
	if len(w.out) == 0 {
		return nil
	}
	err := w.send.write(w.out)
	w.out = w.out[:0]
	acc, drop := w.pendingAccepted, w.pendingDropped
	w.pendingAccepted, w.pendingDropped = 0, 0
	if err != nil {
		w.c.verdictErrors.Add(acc + drop)
		return fmt.Errorf("queue %d: verdicts: %w", w.queue, err)
	}
	w.c.accepted.Add(acc)
	w.c.dropped.Add(drop)
	return nil
}

// onReadError decides what a socket read error means, in go-nfqueue's
// ErrorFunc terms: 0 keeps reading, anything else stops the reader.
func onReadError(ctx context.Context, err error, c *counters, fail func(error)) int {
	if ctx.Err() != nil {
		return 1 // shutting down: the read deadline was moved into the past
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return 0 // the read timed out, or a signal came: read again
	}
	if errors.Is(err, unix.ENOBUFS) {
		// The kernel dropped queue messages; the packets they carried are
		// gone (dropped, or accepted with FailOpen). Keep reading.
		c.enobufs.Add(1)
		return 0
	}
	fail(err)
	return 1
}
