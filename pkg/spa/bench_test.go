package spa

import (
	"net/netip"
	"testing"

	"github.com/picoseg/picoseg/internal/spatest"
)

// BenchmarkGate is the decoder and gate alone: a fresh valid message per
// op (HMAC, decryption, fields, replay cache), and junk refused at the
// HMAC.
func BenchmarkGate(b *testing.B) {
	k := readKeys(b, "keys.txt", "lab")
	src := netip.MustParseAddr("10.0.0.2")
	b.Run("valid", func(b *testing.B) {
		pkts := make([][]byte, b.N)
		for i := range pkts {
			pkts[i] = spatest.Encode(spatest.Message{User: "alice", Timestamp: fixtureTime, Access: "10.0.0.2,tcp/22"}, k.Cipher, k.HMAC)
		}
		c, _ := OpenReplayCache("", b.N+1, 0)
		g := NewGate(c, nil)
		var m Message
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := g.Check(src, pkts[i], []*Key{k}, at(fixtureTime), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bad-hmac", func(b *testing.B) {
		junk := spatest.Encode(spatest.Message{User: "alice", Timestamp: fixtureTime, Access: "10.0.0.2,tcp/22"}, k.Cipher, k.Cipher)
		g := NewGate(nil, NewLimiter(LimiterOptions{Interval: 1, Burst: 1 << 30, GlobalInterval: 1, GlobalBurst: 1 << 30}))
		var m Message
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := g.Check(src, junk, []*Key{k}, at(fixtureTime), &m); err == nil {
				b.Fatal("junk passed")
			}
		}
	})
}
