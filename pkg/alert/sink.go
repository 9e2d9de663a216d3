package alert

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Writer is the part of a sink that talks to one destination: a socket, a
// file. A Sink calls it from its own goroutine only, so a Writer need not be
// safe for concurrent use.
type Writer interface {
	// Write delivers one alert. It must give up when ctx is done. An
	// error means the destination is no longer usable: the sink closes
	// the Writer and dials again, with backoff.
	Write(ctx context.Context, a *Alert) error
	// Close releases the destination.
	Close() error
}

// Dialer opens a Writer. It must give up when ctx is done.
type Dialer func(ctx context.Context) (Writer, error)

// SinkOptions tunes how a sink buffers and retries. Zero values take the
// defaults.
type SinkOptions struct {
	// Buffer is how many alerts wait for a slow or absent destination
	// before further ones are dropped (default 1024).
	Buffer int
	// MinBackoff and MaxBackoff bound the wait between failed attempts to
	// reach the destination; it doubles from min to max (defaults 100 ms
	// and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one dial or one write (default 5 s).
	Timeout time.Duration
	// Hostname is the HOSTNAME field of RFC 5424 messages (default
	// os.Hostname).
	Hostname string
	// PID is the process id in syslog messages (default os.Getpid).
	PID int
}

func (o SinkOptions) withDefaults() SinkOptions {
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	return o
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Name    string
	Sent    uint64 // alerts delivered
	Dropped uint64 // alerts lost: buffer full, closed, or undeliverable
	Errors  uint64 // failed dials and writes
	// LastError is the latest dial or write error, "" if none yet.
	LastError string
}

// Sink delivers alerts to one destination through a bounded buffer served
// by its own goroutine. Send never blocks: a destination that is down or
// slow costs buffered alerts and then dropped ones, never the caller's
// time. The goroutine reconnects with exponential backoff.
type Sink struct {
	name string
	dial Dialer
	opts SinkOptions

	in    chan Alert
	mu    sync.RWMutex // guards closed against Send racing Close
	stop  chan struct{}
	abort chan struct{}
	done  chan struct{}

	closeOnce sync.Once
	closed    bool

	sent, dropped, errs atomic.Uint64
	lastErr             atomic.Pointer[string]
}

// NewSink starts a sink that writes through Writers from dial. name says
// where the alerts go, for Stats and logs.
func NewSink(name string, dial Dialer, opts SinkOptions) *Sink {
	opts = opts.withDefaults()
	s := &Sink{
		name: name, dial: dial, opts: opts,
		in:    make(chan Alert, opts.Buffer),
		stop:  make(chan struct{}),
		abort: make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s
}

// Name says where the sink's alerts go.
func (s *Sink) Name() string { return s.name }

// Send queues a for delivery and reports whether it was queued. It never
// blocks; a full buffer or a closed sink drops the alert and counts it.
func (s *Sink) Send(a Alert) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		select {
		case s.in <- a:
			return true
		default:
		}
	}
	s.dropped.Add(1)
	return false
}

// Dropped is how many alerts the sink lost.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Errors is how many dials and writes failed.
func (s *Sink) Errors() uint64 { return s.errs.Load() }

// Sent is how many alerts were delivered.
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// Stats returns the sink's counters.
func (s *Sink) Stats() SinkStats {
	st := SinkStats{Name: s.name, Sent: s.sent.Load(), Dropped: s.dropped.Load(), Errors: s.errs.Load()}
	if p := s.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}

// Close stops accepting alerts and delivers those already queued until ctx
// is done; what is still undelivered then is dropped and counted. It
// returns ctx's error when it had to give up.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		select {
		case <-s.done:
			return
		case <-ctx.Done():
			err = ctx.Err()
		}
		close(s.abort)
		<-s.done
	})
	return err
}

func (s *Sink) fail(err error) {
	s.errs.Add(1)
	msg := err.Error()
	s.lastErr.Store(&msg)
}

var errAborted = errors.New("sink closed before delivery")

func (s *Sink) run() {
	defer close(s.done)
	// base is cancelled on abort, so a dial or write stuck on a dead
	// destination ends with Close's deadline.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.abort:
			cancel()
		case <-s.done:
		}
	}()

	var w Writer
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	backoff := s.opts.MinBackoff
	for {
		var a Alert
		select {
		case a = <-s.in:
		case <-s.stop:
			select {
			case a = <-s.in:
			default:
				return
			}
		}
		var err error
		w, backoff, err = s.deliver(base, w, &a, backoff)
		if err != nil {
			// Aborted: count the held alert and whatever is queued.
			s.dropped.Add(1 + uint64(len(s.in)))
			return
		}
	}
}

// deliver writes a, dialling as often as needed. It gives an alert two
// writes: one that fails right after a fresh dial is dropped, so that one
// alert the destination refuses (too large, say) cannot wedge the sink.
func (s *Sink) deliver(base context.Context, w Writer, a *Alert, backoff time.Duration) (Writer, time.Duration, error) {
	writes := 0
	for {
		if w == nil {
			ctx, cancel := context.WithTimeout(base, s.opts.Timeout)
			var err error
			w, err = s.dial(ctx)
			cancel()
			if err != nil {
				w = nil
				if base.Err() != nil {
					// Close gave up; that is no fault of the destination.
					return nil, backoff, errAborted
				}
				s.fail(err)
				if !s.wait(backoff) {
					return nil, backoff, errAborted
				}
				backoff = min(2*backoff, s.opts.MaxBackoff)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(base, s.opts.Timeout)
		err := w.Write(ctx, a)
		cancel()
		if err == nil {
			s.sent.Add(1)
			return w, s.opts.MinBackoff, nil
		}
		w.Close()
		w = nil
		if base.Err() != nil {
			return nil, backoff, errAborted
		}
		s.fail(err)
		writes++
		if writes >= 2 {
			s.dropped.Add(1)
			return nil, backoff, nil
		}
	}
}

// wait sleeps d unless the sink is aborted; it reports false on abort.
func (s *Sink) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.abort:
		return false
	}
}
