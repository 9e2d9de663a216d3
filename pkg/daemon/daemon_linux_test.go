package daemon

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

func bareDaemon() (*Daemon, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	return &Daemon{errs: make(chan partError, 8), fatal: make(chan partError, 1), cancel: cancel, log: slog.New(slog.DiscardHandler)}, ctx
}

// A part's fatal error ends the run and is what Run returns; a non-fatal
// one is logged and the daemon keeps judging.
func TestLoopReturnsFirstFatalError(t *testing.T) {
	d, ctx := bareDaemon()
	queueErr := errors.New("queue 4200: bind: operation not permitted")
	// More non-fatal errors than their buffer holds must not crowd out
	// the fatal one that follows.
	for range 20 {
		d.fail("metrics", errors.New("accept: too many open files"), false)
	}
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

func TestParseProcStatus(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		uid, gid   int
		caps       string
	}{
		{"root", "Name:\tpicoseg\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n", 0, 0, "all"},
		{"dropped", "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000001000\n", 65534, 65534, "cap_net_admin"},
		{"effective uid", "Uid:\t0\t1000\t0\t1000\nGid:\t0\t100\t0\t100\nCapEff:\t0000000000003000\n", 1000, 100, "cap_net_admin cap_net_raw"},
		{"none", "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n", 1000, 1000, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseProcStatus(bufio.NewScanner(strings.NewReader(tt.text)))
			if err != nil {
				t.Fatal(err)
			}
			// 40 is the last capability of the kernels this runs on.
			p.Capabilities = capNames(mustCaps(t, tt.text), 40)
			if p.UID != tt.uid || p.GID != tt.gid || strings.Join(p.Capabilities, " ") != tt.caps {
				t.Errorf("got uid %d gid %d caps %q, want %d %d %q", p.UID, p.GID, p.Capabilities, tt.uid, tt.gid, tt.caps)
			}
		})
	}
	for _, bad := range []string{"", "Uid:\t0\t0\t0\t0\n", "Uid:\t0\t0\t0\t0\nCapEff:\tzz\n"} {
		if _, err := parseProcStatus(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func mustCaps(t *testing.T, text string) uint64 {
	t.Helper()
	_, v, _ := strings.Cut(text, "CapEff:\t")
	n, err := strconv.ParseUint(strings.Fields(v)[0], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
