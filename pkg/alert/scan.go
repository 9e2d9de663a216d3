package alert

import (
	"net/netip"
	"time"

	"github.com/picoseg/picoseg/internal/lru"
)

// Scan detector defaults.
const (
	DefaultScanWindow    = 10 * time.Second
	DefaultScanThreshold = 20
)

// ScanDetector notices one source reaching many distinct (destination,
// port) pairs within a sliding window: a host or port scan, or a
// compromised device probing its neighbours. Each pair counts once however
// many packets it sees, so a device retrying one blocked service is not a
// scan.
//
// Memory is bounded twice: at most maxKeys sources (least recently seen
// evicted), and at most threshold+1 pairs per source, since the set is
// cleared when it fires.
//
// A ScanDetector is not safe for concurrent use.
type ScanDetector struct {
	window    time.Duration
	threshold int
	srcs      *lru.Map[scanKey, scanState]
}

type scanKey struct {
	device string
	src    netip.Addr // only when device is ""
}

type scanTarget struct {
	dst  netip.Addr
	port uint16
}

type scanState struct {
	seen map[scanTarget]time.Time // last time each pair was seen
	// quietUntil holds the source off after it fired: one scan is one
	// possible_scan per window, not one per further batch of probes.
	quietUntil time.Time
}

// NewScanDetector returns a detector that fires when a source reaches more
// than threshold distinct pairs within window. Zero values take the
// defaults (20 pairs, 10 s, 4096 sources).
func NewScanDetector(window time.Duration, threshold, maxKeys int) *ScanDetector {
	if window <= 0 {
		window = DefaultScanWindow
	}
	if threshold <= 0 {
		threshold = DefaultScanThreshold
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &ScanDetector{window: window, threshold: threshold, srcs: lru.NewMap[scanKey, scanState](maxKeys)}
}

// Observe records that the source (device name, or src when device is "")
// reached dst:port at now. It returns the number of distinct pairs seen in
// the window when that number has just gone over the threshold, else 0.
func (s *ScanDetector) Observe(device string, src, dst netip.Addr, port uint16, now time.Time) int {
	if !dst.IsValid() {
		return 0
	}
	k := scanKey{device: device}
	if device == "" {
		k.src = src
	}
	st := s.srcs.Get(k)
	if st == nil {
		st, _ = s.srcs.Add(k, scanState{seen: make(map[scanTarget]time.Time, s.threshold+1)})
	}
	if now.Before(st.quietUntil) {
		return 0
	}
	st.seen[scanTarget{dst, port}] = now
	if len(st.seen) <= s.threshold {
		return 0
	}
	// Only now pay for expiring old pairs: below the threshold stale pairs
	// cost at most threshold entries.
	for t, seen := range st.seen {
		if now.Sub(seen) >= s.window {
			delete(st.seen, t)
		}
	}
	n := len(st.seen)
	if n <= s.threshold {
		return 0
	}
	clear(st.seen)
	st.quietUntil = now.Add(s.window)
	return n
}

// Sources is the number of sources currently tracked.
func (s *ScanDetector) Sources() int { return s.srcs.Len() }
