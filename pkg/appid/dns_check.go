package appid

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// DNSConfig is what a DNS checker holds a device's queries to: the shapes
// of DNS tunnelling and exfiltration (names nobody needs, long names,
// random-looking labels, many queries).
type DNSConfig struct {
	// Names are the query names allowed; nil allows any.
	Names *NameSet
	// MaxName bounds a query name's length in characters (0: no bound).
	MaxName int
	// MaxEntropy bounds the Shannon entropy of a query name's characters,
	// dots left out, in bits per character (0: no bound). Words score
	// about 3 to 3.5; base32 and hex data 4 and more once the name is long
	// enough to show it.
	MaxEntropy float64
	// Rate and Per bound one device's queries under the rule: at most Rate
	// per Per, with a burst of Rate (0: no bound).
	Rate int
	Per  time.Duration
}

// DNSChecker checks each query of a flow (Lifelong: every datagram is
// judged) against a DNSConfig. The query rate is per device, so it is not
// judged by Check (which sees bytes only) but by AdmitQuery.
type DNSChecker struct {
	cfg  DNSConfig
	rate *queryRate
}

var _ Checker = (*DNSChecker)(nil)

// NewDNS returns a checker for cfg.
func NewDNS(cfg DNSConfig) *DNSChecker {
	c := &DNSChecker{cfg: cfg}
	if cfg.Rate > 0 && cfg.Per > 0 {
		c.rate = newQueryRate(cfg.Rate, cfg.Per)
	}
	return c
}

// Proto returns DNS.
func (*DNSChecker) Proto() Proto { return DNS }

// Stream returns false: one query per datagram.
func (*DNSChecker) Stream() bool { return false }

// Lifelong returns true: every query of a flow is judged, not just the
// first (a resolver library sends many on one socket).
func (*DNSChecker) Lifelong() bool { return true }

// Check judges one datagram from the client: it must be one standard query
// whose name is allowed, short enough and not too random. Code is the
// query type. Name is nil: the name as written is not in data (labels are
// length-prefixed on the wire), and Check keeps nothing of its own.
func (c *DNSChecker) Check(data []byte) Verdict {
	var m DNSMessage
	if err := m.Parse(data); err != nil {
		return mismatch("not a DNS query")
	}
	if m.Header.Response() {
		return mismatch("a DNS response from the client")
	}
	code := int(m.QType)
	deny := func(reason string) Verdict { return Verdict{Outcome: Deny, Reason: reason, Code: code} }
	if m.Header.Opcode() != 0 {
		return deny("not a standard DNS query")
	}
	name := m.Question.Bytes()
	if c.cfg.MaxName > 0 && len(name) > c.cfg.MaxName {
		return deny("query name too long")
	}
	if c.cfg.MaxEntropy > 0 && NameEntropy(name) > c.cfg.MaxEntropy {
		return deny("query name too random (label entropy)")
	}
	if c.cfg.Names != nil && !c.cfg.Names.Match(name) {
		return deny("query name not allowed")
	}
	return Verdict{Outcome: Pass, Code: code}
}

// AdmitQuery counts one query of device (any stable key: its policy index
// and address) at now (unix nanoseconds) and reports whether it is within
// the rule's rate. Without a rate every query is admitted.
func (c *DNSChecker) AdmitQuery(device DeviceKey, now int64) bool {
	if c.rate == nil {
		return true
	}
	return c.rate.admit(device, now)
}

// NameEntropy is the Shannon entropy of a name's characters, dots left
// out, in bits per character.
func NameEntropy(name []byte) float64 {
	var counts [256]uint16
	n := 0
	for _, ch := range name {
		if ch != '.' {
			counts[ch]++
			n++
		}
	}
	if n == 0 {
		return 0
	}
	h := 0.0
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h
}

// DeviceKey names a device to a per-device bound: its index in the
// policy's devices (-1 when the policy does not know it) and its address.
type DeviceKey struct {
	Device int32
	Addr   netip.Addr
}

// maxRateDevices bounds the devices a rule's query rate follows. Past it
// one entry is forgotten for each new device: a forgotten device starts
// with a full bucket, so the bound can only let queries through, never
// refuse a device for another's.
const maxRateDevices = 4096

// queryRate is a token bucket per device.
type queryRate struct {
	burst    float64
	perToken float64 // nanoseconds per token
	mu       sync.Mutex
	buckets  map[DeviceKey]*bucket
}

type bucket struct {
	tokens float64
	last   int64
}

func newQueryRate(n int, per time.Duration) *queryRate {
	return &queryRate{burst: float64(n), perToken: float64(per) / float64(n), buckets: map[DeviceKey]*bucket{}}
}

func (q *queryRate) admit(k DeviceKey, now int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.buckets[k]
	if b == nil {
		if len(q.buckets) >= maxRateDevices {
			for old := range q.buckets {
				delete(q.buckets, old)
				break
			}
		}
		b = &bucket{tokens: q.burst, last: now}
		q.buckets[k] = b
	}
	if now > b.last {
		b.tokens = min(q.burst, b.tokens+float64(now-b.last)/q.perToken)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
