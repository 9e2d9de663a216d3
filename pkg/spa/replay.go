package spa

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrReplay is a message the cache has seen; ErrReplayFull is a cache
// holding as many live messages as it may: the packet is refused rather
// than let a replay through.
var (
	ErrReplay     = errors.New("spa: message seen before (replay)")
	ErrReplayFull = errors.New("spa: replay cache full")
)

// DefaultReplayCapacity bounds the replay cache. An entry lives only as
// long as its message's timestamp is fresh (MaxAge either way), so this is
// how many valid knocks in four minutes it can tell apart.
const DefaultReplayCapacity = 65536

// ReplayCache remembers the digests of the messages granted, until their
// timestamps are too old to pass anyway. It is bounded in memory and, when
// given a file, written through so that a restart does not forget: a
// packet captured before a restart must not open the service after it.
type ReplayCache struct {
	mu       sync.Mutex
	seen     map[[32]byte]int64 // digest -> expiry, unix nanoseconds
	capacity int
	path     string
	f        *os.File
	appended int
}

// OpenReplayCache loads the cache kept in path ("" for one in memory
// only), dropping what expired before now, and rewrites the file compact.
func OpenReplayCache(path string, capacity int, now int64) (*ReplayCache, error) {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	c := &ReplayCache{seen: map[[32]byte]int64{}, capacity: capacity, path: path}
	if path == "" {
		return c, nil
	}
	if err := c.load(now); err != nil {
		return nil, err
	}
	if err := c.rewrite(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the file's lines "DIGEST EXPIRY" (base64, unix nanoseconds). A line it cannot read
// is skipped: a torn last line after a crash loses one entry, not all.
func (c *ReplayCache) load(now int64) error {
	f, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		digest, exp, ok := strings.Cut(sc.Text(), " ")
		var d [32]byte
		if !ok || len(digest) != digestLen {
			continue
		}
		if n, err := b64.Decode(d[:], []byte(digest)); err != nil || n != len(d) {
			continue
		}
		e, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || e <= now || len(c.seen) >= c.capacity {
			continue
		}
		c.seen[d] = e
	}
	return sc.Err()
}

// rewrite replaces the file with the live entries, atomically, and opens
// it for appending.
func (c *ReplayCache) rewrite() error {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".spa-replay-*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for d, e := range c.seen {
		fmt.Fprintf(w, "%s %d\n", b64.EncodeToString(d[:]), e)
	}
	err = errors.Join(w.Flush(), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	c.f, err = os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o600)
	c.appended = 0
	return err
}

// Add records digest as seen until expires. It returns ErrReplay when the
// digest is already there, ErrReplayFull when the cache has no room, and
// the write error if the record could not be kept on disk (then the
// message is refused: granting what a restart would forget is a replay
// waiting to happen).
func (c *ReplayCache) Add(digest [32]byte, expires, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[digest]; ok && e > now {
		return ErrReplay
	}
	if len(c.seen) >= c.capacity {
		c.purge(now)
		if len(c.seen) >= c.capacity {
			return ErrReplayFull
		}
	}
	c.seen[digest] = expires
	if c.f == nil {
		return nil
	}
	if _, err := fmt.Fprintf(c.f, "%s %d\n", b64.EncodeToString(digest[:]), expires); err != nil {
		return err
	}
	if err := c.f.Sync(); err != nil {
		return err
	}
	c.appended++
	if c.appended > c.capacity {
		c.purge(now)
		return c.rewrite()
	}
	return nil
}

func (c *ReplayCache) purge(now int64) {
	for d, e := range c.seen {
		if e <= now {
			delete(c.seen, d)
		}
	}
}

// Len returns how many digests the cache holds.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Close closes the cache's file.
func (c *ReplayCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
