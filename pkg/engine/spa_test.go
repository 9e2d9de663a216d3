package engine

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/spatest"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/spa"
)

// spaFixtureTime is the timestamp of ../spa/testdata/access.spa, written by
// fwknop-client 2.6.10 for 10.0.0.2, tcp/22, with the keys below.
const spaFixtureTime = 1796130993

func spaPolicySrc(keyFrom string) string {
	return `[gateway]
addresses = ["10.0.0.1"]

[[zone]]
name = "lan"
interfaces = ["lan0"]
networks = ["10.0.0.0/24"]

[[group]]
name = "admins"

[[device]]
name = "laptop"
ip = ["10.0.0.2"]
groups = ["admins"]

[[device]]
name = "phone"
ip = ["10.0.0.3"]
groups = ["admins"]

[[device]]
name = "hub"
ip = ["10.0.0.9"]

[[segment]]
from = "lan"
to = "gateway"
action = "micro"

[[segment]]
from = "lan"
to = "lan"
action = "micro"

[[spa_key]]
name = "lab"
key_base64 = "/9ZO13HPywMwLbScll29vqAML6vJe6ta6FzRYWpHsbI="
hmac_key_base64 = "UfVBk7Lvib+3aRGodWxnn0Q1kiccG+5sPXg1rtbfyfsI/07JFi+LRow9sadtz/6N5U8MIK7D4RbJxo22hgG4GA=="
from = [` + keyFrom + `]

[[allow]]
name = "gateway-ssh"
from = "group:admins"
to = "gateway"
services = ["tcp/22"]
auth = "spa"
spa_keys = ["lab"]

[[allow]]
name = "hub-admin"
from = "group:admins"
to = "device:hub"
services = ["tcp/22", "tcp/8443"]
auth = "spa"
spa_keys = ["lab"]
spa_window = "10s"
`
}

// spaFixture reads a packet fwknop wrote.
func spaFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../spa/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(data)))
}

// udp4 is an IPv4 UDP datagram from src:sport to dst:dport.
func udp4(src, dst string, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0], b[8], b[9] = 0x45, 64, packet.ProtoUDP
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

type spaRig struct {
	t      *testing.T
	e      *Engine
	w      *Worker
	pol    *policy.Policy
	events []Event
}

func newSPARig(t *testing.T, keyFrom string) *spaRig {
	r := &spaRig{t: t, pol: compile(t, spaPolicySrc(keyFrom))}
	r.e = New(r.pol, Options{Sink: SinkFunc(func(e Event) { r.events = append(r.events, e) })})
	r.w = r.e.NewWorker()
	return r
}

// knock sends payload from src to the gateway's SPA port at sec.
func (r *spaRig) knock(src string, payload []byte, sec int64) Decision {
	ip := udp4(src, "10.0.0.1", 41000, spa.DefaultPort, payload)
	var p packet.Packet
	packet.NewDecoder().DecodeIP(ip, &p)
	m := meta(r.pol, "lan0", "gateway")
	m.IP = ip
	return r.w.Judge(&p, sec*int64(time.Second), m)
}

// syn opens a TCP connection from src:sport to dst:22 at sec.
func (r *spaRig) syn(src, dst string, sport uint16, sec int64) Decision {
	p := gwPacket(r.t, "tcp", src, dst, 22, "")
	p.SrcPort = sport
	out := "lan0"
	if dst == "10.0.0.1" {
		out = "gateway"
	}
	return r.w.Judge(p, sec*int64(time.Second), meta(r.pol, "lan0", out))
}

func (r *spaRig) lastEvent() Event {
	if len(r.events) == 0 {
		return Event{}
	}
	return r.events[len(r.events)-1]
}

func TestSPAOpensTheServiceForTheKnockerOnly(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now); d.Verdict != Drop || d.Reason != ReasonSPANoGrant {
		t.Fatalf("SYN before the knock: %v %q", d.Verdict, d.Reason)
	}
	d := r.knock("10.0.0.2", spaFixture(t, "access.spa"), now)
	if d.Verdict != Drop || !d.PacketOnly || d.Reason != ReasonSPAGranted || d.NewFlow || d.Cached {
		t.Fatalf("knock: %+v (%q)", d, d.Reason)
	}
	if ev := r.lastEvent(); ev.Type != EventSPAGranted || ev.Src != netip.MustParseAddr("10.0.0.2") || ev.Proto != packet.ProtoTCP || ev.DPort != 22 {
		t.Errorf("event %+v", ev)
	}
	// The SYN retransmitted from the port the knock found closed: the
	// drop cached for want of a grant must not outlive the grant.
	if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now+1); d.Verdict != Accept {
		t.Errorf("retransmitted SYN after the knock: %v %q", d.Verdict, d.Reason)
	}
	if d := r.syn("10.0.0.2", "10.0.0.9", 50001, now+1); d.Verdict != Accept {
		t.Errorf("SYN to the hub after the knock: %v %q", d.Verdict, d.Reason)
	}
	// Another device of the same group did not knock.
	if d := r.syn("10.0.0.3", "10.0.0.1", 50000, now+1); d.Verdict != Drop || d.Reason != ReasonSPANoGrant {
		t.Errorf("other device: %v %q", d.Verdict, d.Reason)
	}
	// The hub's rule has a 10 s window, the gateway's the default 30 s.
	if d := r.syn("10.0.0.2", "10.0.0.9", 50002, now+11); d.Verdict != Drop {
		t.Errorf("new connection to the hub after its window: %v", d.Verdict)
	}
	if d := r.syn("10.0.0.2", "10.0.0.1", 50003, now+29); d.Verdict != Accept {
		t.Errorf("new connection inside the 30 s window: %v %q", d.Verdict, d.Reason)
	}
	if d := r.syn("10.0.0.2", "10.0.0.1", 50004, now+30); d.Verdict != Drop || d.Reason != ReasonSPANoGrant {
		t.Errorf("new connection after the window: %v %q", d.Verdict, d.Reason)
	}
	if g := r.e.SPAGrants((now + 5) * int64(time.Second)); len(g) != 2 || g[0].Rule != "gateway-ssh" || g[0].User != "alice" || g[0].Key != "lab" {
		t.Errorf("grants %+v", g)
	}
}

func TestSPAConnectionLivesOnAfterWindowAndReload(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	r.knock("10.0.0.2", spaFixture(t, "access.spa"), now)
	if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now+1); d.Verdict != Accept {
		t.Fatalf("SYN in the window: %v", d.Verdict)
	}
	// Judged again after the window closed, the way a reload judges the
	// kernel's connections: it was opened in the window.
	q := Query{From: netip.MustParseAddr("10.0.0.2"), To: netip.MustParseAddr("10.0.0.1"), Proto: packet.ProtoTCP, DPort: 22,
		At: time.Unix(now+100, 0), InIface: "lan0", Existing: true}
	r.e.Swap(compile(t, spaPolicySrc(`"group:admins"`)), 0)
	if d := r.e.Judge(q); d.Verdict != Accept {
		t.Errorf("connection judged again after the window and a reload: %v %q", d.Verdict, d.Reason)
	}
	// A source that never knocked gets nothing from being judged again.
	q.From = netip.MustParseAddr("10.0.0.3")
	if d := r.e.Judge(q); d.Verdict != Drop {
		t.Errorf("never-granted source judged again: %v", d.Verdict)
	}
	// The grant itself survives the reload.
	r2 := r.syn("10.0.0.2", "10.0.0.1", 50009, now+2)
	if r2.Verdict != Accept {
		t.Errorf("new connection in the window after a reload: %v %q", r2.Verdict, r2.Reason)
	}
}

func TestSPARefusals(t *testing.T) {
	now := int64(spaFixtureTime)
	access := spaFixture(t, "access.spa")
	truncated := udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, access)
	for _, tc := range []struct {
		name    string
		keyFrom string
		src     string
		payload []byte
		at      int64
		ip      []byte
		want    Reason
	}{
		{"bad HMAC", `"group:admins"`, "10.0.0.2", spaFixture(t, "otherkey.spa"), now, nil, ReasonSPABadHMAC},
		{"wrong cipher key", `"group:admins"`, "10.0.0.2", spaFixture(t, "samehmac.spa"), now, nil, ReasonSPAMalformed},
		{"key not for this source", `"device:phone"`, "10.0.0.2", access, now, nil, ReasonSPAUnknownKey},
		{"address of another", `"any"`, "10.0.0.3", access, now, nil, ReasonSPANotAllowed},
		{"stale", `"group:admins"`, "10.0.0.2", spaFixture(t, "stale.spa"), now, nil, ReasonSPAStale},
		{"future", `"group:admins"`, "10.0.0.2", spaFixture(t, "future.spa"), now, nil, ReasonSPAStale},
		{"gateway clock ahead", `"group:admins"`, "10.0.0.2", access, now + 121, nil, ReasonSPAStale},
		{"random", `"group:admins"`, "10.0.0.2", []byte(strings.Repeat("QUJD", 60)), now, nil, ReasonSPABadHMAC},
		{"oversized", `"group:admins"`, "10.0.0.2", []byte(strings.Repeat("QUJD", 400)), now, nil, ReasonSPAMalformed},
		{"short", `"group:admins"`, "10.0.0.2", access[:100], now, nil, ReasonSPAMalformed},
		{"cut by the copy range", `"group:admins"`, "10.0.0.2", access, now, truncated[:len(truncated)-20], ReasonSPAMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSPARig(t, tc.keyFrom)
			ip := udp4(tc.src, "10.0.0.1", 41000, spa.DefaultPort, tc.payload)
			var p packet.Packet
			packet.NewDecoder().DecodeIP(ip, &p)
			m := meta(r.pol, "lan0", "gateway")
			m.IP = ip
			if tc.ip != nil {
				m.IP = tc.ip
			}
			d := r.w.Judge(&p, tc.at*int64(time.Second), m)
			if d.Verdict != Drop || !d.PacketOnly || d.Reason != tc.want {
				t.Errorf("knock: %v %q, want drop %q", d.Verdict, d.Reason, tc.want)
			}
			if ev := r.lastEvent(); ev.Type != EventSPARejected || ev.Reason != tc.want {
				t.Errorf("event %v %q", ev.Type, ev.Reason)
			}
			if d := r.syn(tc.src, "10.0.0.1", 50000, tc.at); d.Verdict != Drop {
				t.Errorf("refused knock opened the service: %v", d.Verdict)
			}
		})
	}
}

func TestSPAReplayOpensNothing(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	access := spaFixture(t, "access.spa")
	if d := r.knock("10.0.0.2", access, now); d.Reason != ReasonSPAGranted {
		t.Fatalf("first knock: %q", d.Reason)
	}
	// The same packet again after the window: refused, and the service
	// stays closed.
	if d := r.knock("10.0.0.2", access, now+40); d.Verdict != Drop || d.Reason != ReasonSPAReplay {
		t.Errorf("replay: %v %q", d.Verdict, d.Reason)
	}
	if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now+41); d.Verdict != Drop {
		t.Errorf("service open after a replay: %v", d.Verdict)
	}
}

func TestSPAFailuresAreRateLimited(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	junk := spaFixture(t, "otherkey.spa")
	var reasons []Reason
	for i := 0; i < 7; i++ {
		reasons = append(reasons, r.knock("10.0.0.2", junk, now).Reason)
	}
	if reasons[4] != ReasonSPABadHMAC || reasons[5] != ReasonSPARateLimited || reasons[6] != ReasonSPARateLimited {
		t.Errorf("reasons %v", reasons)
	}
	// Another source is judged as before.
	if d := r.knock("10.0.0.3", spaFixture(t, "access.spa"), now); d.Reason != ReasonSPANotAllowed {
		t.Errorf("other source: %q", d.Reason)
	}
	if s := r.e.SPAStats(); s.Limited.Load() != 2 || s.Rejected.Load() != 6 {
		t.Errorf("stats limited %d rejected %d", s.Limited.Load(), s.Rejected.Load())
	}
}

// In monitor mode a knock is still dropped: let through, it would meet a
// closed port whose ICMP answer shows the port to a scanner.
func TestSPAKnockDroppedInMonitorMode(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	r.pol.Mode = config.ModeMonitor
	if d := r.knock("10.0.0.2", spaFixture(t, "otherkey.spa"), spaFixtureTime); d.Verdict != Drop || d.WouldDrop {
		t.Errorf("monitor-mode knock: %+v", d)
	}
}

// A knock from an address of another zone is spoofing: no grant for it.
func TestSPASpoofedKnock(t *testing.T) {
	r := newSPARig(t, `"any"`)
	ip := udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, spaFixture(t, "access.spa"))
	var p packet.Packet
	packet.NewDecoder().DecodeIP(ip, &p)
	m := meta(r.pol, "", "gateway")
	m.InZone = 5 // an interface of another zone than 10.0.0.2's
	m.IP = ip
	r.pol.Zones = append(r.pol.Zones, make([]policy.Zone, 5)...)
	d := r.w.Judge(&p, spaFixtureTime*int64(time.Second), m)
	if d.Verdict != Drop || d.Layer != LayerIdentify {
		t.Errorf("spoofed knock: %v %v %q", d.Verdict, d.Layer, d.Reason)
	}
	if g := r.e.SPAGrants(spaFixtureTime * int64(time.Second)); len(g) != 0 {
		t.Errorf("spoofed knock granted %v", g)
	}
}

// Judging flows under a policy with SPA allocates nothing: neither other
// traffic to the gateway, nor an opening under a rule with auth.
func TestSPAJudgingAllocatesNothing(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	r.knock("10.0.0.2", spaFixture(t, "access.spa"), now)
	p := gwPacket(t, "tcp", "10.0.0.2", "10.0.0.1", 22, "")
	m := meta(r.pol, "lan0", "gateway")
	port := uint16(1000)
	allocs := testing.AllocsPerRun(500, func() {
		port++
		p.SrcPort = port
		if d := r.w.Judge(p, (now+1)*int64(time.Second), m); d.Verdict != Accept {
			t.Fatalf("verdict %v %q", d.Verdict, d.Reason)
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per granted opening", allocs)
	}
}

// Knocks the tests build: "0.0.0.0" (fwknop -s) stands for the packet's
// source; a service no rule with the key allows opens nothing; a client
// timeout shortens the window, never lengthens it.
func TestSPABuiltKnocks(t *testing.T) {
	key, hmacKey := benchKeys(nil)
	now := int64(spaFixtureTime)
	knock := func(access string, timeout int) []byte {
		return spatest.Encode(spatest.Message{User: "carol", Timestamp: now, Access: access, ClientTimeout: timeout}, key, hmacKey)
	}
	t.Run("source address", func(t *testing.T) {
		r := newSPARig(t, `"group:admins"`)
		if d := r.knock("10.0.0.2", knock("0.0.0.0,tcp/22", 0), now); d.Reason != ReasonSPAGranted {
			t.Fatalf("knock: %q", d.Reason)
		}
		if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now); d.Verdict != Accept {
			t.Errorf("SYN: %v %q", d.Verdict, d.Reason)
		}
	})
	t.Run("service no rule allows", func(t *testing.T) {
		r := newSPARig(t, `"group:admins"`)
		if d := r.knock("10.0.0.2", knock("10.0.0.2,tcp/23", 0), now); d.Reason != ReasonSPANotAllowed {
			t.Errorf("knock: %q", d.Reason)
		}
		if g := r.e.SPAGrants(now * int64(time.Second)); len(g) != 0 {
			t.Errorf("grants %v", g)
		}
	})
	t.Run("only what the rule allows", func(t *testing.T) {
		r := newSPARig(t, `"group:admins"`)
		if d := r.knock("10.0.0.2", knock("10.0.0.2,tcp/23,tcp/8443", 0), now); d.Reason != ReasonSPAGranted {
			t.Fatalf("knock: %q", d.Reason)
		}
		g := r.e.SPAGrants(now * int64(time.Second))
		if len(g) != 1 || g[0].Rule != "hub-admin" || g[0].Port != 8443 {
			t.Errorf("grants %+v, want hub-admin tcp/8443 alone", g)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		r := newSPARig(t, `"group:admins"`)
		r.knock("10.0.0.2", knock("10.0.0.2,tcp/22", 5), now)
		r.knock("10.0.0.3", knock("10.0.0.3,tcp/22", 3600), now)
		seen := 0
		for _, g := range r.e.SPAGrants(now * int64(time.Second)) {
			want := map[string]int64{"10.0.0.2": 5, "10.0.0.3": 30}[g.Src.String()]
			if g.Rule != "gateway-ssh" {
				continue
			}
			seen++
			if g.Until != (now+want)*int64(time.Second) {
				t.Errorf("%v: window ends %ds after the knock, want %d", g.Src, g.Until/int64(time.Second)-now, want)
			}
		}
		if seen != 2 {
			t.Errorf("%d gateway-ssh grants, want 2", seen)
		}
	})
}

// A knock is a knock whatever the policy allows on the SPA port: a rule
// opening udp/62201 to the gateway does not let SPA packets through to a
// socket (or to a port unreachable that shows the port to a scan), and a
// knock caches nothing: the next one from the same port is judged too.
func TestSPAPortIsNeverAllowedThrough(t *testing.T) {
	src := spaPolicySrc(`"group:admins"`) + `
[[allow]]
name = "anything-to-gateway"
from = "zone:lan"
to = "gateway"
services = ["udp"]
`
	r := &spaRig{t: t, pol: compile(t, src)}
	r.e = New(r.pol, Options{})
	r.w = r.e.NewWorker()
	now := int64(spaFixtureTime)
	junk := spaFixture(t, "otherkey.spa")
	for i := 0; i < 2; i++ {
		if d := r.knock("10.0.0.2", junk, now); d.Verdict != Drop || d.Reason != ReasonSPABadHMAC || d.Cached {
			t.Errorf("knock %d: %v %q cached=%v", i, d.Verdict, d.Reason, d.Cached)
		}
	}
	if r.e.Flows().Len() != 0 {
		t.Errorf("knocks left %d flows in the flow table", r.e.Flows().Len())
	}
	// Control: the rule does allow another UDP port to the gateway.
	p := gwPacket(t, "udp", "10.0.0.2", "10.0.0.1", 5000, "")
	if d := r.w.Judge(p, now*int64(time.Second), meta(r.pol, "lan0", "gateway")); d.Verdict != Accept {
		t.Errorf("control udp/5000: %v %q", d.Verdict, d.Reason)
	}
}

// A reload that takes the key off the rule revokes the grants it won,
// open window or not.
func TestSPAReloadRevokesKeyTakenOff(t *testing.T) {
	r := newSPARig(t, `"group:admins"`)
	now := int64(spaFixtureTime)
	if d := r.knock("10.0.0.2", spaFixture(t, "access.spa"), now); d.Reason != ReasonSPAGranted {
		t.Fatalf("knock: %q", d.Reason)
	}
	src := strings.Replace(spaPolicySrc(`"group:admins"`), `to = "gateway"
services = ["tcp/22"]
auth = "spa"
spa_keys = ["lab"]`, `to = "gateway"
services = ["tcp/22"]
auth = "spa"
spa_keys = ["other"]`, 1) + `
[[spa_key]]
name = "other"
key_base64 = "0b8H0kCZFcpNaZ/wigMaxxxkhYFLyYjTL/kOXZ3CLDw="
hmac_key_base64 = "bdGO4OMyC4By6mcTIaNR0UAlPu/4HmY41yOB2hFaIfbrRh8dv3ntefEa1SerGjqij/HpKEcHsrwJaZSjGUGb1A=="
from = ["any"]
`
	r.pol = compile(t, src)
	r.e.Swap(r.pol, 0)
	if d := r.syn("10.0.0.2", "10.0.0.1", 50000, now+1); d.Verdict != Drop || d.Reason != ReasonSPANoGrant {
		t.Errorf("SYN after the key was taken off the rule: %v %q", d.Verdict, d.Reason)
	}
	// The hub's rule still takes the key: its grant stands.
	if d := r.syn("10.0.0.2", "10.0.0.9", 50001, now+1); d.Verdict != Accept {
		t.Errorf("SYN to the hub: %v %q", d.Verdict, d.Reason)
	}
}

// FuzzSPAKnock sends arbitrary IP packets to the gateway as knocks under a
// policy with SPA: nothing panics, every one is dropped alone, and only a
// valid message for its source (never the fuzzer's, without the key)
// opens anything.
func FuzzSPAKnock(f *testing.F) {
	f.Add(udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, spaFixture(f, "access.spa")))
	f.Add(udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, spaFixture(f, "otherkey.spa")))
	f.Add(udp4("10.0.0.2", "10.0.0.1", 41000, spa.DefaultPort, nil))
	pol := compile(f, spaPolicySrc(`"any"`))
	f.Fuzz(func(t *testing.T, ip []byte) {
		e := New(pol, Options{FlowCapacity: 64, BudgetCapacity: 64})
		w := e.NewWorker()
		var p packet.Packet
		packet.NewDecoder().DecodeIP(ip, &p)
		m := meta(pol, "lan0", "gateway")
		m.IP = ip
		d := w.Judge(&p, spaFixtureTime*int64(time.Second), m)
		if p.Kind == packet.KindOK && p.Proto == packet.ProtoUDP && p.DstPort == spa.DefaultPort && (d.Verdict != Drop || !d.PacketOnly) {
			t.Errorf("knock %v %q, want dropped alone", d.Verdict, d.Reason)
		}
	})
}

// A valid knock the replay cache cannot keep is refused, and says why.
func TestSPAReplayCacheFull(t *testing.T) {
	pol := compile(t, spaPolicySrc(`"group:admins"`))
	replay, _ := spa.OpenReplayCache("", 1, 0)
	e := New(pol, Options{SPA: SPAOptions{Replay: replay}})
	r := &spaRig{t: t, pol: pol, e: e, w: e.NewWorker()}
	key, hmacKey := benchKeys(t)
	now := int64(spaFixtureTime)
	for i, want := range []Reason{ReasonSPAGranted, ReasonSPAReplayCache} {
		knock := spatest.Encode(spatest.Message{User: "carol", Timestamp: now, Access: "10.0.0.2,tcp/22"}, key, hmacKey)
		if d := r.knock("10.0.0.2", knock, now); d.Reason != want {
			t.Errorf("knock %d: %q, want %q", i, d.Reason, want)
		}
	}
}
