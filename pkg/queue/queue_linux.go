//go:build linux

package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"
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

// verdictSender sends one verdict. It is an interface so that verdicts for
// the same mark can later be batched (NFQNL_MSG_VERDICT_BATCH) without
// touching the judging code.
type verdictSender interface {
	send(id uint32, v verdictKind, setMark bool, mark uint32) error
}

type nfqSender struct{ nf *nfqueue.Nfqueue }

func (s nfqSender) send(id uint32, v verdictKind, setMark bool, mark uint32) error {
	kv := nfqueue.NfDrop
	if v == verdictAccept {
		kv = nfqueue.NfAccept
	}
	if setMark {
		// NFQA_MARK: becomes the packet mark, which the ruleset copies into
		// the conntrack mark.
		return s.nf.SetVerdictWithOption(id, kv, nfqueue.WithMark(mark))
	}
	return s.nf.SetVerdict(id, kv)
}

// session is one open queue socket.
type session struct {
	nf     *nfqueue.Nfqueue
	failed chan error // first fatal socket error
	once   sync.Once
}

func (s *session) close() {
	s.once.Do(func() { _ = s.nf.Close() })
}

func (s *session) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

func (a *Adapter) open(ctx context.Context, i int) (*session, error) {
	q := a.opts.QueueBase + uint16(i)
	flags := uint32(nfqueue.NfQaCfgFlagGSO)
	if a.opts.FailOpen {
		flags |= nfqueue.NfQaCfgFlagFailOpen
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        a.opts.NetNS,
		NfQueue:      q,
		MaxQueueLen:  a.opts.MaxQueueLen,
		MaxPacketLen: a.opts.CopyRange,
		Copymode:     nfqueue.NfQnlCopyPacket,
		Flags:        flags,
		AfFamily:     unix.AF_INET, // ignored by kernels since 3.8; one bind serves both families
		WriteTimeout: time.Second,
		Logger:       slogAdapter{a.opts.Logger.With("queue", q)},
	})
	if err != nil {
		return nil, fmt.Errorf("queue %d: open: %w", q, err)
	}
	if err := setReadBuffer(nf, a.opts.ReadBuffer); err != nil {
		a.opts.Logger.Warn("queue: could not enlarge the receive buffer", "queue", q, "bytes", a.opts.ReadBuffer, "err", err)
	}
	s := &session{nf: nf, failed: make(chan error, 1)}
	w := &worker{queue: q, h: a.h, mask: a.opts.MarkMask, c: &a.counters[i], send: nfqSender{nf}}
	hook := func(attr nfqueue.Attribute) int {
		if err := w.handle(attr); err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return 1
		}
		return 0
	}
	errfn := func(err error) int { return onReadError(ctx, err, w.c, s.fail) }
	if err := nf.RegisterWithErrorFunc(ctx, hook, errfn); err != nil {
		_ = nf.Close()
		return nil, fmt.Errorf("queue %d: bind: %w", q, err)
	}
	return s, nil
}

// setReadBuffer sets the socket receive buffer, past net.core.rmem_max when
// the process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
func setReadBuffer(nf *nfqueue.Nfqueue, n int) error {
	rc, err := nf.Con.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		})
		if err == nil && serr == nil {
			return nil
		}
	}
	return nf.Con.SetReadBuffer(n)
}

// worker judges the packets of one queue. It runs on the socket's reader
// goroutine, so verdicts go out in order and from the reading goroutine.
type worker struct {
	queue uint16
	h     Handler
	mask  uint32
	c     *counters
	send  verdictSender
}

// handle judges one packet and sends its verdict. An error means the
// socket is unusable.
func (w *worker) handle(attr nfqueue.Attribute) error {
	if attr.PacketID == nil {
		return nil
	}
	w.c.received.Add(1)
	var payload []byte
	if attr.Payload != nil {
		payload = *attr.Payload
	}
	var in, out, pktMark uint32
	if attr.InDev != nil {
		in = *attr.InDev
	}
	if attr.OutDev != nil {
		out = *attr.OutDev
	}
	if attr.Mark != nil {
		pktMark = *attr.Mark
	}
	accept, mark := w.h.Judge(w.queue, payload, in, out)
	v, setMark, newMark := decide(accept, mark, pktMark, w.mask)
	if err := w.send.send(*attr.PacketID, v, setMark, newMark); err != nil {
		w.c.verdictErrors.Add(1)
		return fmt.Errorf("queue %d: verdict for packet %d: %w", w.queue, *attr.PacketID, err)
	}
	if v == verdictAccept {
		w.c.accepted.Add(1)
	} else {
		w.c.dropped.Add(1)
	}
	return nil
}

// onReadError decides what a socket read error means, in go-nfqueue's
// ErrorFunc terms: 0 keeps reading, anything else stops the reader.
func onReadError(ctx context.Context, err error, c *counters, fail func(error)) int {
	if ctx.Err() != nil {
		return 1 // shutting down: the read deadline was moved into the past
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

// slogAdapter passes go-nfqueue's internal reports to the adapter's logger.
type slogAdapter struct{ l *slog.Logger }

func (s slogAdapter) Debugf(format string, args ...any) { s.l.Debug(fmt.Sprintf(format, args...)) }
func (s slogAdapter) Errorf(format string, args ...any) { s.l.Info(fmt.Sprintf(format, args...)) }
