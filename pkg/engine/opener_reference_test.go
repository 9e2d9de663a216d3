package engine

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// allows reports whether the naive reader lets src open a flow to dst on
// proto and port.
func (n naive) allows(src, dst netip.Addr, proto uint8, port uint16) bool {
	p := &packet.Packet{Src: src, Dst: dst, Proto: proto, DstPort: port}
	layer, rule := n.judge(p)
	switch layer {
	case LayerPico:
		return true
	case LayerSegment:
		for _, s := range n.cfg.Segments {
			if s.From+"->"+s.To == rule {
				return s.Action == config.SegmentAllow
			}
		}
	}
	return false
}

// tuple is one pair of endpoints the random packets go back and forth on.
type tuple struct {
	a, b         netip.Addr
	aPort, bPort uint16
}

// randomTraffic returns a packet on one of the tuples, in either direction:
// TCP with any handshake or teardown flags (so that flows are picked up
// mid-stream, reset, reopened), UDP, ICMP queries and replies with a few
// identifiers, and ICMP errors quoting any of the tuples.
func randomTraffic(r *rand.Rand, tuples []tuple) *packet.Packet {
	tu := tuples[r.IntN(len(tuples))]
	p := &packet.Packet{Kind: packet.KindOK, Src: tu.a, Dst: tu.b, SrcPort: tu.aPort, DstPort: tu.bPort, Length: 60}
	if r.IntN(2) == 0 {
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
	switch r.IntN(5) {
	case 0, 1:
		p.Proto = packet.ProtoTCP
		flags := []uint8{packet.TCPSyn, packet.TCPSyn | packet.TCPAck, packet.TCPAck, packet.TCPRst, packet.TCPFin | packet.TCPAck, packet.TCPRst | packet.TCPAck}
		p.TCPFlags = flags[r.IntN(len(flags))]
	case 2:
		p.Proto = packet.ProtoUDP
	case 3:
		p.Proto, p.SrcPort, p.DstPort = packet.ProtoICMP, 0, 0
		p.ICMPType = []uint8{8, 0, 13, 14}[r.IntN(4)]
		p.ICMPID = uint16(1 + r.IntN(2))
	default:
		// An error about a packet of another (or the same) tuple, sent
		// by either end of this one to the quoted packet's sender.
		q := randomTraffic(r, tuples)
		for q.Proto == packet.ProtoICMP && q.ICMPType == 3 {
			q = randomTraffic(r, tuples)
		}
		p.Proto, p.SrcPort, p.DstPort, p.ICMPType = packet.ProtoICMP, 0, 0, 3
		p.Dst = q.Src
		p.Quoted = packet.Quote{Valid: true, Src: q.Src, Dst: q.Dst, Proto: q.Proto, SrcPort: q.SrcPort, DstPort: q.DstPort, ICMPType: q.ICMPType, ICMPID: q.ICMPID}
	}
	return p
}

// openedBy says which direction a packet speaks for, in the naive reading:
// a SYN without ACK and an ICMP request open a flow from their sender; an
// ICMP reply belongs to the request it answers, the other way. Other
// packets continue a flow of either direction.
func openedBy(p *packet.Packet) (forward, reverse bool) {
	switch {
	case p.Proto == packet.ProtoTCP && p.TCPFlags&(packet.TCPSyn|packet.TCPAck) == packet.TCPSyn:
		return true, false
	case p.Proto == packet.ProtoICMP && (p.ICMPType == 8 || p.ICMPType == 13):
		return true, false
	case p.Proto == packet.ProtoICMP && (p.ICMPType == 0 || p.ICMPType == 14):
		return false, true
	}
	return true, true
}

// naiveMayPass reports whether the naive reader lets p pass in some flow
// whose opening direction it allows.
func naiveMayPass(ref naive, p *packet.Packet) bool {
	src, dst, proto, sport, dport := p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort
	if p.Proto == packet.ProtoICMP && p.ICMPType == 3 {
		// An error speaks for the flow it quotes.
		q := &p.Quoted
		src, dst, proto, sport, dport = q.Src, q.Dst, q.Proto, q.SrcPort, q.DstPort
		fwd := ref.allows(src, dst, proto, dport)
		if proto == packet.ProtoICMP {
			// The quoted query's own direction decides (a quoted reply's
			// request went the other way).
			if f, _ := openedBy(&packet.Packet{Proto: proto, ICMPType: q.ICMPType}); !f {
				return ref.allows(dst, src, proto, 0)
			}
			return fwd
		}
		return fwd || ref.allows(dst, src, proto, sport)
	}
	forward, reverse := openedBy(p)
	return forward && ref.allows(src, dst, proto, dport) || reverse && ref.allows(dst, src, proto, sport)
}

// The flow cache never lets a packet through whose opening direction the
// naive reader denies: random packets, in random order and direction, on
// a few shared tuples, over random policies, with reloads in between.
func TestFlowCacheNeverOpensWhatTheReferenceDenies(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	now := monday10.UnixNano()
	checked, accepted := 0, 0
	for round := 0; round < 300; round++ {
		cfg := randomPolicy(r, 12, 1+r.IntN(20))
		pol, err := policy.Compile(cfg, policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ref := naive{cfg}
		e := New(pol, Options{FlowCapacity: 64})
		w := e.NewWorker()
		var tuples []tuple
		for i := 0; i < 3; i++ {
			tuples = append(tuples, tuple{a: randAddr(r), b: randAddr(r), aPort: uint16(40000 + r.IntN(2)), bPort: uint16(r.IntN(50))})
		}
		var trail []string
		for i := 0; i < 200; i++ {
			now += 1e6
			if r.IntN(50) == 0 {
				e.Swap(pol, now) // every flow is judged again
				trail = append(trail, "reload")
			}
			p := randomTraffic(r, tuples)
			d := w.Judge(p, now, NoMeta)
			trail = append(trail, fmt.Sprintf("%s: %s %s", describe(p), d.Verdict, d.Reason))
			checked++
			if d.Verdict == Drop {
				continue
			}
			accepted++
			if !naiveMayPass(ref, p) {
				for _, s := range cfg.Segments {
					t.Logf("segment %s -> %s %s", s.From, s.To, s.Action)
				}
				for _, a := range cfg.Allows {
					t.Logf("allow %s: %+v -> %+v %+v", a.Name, a.From, a.To, a.Services)
				}
				for _, s := range trail {
					t.Log(s)
				}
				t.Fatalf("round %d: the engine accepted %s, whose opening direction the reference denies", round, describe(p))
			}
		}
	}
	t.Logf("%d packets, %d accepted, none against the reference", checked, accepted)
}

func describe(p *packet.Packet) string {
	s := fmt.Sprintf("%s %s:%d -> %s:%d", packet.ProtoName(p.Proto), p.Src, p.SrcPort, p.Dst, p.DstPort)
	switch p.Proto {
	case packet.ProtoTCP:
		s += fmt.Sprintf(" flags=%#x", p.TCPFlags)
	case packet.ProtoICMP:
		s += fmt.Sprintf(" type=%d id=%d", p.ICMPType, p.ICMPID)
		if p.Quoted.Valid {
			q := p.Quoted
			s += fmt.Sprintf(" quoting %s %s:%d -> %s:%d type=%d id=%d", packet.ProtoName(q.Proto), q.Src, q.SrcPort, q.Dst, q.DstPort, q.ICMPType, q.ICMPID)
		}
	}
	return s
}
