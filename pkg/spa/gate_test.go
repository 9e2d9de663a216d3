package spa

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var lanHost = netip.MustParseAddr("10.0.0.2")

func at(sec int64) int64 { return sec * int64(time.Second) }

func TestGateFreshnessAndReplay(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	keys := []*Key{k}
	access := readPacket(t, "access.spa")
	for _, tc := range []struct {
		name string
		file string
		now  int64
		want error
	}{
		{"fresh", "access.spa", at(fixtureTime + 5), nil},
		{"stale", "stale.spa", at(fixtureTime + 5), ErrStale},
		{"future", "future.spa", at(fixtureTime + 5), ErrFuture},
		{"old clock", "access.spa", at(fixtureTime + 121), ErrStale},
		{"gateway behind", "access.spa", at(fixtureTime - 121), ErrFuture},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGate(nil, nil)
			var m Message
			if _, err := g.Check(lanHost, readPacket(t, tc.file), keys, tc.now, &m); !errors.Is(err, tc.want) {
				t.Errorf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("replay", func(t *testing.T) {
		g := NewGate(nil, nil)
		var m Message
		if _, err := g.Check(lanHost, access, keys, at(fixtureTime), &m); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Check(lanHost, access, keys, at(fixtureTime+1), &m); !errors.Is(err, ErrReplay) {
			t.Errorf("second Check = %v, want ErrReplay", err)
		}
		// From another source too: the message is spent, whoever sends it.
		if _, err := g.Check(netip.MustParseAddr("10.0.0.9"), access, keys, at(fixtureTime+1), &m); !errors.Is(err, ErrReplay) {
			t.Errorf("Check from another source = %v, want ErrReplay", err)
		}
	})
}

func TestReplayCacheSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa-replay")
	k := readKeys(t, "keys.txt", "lab")
	access := readPacket(t, "access.spa")
	c, err := OpenReplayCache(path, 0, at(fixtureTime))
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if _, err := NewGate(c, nil).Check(lanHost, access, []*Key{k}, at(fixtureTime), &m); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = OpenReplayCache(path, 0, at(fixtureTime+10))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 1 {
		t.Fatalf("reopened cache holds %d digests, want 1", c.Len())
	}
	if _, err := NewGate(c, nil).Check(lanHost, access, []*Key{k}, at(fixtureTime+10), &m); !errors.Is(err, ErrReplay) {
		t.Errorf("Check after restart = %v, want ErrReplay", err)
	}
	// Once the timestamp is too old to pass, the entry is not kept.
	c2, err := OpenReplayCache(path, 0, at(fixtureTime+300))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Len() != 0 {
		t.Errorf("cache keeps %d expired digests", c2.Len())
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c, _ := OpenReplayCache("", 2, 0)
	for i, want := range []error{nil, nil, ErrReplayFull} {
		if err := c.Add([32]byte{byte(i)}, 100, 10); !errors.Is(err, want) {
			t.Errorf("Add %d = %v, want %v", i, err, want)
		}
	}
	// Expired entries make room.
	if err := c.Add([32]byte{9}, 200, 100); err != nil {
		t.Errorf("Add after expiry = %v", err)
	}
}

func TestGateRateLimitsFailures(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	other := readKeys(t, "other.txt", "other")
	g := NewGate(nil, NewLimiter(LimiterOptions{Interval: 10 * time.Second, Burst: 3, GlobalInterval: time.Millisecond, GlobalBurst: 1000}))
	junk := readPacket(t, "otherkey.spa")
	var m Message
	now := at(fixtureTime)
	for i := 0; i < 3; i++ {
		if _, err := g.Check(lanHost, junk, []*Key{k}, now, &m); !errors.Is(err, ErrBadHMAC) {
			t.Fatalf("attempt %d = %v, want ErrBadHMAC", i, err)
		}
	}
	if _, err := g.Check(lanHost, junk, []*Key{k}, now, &m); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("fourth attempt = %v, want ErrRateLimited", err)
	}
	// Another source is not held back by this one.
	if _, err := g.Check(netip.MustParseAddr("10.0.0.3"), junk, []*Key{other}, now, &m); err != nil {
		t.Errorf("other source = %v", err)
	}
	// The bucket refills: one attempt after 10 s.
	if _, err := g.Check(lanHost, junk, []*Key{k}, now+at(10), &m); !errors.Is(err, ErrBadHMAC) {
		t.Errorf("after refill = %v, want ErrBadHMAC", err)
	}
}

func TestGrants(t *testing.T) {
	g := NewGrants(2)
	now := at(1000)
	if !g.Open(Grant{Src: lanHost, Rule: "hub-admin", Proto: 6, Port: 22, Until: now + at(30)}, now) {
		t.Fatal("Open refused")
	}
	if !g.Live(lanHost, "hub-admin", 6, 22, now+at(29)) || g.Live(lanHost, "hub-admin", 6, 22, now+at(30)) {
		t.Error("window is not [now, now+30s)")
	}
	if g.Live(lanHost, "hub-admin", 6, 80, now) || g.Live(lanHost, "other", 6, 22, now) || g.Live(netip.MustParseAddr("10.0.0.3"), "hub-admin", 6, 22, now) {
		t.Error("grant opens more than its source, rule and service")
	}
	if !g.Given(lanHost, "hub-admin", 6, 22) {
		t.Error("closed grant forgotten at once")
	}
	g.Open(Grant{Src: lanHost, Rule: "b", Proto: 6, Port: 22, Until: now + at(30)}, now)
	if g.Open(Grant{Src: lanHost, Rule: "c", Proto: 6, Port: 22, Until: now + at(30)}, now) {
		t.Error("full table of open grants took one more")
	}
	if n := len(g.List(now)); n != 2 {
		t.Errorf("List = %d grants, want 2", n)
	}
	g.Sweep(now + at(30) + int64(keepAfter))
	if g.Given(lanHost, "hub-admin", 6, 22) {
		t.Error("grant kept past a day after its window")
	}
}

// A replay file with torn or foreign lines loses those lines only.
func TestReplayCacheSkipsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa-replay")
	c, _ := OpenReplayCache(path, 0, 0)
	if err := c.Add([32]byte{1}, at(100), 0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not a line\n" + strings.Repeat("A", 200) + " 5\nAAAA 99999999999999999\n")
	f.Close()
	c, err := OpenReplayCache(path, 0, at(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 1 {
		t.Errorf("cache holds %d digests, want the one good line", c.Len())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replay file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}
