package lab

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// CloseOnSignal closes the lab when the process receives SIGINT or SIGTERM,
// then lets the process die of that same signal, so that the shell sees the
// usual status (130 for Ctrl-C) and nothing of the lab is left behind.
//
// It watches until ctx is done or stop is called; call stop (it is
// idempotent) once the lab is closed normally, typically right after the
// deferred Close:
//
//	lab, err := lab.New(ctx, lab.DefaultOptions())
//	if err != nil { ... }
//	defer lab.Close()
//	stop := lab.CloseOnSignal(ctx)
//	defer stop()
//
// A signal that arrives before CloseOnSignal is called (during New, say)
// still kills the process the default way; the lab's record lets [Cleanup]
// remove what is left. A second signal during the teardown is ignored.
//
// While it watches, it overrides the default action of both signals for the
// whole process: other signal.Notify users still receive them, but the
// process ends once the lab is closed. If the program ends on its own while
// the lab closes, the program's exit status wins.
func (l *Lab) CloseOnSignal(ctx context.Context) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
		})
	}
	go func() {
		select {
		case sig := <-sigs:
			l.Close()
			dieOf(sig.(syscall.Signal))
		case <-quit:
		case <-ctx.Done():
			stop()
		}
	}()
	return stop
}

// dieOf ends the process by signal sig with its default action, falling
// back to the shell's convention of exit status 128+sig.
func dieOf(sig syscall.Signal) {
	signal.Reset(sig)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Signal(sig)
	}
	time.Sleep(time.Second) // the signal is asynchronous
	os.Exit(128 + int(sig))
}
