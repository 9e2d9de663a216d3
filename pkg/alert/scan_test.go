package alert

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestScanDetector(t *testing.T) {
	src := addr("10.0.0.5")
	dst := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}) }

	t.Run("fires once past the threshold", func(t *testing.T) {
		s := NewScanDetector(10*time.Second, 20, 0)
		now := newClock().Now()
		for i := range 20 {
			if n := s.Observe("camera-1", src, dst(i), 22, now); n != 0 {
				t.Fatalf("fired at %d distinct pairs", i+1)
			}
		}
		if n := s.Observe("camera-1", src, dst(20), 22, now); n != 21 {
			t.Fatalf("21st distinct pair: Observe = %d, want 21", n)
		}
		// The same scan goes on: quiet for a window...
		for i := range 100 {
			if n := s.Observe("camera-1", src, dst(100+i), 22, now.Add(time.Second)); n != 0 {
				t.Fatalf("fired again within the window")
			}
		}
		// ... then it may fire again.
		later := now.Add(11 * time.Second)
		fired := 0
		for port := range 30 {
			if s.Observe("camera-1", src, dst(1), uint16(port), later) > 0 {
				fired++
			}
		}
		if fired != 1 {
			t.Fatalf("after the quiet window a port scan fired %d times, want 1", fired)
		}
	})

	t.Run("repeats of one pair are not a scan", func(t *testing.T) {
		s := NewScanDetector(10*time.Second, 20, 0)
		now := newClock().Now()
		for range 1000 {
			if s.Observe("plug", src, dst(1), 443, now) != 0 {
				t.Fatal("fired on one pair")
			}
		}
	})

	t.Run("a slow walk stays under a sliding window", func(t *testing.T) {
		s := NewScanDetector(10*time.Second, 20, 0)
		now := newClock().Now()
		for i := range 200 {
			// One new pair a second: never more than 10 in any 10 s.
			if s.Observe("", src, dst(i), uint16(i), now.Add(time.Duration(i)*time.Second)) != 0 {
				t.Fatalf("fired at pair %d of a slow walk", i)
			}
		}
	})

	t.Run("sources are independent and capped", func(t *testing.T) {
		s := NewScanDetector(10*time.Second, 20, 50)
		now := newClock().Now()
		for i := range 20 {
			s.Observe("a", src, dst(i), 1, now)
			s.Observe("b", src, dst(i), 1, now)
		}
		if s.Observe("a", src, dst(99), 1, now) == 0 {
			t.Fatal("a did not fire")
		}
		for i := range 1000 {
			s.Observe(fmt.Sprint("dev-", i), src, dst(1), 1, now)
		}
		if s.Sources() != 50 {
			t.Fatalf("%d sources tracked, want the cap 50", s.Sources())
		}
	})
}
