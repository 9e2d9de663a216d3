//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The interface watch's timing.
const (
	// linkDebounce is how long after the first of a burst of interface
	// events the interfaces are read: a bridge coming up with its ports
	// and addresses is one burst, read once.
	linkDebounce = 200 * time.Millisecond
	// linkLook is how often the interfaces are read whatever the events
	// say: an event lost (a full socket buffer) leaves a hole for that
	// long at most.
	linkLook = 5 * time.Second
	// linkRedialMax is how many times in a row the event socket may fail
	// to open again before the watch gives up (a fatal error: the
	// supervisor restarts the daemon); linkRedialWait the wait between.
	linkRedialMax  = 10
	linkRedialWait = 3 * time.Second
)

// eventSource is a netlink socket joined to the link and address groups:
// Receive blocks until events arrive and fails once Close is called. A
// *netlink.Conn is one.
type eventSource interface {
	Receive() ([]netlink.Message, error)
	Close() error
}

// linkWatch wakes the main loop when the gateway's links or addresses may
// have changed: at the end of a debounce window after an event (a port
// joining or leaving a bridge, a bridge created, an address added or
// removed), after the socket overran (ENOBUFS: events were lost), and at
// every periodic look. The main loop then reads the interfaces and
// compares; a wake that changed nothing costs one dump.
type linkWatch struct {
	dial  func() (eventSource, error)
	after func(time.Duration) <-chan time.Time
	now   func() time.Time
	// woke is when the watch last woke the main loop.
	woke time.Time
	// debounce, look, redialWait and redialMax: see the constants.
	debounce, look, redialWait time.Duration
	redialMax                  int
	// wake is the main loop's; report hears of the watch's errors.
	wake   chan<- struct{}
	report func(err error, fatal bool)
}

// dialLinkEvents opens a socket joined to the link, IPv4 address and IPv6
// address groups of rtnetlink.
func dialLinkEvents() (eventSource, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("interface events: %w", err)
	}
	for _, g := range []uint32{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR} {
		if err := c.JoinGroup(g); err != nil {
			c.Close()
			return nil, fmt.Errorf("interface events: group %d: %w", g, err)
		}
	}
	return c, nil
}

// watchLinks starts the interface watch. A socket that cannot be opened
// fails the start.
func (d *Daemon) watchLinks(ctx context.Context) error {
	src, err := dialLinkEvents()
	if err != nil {
		return err
	}
	w := &linkWatch{dial: dialLinkEvents, after: time.After, now: time.Now, debounce: linkDebounce, look: linkLook,
		redialWait: linkRedialWait, redialMax: linkRedialMax, wake: d.ifaceEvents,
		report: func(err error, fatal bool) { d.fail("interface watch", err, fatal) }}
	d.goPart(func() { w.run(ctx, src) })
	return nil
}

// run serves the watch until ctx is done or the socket cannot be opened
// again. src is the socket opened at start.
//
// The debounce window opens at the first event and is not pushed back by
// later ones: a device that makes a Wi-Fi port flap without end (each
// association is a link event) cannot hold the update back, and gets at
// most one reading per window. The first event after a quiet spell (no
// wake for a window's length) also wakes the main loop at once: a port
// that joins a bridge is checked as soon as the reading sees it, not a
// window later, while a flapping port still gets at most two readings a
// window.
func (w *linkWatch) run(ctx context.Context, src eventSource) {
	events := make(chan error)
	var readers sync.WaitGroup
	read := func(src eventSource) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			w.read(ctx, src, events)
		}()
	}
	read(src)
	defer func() {
		if src != nil {
			src.Close()
		}
		readers.Wait()
	}()
	var window, redial <-chan time.Time
	look, failures := w.after(w.look), 0
	// The start read the interfaces before src listened: what changed in
	// between is read now.
	w.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-events:
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				// The socket is broken: report, and open another.
				w.report(err, false)
				src.Close()
				src, redial = nil, w.after(w.redialWait)
				continue
			}
			// An event, or an overrun that lost some: read the interfaces.
			if window == nil {
				window = w.after(w.debounce)
				if w.now().Sub(w.woke) >= w.debounce {
					w.poke()
				}
			}
		case <-redial:
			redial = nil
			s, err := w.dial()
			if err != nil {
				if failures++; failures >= w.redialMax {
					w.report(fmt.Errorf("%d attempts to open the event socket failed: %w", failures, err), true)
					return
				}
				redial = w.after(w.redialWait)
				continue
			}
			src, failures = s, 0
			read(src)
			w.poke() // events of the time without a socket are lost
		case <-window:
			window = nil
			w.poke()
		case <-look:
			look = w.after(w.look)
			w.poke()
		}
	}
}

// read passes what src receives to events: nil for messages, the error
// otherwise. It stops at the first error other than ENOBUFS (after which
// the socket still works), or when ctx is done.
func (w *linkWatch) read(ctx context.Context, src eventSource, events chan<- error) {
	for {
		_, err := src.Receive()
		if ctx.Err() != nil {
			return
		}
		select {
		case events <- err:
		case <-ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}

// poke wakes the main loop; a wake already pending covers this one.
func (w *linkWatch) poke() {
	w.woke = w.now()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
