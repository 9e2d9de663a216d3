package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

// Options tunes a Dispatcher. Zero values take the defaults.
type Options struct {
	// Window is the limiter's dedup window per (type, device) (60 s).
	Window time.Duration
	// ScanWindow and ScanThreshold: a source reaching more than
	// ScanThreshold distinct (destination, port) pairs within ScanWindow
	// raises possible_scan (10 s, 20).
	ScanWindow    time.Duration
	ScanThreshold int
	// MaxKeys caps the limiter's keys of each severity class and the scan
	// detector's sources (4096).
	MaxKeys int
	// Rate is each severity class's budget of alerts a second (100):
	// crit and worse, err, warning, and notice and milder each have their
	// own, so that a flood of one never starves another. Negative means no
	// budget.
	Rate int
	// Buffer is how many events wait for the dispatcher's goroutine
	// before Emit drops them (4096).
	Buffer int
	// Recent is how many alerts Recent can return (256).
	Recent int
	// TickEvery is how often pending summaries are looked at (1 s).
	TickEvery time.Duration
	// CloseTimeout bounds Close's flushing to the sinks (5 s).
	CloseTimeout time.Duration
	// Now is the clock (time.Now). Replay and tests inject their own.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.ScanWindow <= 0 {
		o.ScanWindow = DefaultScanWindow
	}
	if o.ScanThreshold <= 0 {
		o.ScanThreshold = DefaultScanThreshold
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.Recent <= 0 {
		o.Recent = 256
	}
	if o.TickEvery <= 0 {
		o.TickEvery = time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats are the dispatcher's counters.
type Stats struct {
	EventsIn uint64 // events handed to Emit
	// EventsDropped counts events Emit could not queue (buffer full or
	// dispatcher closed) and unknown event types.
	EventsDropped uint64
	RaisedDropped uint64            // Raise calls that found the queue full
	AlertsOut     uint64            // alerts sent to the sinks
	ByType        map[string]uint64 // AlertsOut by type name
	Folded        uint64            // alerts counted into summaries
	Suppressed    uint64            // alerts held back by a severity's budget
	// Aggregated counts summaries folded into a per-type aggregate, because
	// their budget was spent when they were due or their key was evicted.
	Aggregated uint64
	Sinks      []SinkStats
}

// Dispatcher turns engine events and daemon alerts into rate-limited
// alerts and fans them out to its sinks. It is an engine.Sink.
//
// Emit only copies the event into a bounded channel; one goroutine does
// scan detection, limiting, formatting and fan-out, so the verdict path
// never waits for any of it.
type Dispatcher struct {
	opts    Options
	sinks   []*Sink
	limiter *Limiter
	scan    *ScanDetector

	events chan engine.Event
	// urgent carries the events whose alerts are err or worse
	// (spoofed_address): a flood of denials that fills events must not
	// crowd them out at Emit, before the limiter's budgets can help.
	urgent chan engine.Event
	raised chan Alert
	calls  chan func()
	stop   chan struct{}
	done   chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	eventsIn, eventsDropped, raisedDropped atomic.Uint64
	alertsOut, folded, suppressed          atomic.Uint64
	aggregated                             atomic.Uint64
	byType                                 [typeCount]atomic.Uint64

	out []Alert // scratch, goroutine only

	mu     sync.Mutex
	recent []Alert // ring
	next   int     // where the next alert goes in recent
	full   bool    // recent has wrapped
}

var _ engine.Sink = (*Dispatcher)(nil)

// New starts a dispatcher that sends to sinks. It owns them: Close closes
// them.
func New(opts Options, sinks ...*Sink) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{
		opts:    opts,
		sinks:   sinks,
		limiter: NewLimiter(opts.Window, opts.MaxKeys, opts.Rate),
		scan:    NewScanDetector(opts.ScanWindow, opts.ScanThreshold, opts.MaxKeys),
		events:  make(chan engine.Event, opts.Buffer),
		urgent:  make(chan engine.Event, urgentBuffer),
		raised:  make(chan Alert, 64),
		calls:   make(chan func()),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		recent:  make([]Alert, opts.Recent),
	}
	go d.run()
	return d
}

// Emit queues an engine event. It never blocks and never formats: when
// the queue is full the event is dropped and counted, because a flood of
// events is exactly when the verdict path must not slow down.
func (d *Dispatcher) Emit(e engine.Event) {
	d.eventsIn.Add(1)
	if d.closed.Load() {
		d.eventsDropped.Add(1)
		return
	}
	ch := d.events
	if t, ok := FromEvent(e.Type); ok && t.Severity() <= SeverityError {
		ch = d.urgent
	}
	select {
	case ch <- e:
	default:
		d.eventsDropped.Add(1)
	}
}

// urgentBuffer is how many err-or-worse events wait beside the others.
const urgentBuffer = 256

// Raise queues a daemon-level alert (daemon_started, daemon_stopped,
// policy_reload_failed, queue_overflow, new_device, ...). Severity comes
// from the catalogue; a zero Time is now; a Message the caller set is
// kept. It goes through the limiter like any alert, and never blocks.
func (d *Dispatcher) Raise(a Alert) {
	if !a.Type.Valid() || d.closed.Load() {
		d.raisedDropped.Add(1)
		return
	}
	a.Severity = a.Type.Severity()
	if a.Time.IsZero() {
		a.Time = d.opts.Now()
	}
	select {
	case d.raised <- a:
	default:
		d.raisedDropped.Add(1)
	}
}

// Close stops taking events, emits every pending summary, and closes the
// sinks, giving them Options.CloseTimeout to deliver what they hold.
func (d *Dispatcher) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		<-d.done
		ctx, cancel := context.WithTimeout(context.Background(), d.opts.CloseTimeout)
		defer cancel()
		var errs []error
		for _, s := range d.sinks {
			if err := s.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			}
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// Stats returns the dispatcher's counters and each sink's.
func (d *Dispatcher) Stats() Stats {
	st := Stats{
		EventsIn:      d.eventsIn.Load(),
		EventsDropped: d.eventsDropped.Load(),
		RaisedDropped: d.raisedDropped.Load(),
		AlertsOut:     d.alertsOut.Load(),
		Folded:        d.folded.Load(),
		Suppressed:    d.suppressed.Load(),
		Aggregated:    d.aggregated.Load(),
		ByType:        make(map[string]uint64),
	}
	for t := TypeNone + 1; t < typeCount; t++ {
		if n := d.byType[t].Load(); n > 0 {
			st.ByType[t.String()] = n
		}
	}
	for _, s := range d.sinks {
		st.Sinks = append(st.Sinks, s.Stats())
	}
	return st
}

// Recent returns up to n of the latest alerts, oldest first; n <= 0 means
// all that are kept.
func (d *Dispatcher) Recent(n int) []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	have := d.next
	if d.full {
		have = len(d.recent)
	}
	if n <= 0 || n > have {
		n = have
	}
	out := make([]Alert, n)
	for i := range n {
		out[i] = d.recent[(d.next-n+i+len(d.recent))%len(d.recent)]
	}
	return out
}

func (d *Dispatcher) run() {
	defer close(d.done)
	ticker := time.NewTicker(d.opts.TickEvery)
	defer ticker.Stop()
	for {
		select {
		case e := <-d.urgent:
			d.handleEvent(&e)
		case e := <-d.events:
			d.handleEvent(&e)
		case a := <-d.raised:
			d.handleAlert(a)
		case <-ticker.C:
			d.publish(d.limiter.Tick(d.out[:0], d.opts.Now()))
		case f := <-d.calls:
			d.drain()
			f()
		case <-d.stop:
			d.drain()
			d.publish(d.limiter.Flush(d.out[:0], d.opts.Now()))
			return
		}
	}
}

// call runs f on the dispatcher's goroutine once everything queued before
// it has been handled.
func (d *Dispatcher) call(f func()) {
	done := make(chan struct{})
	select {
	case d.calls <- func() { f(); close(done) }:
		<-done
	case <-d.done:
	}
}

// drain handles everything queued so far.
func (d *Dispatcher) drain() {
	for {
		select {
		case e := <-d.urgent:
			d.handleEvent(&e)
		case e := <-d.events:
			d.handleEvent(&e)
		case a := <-d.raised:
			d.handleAlert(a)
		default:
			return
		}
	}
}

func (d *Dispatcher) handleEvent(e *engine.Event) {
	t, ok := FromEvent(e.Type)
	if !ok {
		d.eventsDropped.Add(1)
		return
	}
	now := d.opts.Now()
	a := fromEvent(e, t, now)
	out := d.out[:0]
	// Undecodable packets are left out of scan detection: their ports
	// (fragments, truncated headers) cannot be trusted.
	if t != TypeUndecodablePacket {
		if n := d.scan.Observe(e.Device, e.Src, e.Dst, e.DPort, now); n > 0 {
			s := a
			s.Type, s.Severity, s.Layer, s.Rule, s.Reason, s.Bytes = TypePossibleScan, TypePossibleScan.Severity(), engine.LayerNone, "", "", 0
			out = d.limiter.Offer(out, s, now)
		}
	}
	out = d.limiter.Offer(out, a, now)
	d.publish(out)
}

func (d *Dispatcher) handleAlert(a Alert) {
	d.publish(d.limiter.Offer(d.out[:0], a, d.opts.Now()))
}

// publish formats what the limiter let out and hands it to every sink.
func (d *Dispatcher) publish(out []Alert) {
	d.folded.Store(d.limiter.Folded())
	d.suppressed.Store(d.limiter.Suppressed())
	d.aggregated.Store(d.limiter.Aggregated())
	for i := range out {
		a := &out[i]
		if a.Message == "" {
			a.Message = formatMessage(a, d.opts.ScanThreshold, d.opts.ScanWindow)
		} else {
			// A message Raise was given: still say what a summary
			// stands for.
			a.Message += summarySuffix(a)
		}
		d.alertsOut.Add(1)
		d.byType[a.Type].Add(1)
		d.mu.Lock()
		d.recent[d.next] = *a
		d.next++
		if d.next == len(d.recent) {
			d.next, d.full = 0, true
		}
		d.mu.Unlock()
		for _, s := range d.sinks {
			s.Send(*a)
		}
	}
	clear(out)
	d.out = out[:0]
}
