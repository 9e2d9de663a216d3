package engine

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/spatest"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/spa"
)

// benchKeys are the fixture keys of spaPolicySrc.
func benchKeys(testing.TB) (key, hmacKey []byte) {
	key, _ = base64.StdEncoding.DecodeString("/9ZO13HPywMwLbScll29vqAML6vJe6ta6FzRYWpHsbI=")
	hmacKey, _ = base64.StdEncoding.DecodeString("UfVBk7Lvib+3aRGodWxnn0Q1kiccG+5sPXg1rtbfyfsI/07JFi+LRow9sadtz/6N5U8MIK7D4RbJxo22hgG4GA==")
	return key, hmacKey
}

// spaBenchRig is an engine under the SPA test policy whose limiter never
// holds a source back (unless limited), and whose replay cache holds n.
func spaBenchRig(b *testing.B, n int, limited bool) (*Worker, Meta) {
	pol := compile(b, spaPolicySrc(`"group:admins"`))
	replay, _ := spa.OpenReplayCache("", n+1, 0)
	lim := spa.NewLimiter(spa.LimiterOptions{Interval: 1, Burst: 1 << 30, GlobalInterval: 1, GlobalBurst: 1 << 30})
	if limited {
		lim = spa.NewLimiter(spa.DefaultLimiterOptions)
	}
	e := New(pol, Options{SPA: SPAOptions{Replay: replay, Limiter: lim}})
	return e.NewWorker(), meta(pol, "lan0", "gateway")
}

func knockPacket(payload []byte) ([]byte, *packet.Packet) {
	ip := udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, payload)
	p := new(packet.Packet)
	packet.NewDecoder().DecodeIP(ip, p)
	return ip, p
}

func benchKnocks(b *testing.B, w *Worker, m Meta, ips [][]byte, pkts []*packet.Packet, want Reason) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	now := int64(spaFixtureTime) * int64(time.Second)
	for i := 0; i < b.N; i++ {
		j := i % len(ips)
		m.IP = ips[j]
		if d := w.Judge(pkts[j], now, m); d.Reason != want {
			b.Fatalf("knock %d: %q, want %q", i, d.Reason, want)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSPAKnock is the CPU cost of one SPA packet: refused for its
// HMAC (junk, or a wrong key), refused undecoded (a source over its
// budget of failures), refused as a replay (HMAC and decryption done), and
// granted (fresh message, replay cache and grant table written).
func BenchmarkSPAKnock(b *testing.B) {
	key, hmacKey := benchKeys(b)
	b.Run("rejected-bad-hmac", func(b *testing.B) {
		w, m := spaBenchRig(b, 0, false)
		junk := spatest.Encode(spatest.Message{User: "x", Timestamp: spaFixtureTime, Access: "10.0.0.2,tcp/22"}, key, key)
		ip, p := knockPacket(junk)
		benchKnocks(b, w, m, [][]byte{ip}, []*packet.Packet{p}, ReasonSPABadHMAC)
	})
	b.Run("rejected-rate-limited", func(b *testing.B) {
		w, m := spaBenchRig(b, 0, true)
		ip, p := knockPacket(spatest.Encode(spatest.Message{User: "x", Timestamp: spaFixtureTime, Access: "10.0.0.2,tcp/22"}, key, key))
		now := int64(spaFixtureTime) * int64(time.Second)
		m.IP = ip
		for w.Judge(p, now, m).Reason != ReasonSPARateLimited {
		}
		benchKnocks(b, w, m, [][]byte{ip}, []*packet.Packet{p}, ReasonSPARateLimited)
	})
	b.Run("rejected-replay", func(b *testing.B) {
		w, m := spaBenchRig(b, 1, false)
		ip, p := knockPacket(spatest.Encode(spatest.Message{User: "alice", Timestamp: spaFixtureTime, Access: "10.0.0.2,tcp/22"}, key, hmacKey))
		m.IP = ip
		w.Judge(p, int64(spaFixtureTime)*int64(time.Second), m)
		benchKnocks(b, w, m, [][]byte{ip}, []*packet.Packet{p}, ReasonSPAReplay)
	})
	b.Run("granted", func(b *testing.B) {
		w, m := spaBenchRig(b, b.N, false)
		ips, pkts := make([][]byte, b.N), make([]*packet.Packet, b.N)
		for i := range ips {
			ips[i], pkts[i] = knockPacket(spatest.Encode(spatest.Message{User: "alice", Timestamp: spaFixtureTime, Access: "10.0.0.2,tcp/22"}, key, hmacKey))
		}
		benchKnocks(b, w, m, ips, pkts, ReasonSPAGranted)
	})
}

// BenchmarkSPAJunkWhileJudging measures how many junk SPA packets one
// queue absorbs while another judges new flows: each op is one junk
// knock on the first worker, and the flows the second judged meanwhile
// are reported per second.
func BenchmarkSPAJunkWhileJudging(b *testing.B) {
	key, _ := benchKeys(b)
	for _, limited := range []bool{false, true} {
		name := "every-junk-packet-hmac-checked"
		if limited {
			name = "default-limiter"
		}
		b.Run(name, func(b *testing.B) {
			w, m := spaBenchRig(b, 0, limited)
			ip, p := knockPacket(spatest.Encode(spatest.Message{User: "x", Timestamp: spaFixtureTime, Access: "10.0.0.2,tcp/22"}, key, key))
			m.IP = ip
			other := w.e.NewWorker()
			syn := gwPacket(b, "tcp", "10.0.0.9", "10.0.0.1", 53, "")
			syn.Proto, syn.TCPFlags = packet.ProtoUDP, 0
			om := meta(w.e.Policy(), "lan0", "gateway")
			stop, flows := make(chan struct{}), make(chan int)
			go func() {
				n := 0
				for ; ; n++ {
					select {
					case <-stop:
						flows <- n
						return
					default:
					}
					syn.SrcPort = uint16(n)
					other.Judge(syn, int64(spaFixtureTime)*int64(time.Second)+int64(n), om)
				}
			}()
			b.ResetTimer()
			start := time.Now()
			now := int64(spaFixtureTime) * int64(time.Second)
			for i := 0; i < b.N; i++ {
				w.Judge(p, now+int64(i), m)
			}
			elapsed := time.Since(start)
			close(stop)
			n := <-flows
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "junk/s")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "flows/s")
		})
	}
}
