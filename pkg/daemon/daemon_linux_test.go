package daemon

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func bareDaemon() (*Daemon, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	return &Daemon{errs: make(chan partError, 8), cancel: cancel, log: slog.New(slog.DiscardHandler)}, ctx
}

// A part's fatal error ends the run and is what Run returns; a non-fatal
// one is logged and the daemon keeps judging.
func TestLoopReturnsFirstFatalError(t *testing.T) {
	d, ctx := bareDaemon()
	queueErr := errors.New("queue 4200: bind: operation not permitted")
	d.fail("metrics", errors.New("accept: too many open files"), false)
	d.fail("queue", queueErr, true)
	d.fail("queue", errors.New("a later one"), true)
	done := make(chan error, 1)
	go func() { done <- d.loop(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, queueErr) {
			t.Fatalf("loop returned %v, want the first fatal error %v", err, queueErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a fatal error did not end the loop")
	}
	if err := d.stop(errors.New("first")); err == nil || err.Error() != "first" {
		t.Errorf("stop(err) returned %v, want err", err)
	}
}

// A fatal error that arrives while the run is ending (a stop signal and a
// queue failure at once) is returned, not lost.
func TestStopKeepsLateFatalError(t *testing.T) {
	d, _ := bareDaemon()
	queueErr := errors.New("queue 4201: read: no buffer space")
	d.goPart(func() { d.fail("queue", queueErr, true) })
	if err := d.stop(nil); !errors.Is(err, queueErr) {
		t.Fatalf("stop returned %v, want %v", err, queueErr)
	}
	d, _ = bareDaemon()
	d.fail("status socket", errors.New("accept failed"), false)
	if err := d.stop(nil); err != nil {
		t.Fatalf("a non-fatal error made stop fail: %v", err)
	}
}
