package spa

import (
	"errors"
	"net/netip"
	"sync"
	"time"
)

// MaxAge is how far a message's timestamp may be from the gateway's clock,
// either way.
const MaxAge = 120 * time.Second

// Errors of the gate, besides the decoder's.
var (
	ErrStale       = errors.New("spa: timestamp more than 120 s old")
	ErrFuture      = errors.New("spa: timestamp more than 120 s ahead")
	ErrRateLimited = errors.New("spa: too many failed attempts from this source")
)

// Gate judges SPA packets: it holds the decoder, the replay cache and the
// limiter of failed attempts. It is safe for concurrent use; packets are
// judged one at a time.
type Gate struct {
	mu     sync.Mutex
	dec    Decoder
	replay *ReplayCache
	limit  *Limiter
}

// NewGate returns a gate over a replay cache and a limiter (nil: the
// defaults, the cache in memory only).
func NewGate(replay *ReplayCache, limit *Limiter) *Gate {
	if replay == nil {
		replay, _ = OpenReplayCache("", 0, 0)
	}
	if limit == nil {
		limit = NewLimiter(DefaultLimiterOptions)
	}
	return &Gate{replay: replay, limit: limit}
}

// Check decodes data, an SPA packet from src, with the keys src may use,
// at now (unix nanoseconds). On success it returns the index of the key
// that authenticated it, m holds the message, and the message is in the
// replay cache: it will never pass again. Every failure is charged to
// src's budget of failed attempts; a source over it is refused before
// anything is computed (ErrRateLimited).
func (g *Gate) Check(src netip.Addr, data []byte, keys []*Key, now int64, m *Message) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limit.Blocked(src, now) {
		return -1, ErrRateLimited
	}
	i, err := g.check(data, keys, now, m)
	if err != nil {
		g.limit.Fail(src, now)
	}
	return i, err
}

func (g *Gate) check(data []byte, keys []*Key, now int64, m *Message) (int, error) {
	i, err := g.dec.Verify(data, keys)
	if err != nil {
		return -1, err
	}
	if err := g.dec.Open(keys[i], m); err != nil {
		return -1, err
	}
	ts := m.Timestamp * int64(time.Second)
	switch {
	case ts < now-int64(MaxAge):
		return -1, ErrStale
	case ts > now+int64(MaxAge):
		return -1, ErrFuture
	}
	// The message stays a replay for as long as its timestamp could pass:
	// until MaxAge after the later of its timestamp and now.
	if err := g.replay.Add(m.Digest, max(ts, now)+int64(MaxAge), now); err != nil {
		return -1, err
	}
	return i, nil
}

// ReplayLen returns how many messages the replay cache holds.
func (g *Gate) ReplayLen() int { return g.replay.Len() }
