package engine

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const dnsPolicy = `
[gateway]
addresses = ["10.77.0.1"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"

[[device]]
name = "plug"
ip = ["10.77.0.5"]

[[device]]
name = "hue"
ip = ["10.77.0.6"]

[[allow]]
name = "plug-cloud"
from = "device:plug"
to = "dns:*.tplinkcloud.com"
services = ["tcp/443"]

[[allow]]
name = "hue-cloud"
from = "device:hue"
to = "dns:*.tplinkcloud.com"
services = ["tcp/443"]

[[allow]]
name = "public-dns"
from = "zone:iot"
to = "net:8.8.8.8/32"
services = ["udp/53"]
`

// dnsMsg builds a query for name, or with addrs an answer to it (TTL ttl).
func dnsMsg(t testing.TB, id uint16, name string, ttl uint32, answer bool, addrs ...string) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: answer, RecursionDesired: true})
	b.EnableCompression()
	_ = b.StartQuestions()
	qn := dnsmessage.MustNewName(name + ".")
	_ = b.Question(dnsmessage.Question{Name: qn, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	_ = b.StartAnswers()
	for _, a := range addrs {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: qn, Class: dnsmessage.ClassINET, TTL: ttl}, dnsmessage.AResource{A: netip.MustParseAddr(a).As4()})
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// dnsTest is an engine under dnsPolicy with a clock.
type dnsTest struct {
	t          *testing.T
	e          *Engine
	w          *Worker
	now        time.Time
	lastForged Verdict
}

func newDNSTest(t *testing.T) *dnsTest {
	e := New(compile(t, dnsPolicy), Options{})
	return &dnsTest{t: t, e: e, w: e.NewWorker(), now: monday10}
}

func (d *dnsTest) send(spec string, payload []byte) Decision {
	d.t.Helper()
	p := pkt(d.t, spec)
	p.Payload = payload
	return d.w.Judge(p, d.now.UnixNano(), NoMeta)
}

// resolve has src ask resolver (ADDR:53) for name from port and get addrs.
func (d *dnsTest) resolve(src, resolver string, port string, id uint16, name string, ttl uint32, addrs ...string) {
	d.t.Helper()
	if v := d.send("udp "+src+":"+port+" -> "+resolver+":53", dnsMsg(d.t, id, name, 0, false)); v.Verdict != Accept {
		d.t.Fatalf("query refused: %+v", v)
	}
	if v := d.send("udp "+resolver+":53 -> "+src+":"+port, dnsMsg(d.t, id, name, ttl, true, addrs...)); v.Verdict != Accept {
		d.t.Fatalf("answer refused: %+v (%v)", v, v.Reason)
	}
}

func (d *dnsTest) connect(src string, sport int, dst string) Verdict {
	d.t.Helper()
	return d.send("tcp "+src+":"+strconv.Itoa(sport)+" -> "+dst+":443", nil).Verdict
}

func TestDNSNameOpensOnlyTheAnsweredAddress(t *testing.T) {
	d := newDNSTest(t)
	// Control: before any answer, the cloud is closed.
	if v := d.connect("10.77.0.5", 50000, "52.49.65.150"); v != Drop {
		t.Fatalf("before the answer: %v", v)
	}
	d.resolve("10.77.0.5", "10.77.0.1", "40000", 7, "devs.tplinkcloud.com", 30, "52.49.65.150", "52.49.107.41")
	for _, dst := range []string{"52.49.65.150", "52.49.107.41"} {
		if v := d.connect("10.77.0.5", 50001, dst); v != Accept {
			t.Errorf("to %s, given by the answer: %v", dst, v)
		}
	}
	if v := d.connect("10.77.0.5", 50002, "52.49.65.151"); v != Drop {
		t.Errorf("to an address no answer gave: %v", v)
	}
}

func TestDNSPoisoning(t *testing.T) {
	for _, tc := range []struct {
		name string
		// attack runs before the plug connects to 52.1.1.1.
		attack func(d *dnsTest)
		// answerDropped: the attack's answer itself is dropped.
		answerDropped bool
	}{
		{"another device's answer", func(d *dnsTest) {
			d.resolve("10.77.0.6", "10.77.0.1", "40000", 7, "devs.tplinkcloud.com", 300, "52.1.1.1")
		}, false},
		{"an answer to no query", func(d *dnsTest) {
			d.forged("udp 10.77.0.1:53 -> 10.77.0.5:40000", 7, "devs.tplinkcloud.com")
		}, true},
		{"an answer with another identifier", func(d *dnsTest) {
			d.send("udp 10.77.0.5:40000 -> 10.77.0.1:53", dnsMsg(d.t, 7, "devs.tplinkcloud.com", 0, false))
			d.forged("udp 10.77.0.1:53 -> 10.77.0.5:40000", 8, "devs.tplinkcloud.com")
		}, true},
		{"an answer from another resolver than asked", func(d *dnsTest) {
			d.send("udp 10.77.0.5:40000 -> 10.77.0.1:53", dnsMsg(d.t, 7, "devs.tplinkcloud.com", 0, false))
			// The plug's query to 8.8.8.8 is a flow of its own: the
			// resolver answering must be the one asked on that port.
			d.send("udp 10.77.0.5:40001 -> 8.8.8.8:53", dnsMsg(d.t, 9, "other.example", 0, false))
			d.forged("udp 8.8.8.8:53 -> 10.77.0.5:40001", 7, "devs.tplinkcloud.com")
		}, true},
		{"an answer for another name than asked", func(d *dnsTest) {
			d.send("udp 10.77.0.5:40000 -> 10.77.0.1:53", dnsMsg(d.t, 7, "time.example", 0, false))
			d.forged("udp 10.77.0.1:53 -> 10.77.0.5:40000", 7, "devs.tplinkcloud.com")
		}, true},
		{"a second answer to one query", func(d *dnsTest) {
			d.resolve("10.77.0.5", "10.77.0.1", "40000", 7, "devs.tplinkcloud.com", 300, "52.2.2.2")
			d.forged("udp 10.77.0.1:53 -> 10.77.0.5:40000", 7, "devs.tplinkcloud.com")
		}, true},
		{"an answer pointing the name at a LAN host", func(d *dnsTest) {
			d.resolve("10.77.0.5", "10.77.0.1", "40000", 7, "devs.tplinkcloud.com", 300, "10.77.0.6")
			if v := d.connect("10.77.0.5", 50009, "10.77.0.6"); v != Drop {
				d.t.Errorf("rebinding to a LAN host: %v", v)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDNSTest(t)
			d.lastForged = Accept
			tc.attack(d)
			if tc.answerDropped && d.lastForged != Drop {
				t.Errorf("forged answer: %v, want drop", d.lastForged)
			}
			if v := d.connect("10.77.0.5", 50000, "52.1.1.1"); v != Drop {
				t.Errorf("plug to the forged address: %v", v)
			}
		})
	}
}

func (d *dnsTest) forged(spec string, id uint16, name string) {
	d.t.Helper()
	v := d.send(spec, dnsMsg(d.t, id, name, 300, true, "52.1.1.1"))
	d.lastForged = v.Verdict
	if v.Verdict == Drop && !v.NewFlow && !v.PacketOnly {
		d.t.Errorf("a forged answer's drop reaches its flow: %+v", v)
	}
}

func TestDNSExpiry(t *testing.T) {
	d := newDNSTest(t)
	d.resolve("10.77.0.5", "10.77.0.1", "40000", 7, "devs.tplinkcloud.com", 30, "52.49.65.150")
	if v := d.connect("10.77.0.5", 50000, "52.49.65.150"); v != Accept {
		t.Fatalf("within the TTL: %v", v)
	}
	d.send("tcp 52.49.65.150:443 -> 10.77.0.5:50000 flags=SA", nil)
	// TTL 30s + the default grace of 60s; the flow carries data meanwhile.
	for i := 0; i < 8; i++ {
		d.now = d.now.Add(10 * time.Second)
		if v := d.send("tcp 10.77.0.5:50000 -> 52.49.65.150:443 flags=A", nil).Verdict; v != Accept {
			t.Fatalf("the running flow at %ds: %v", (i+1)*10, v)
		}
	}
	d.now = d.now.Add(9 * time.Second)
	if v := d.connect("10.77.0.5", 50001, "52.49.65.150"); v != Accept {
		t.Errorf("within TTL and grace: %v", v)
	}
	d.now = d.now.Add(2 * time.Second)
	if v := d.connect("10.77.0.5", 50002, "52.49.65.150"); v != Drop {
		t.Errorf("a new flow after TTL and grace: %v", v)
	}
	// The flow opened within the TTL lives on (it was kept busy).
	if v := d.send("tcp 10.77.0.5:50000 -> 52.49.65.150:443 flags=A", nil).Verdict; v != Accept {
		t.Errorf("the running flow after expiry: %v", v)
	}
	// A reload judges the running flow again: opened under a valid
	// answer, it lives on; a new flow is still refused.
	d.e.Swap(compile(t, dnsPolicy), d.now.UnixNano())
	if v := d.send("tcp 10.77.0.5:50000 -> 52.49.65.150:443 flags=A", nil); v.Verdict != Accept || v.Cached {
		t.Errorf("the running flow judged again after a reload: %+v", v)
	}
	if v := d.connect("10.77.0.5", 50004, "52.49.65.150"); v != Drop {
		t.Errorf("a new flow after TTL and grace, after a reload: %v", v)
	}
	// A fresh answer opens it again.
	d.resolve("10.77.0.5", "10.77.0.1", "40001", 8, "devs.tplinkcloud.com", 30, "52.49.65.150")
	if v := d.connect("10.77.0.5", 50003, "52.49.65.150"); v != Accept {
		t.Errorf("after a new answer: %v", v)
	}
}

// TestDNSUnsolicitedAnswerControl: the same forged answer on the tuple of
// a real query (another identifier) is dropped under a policy with dns:
// rules, and passes as the flow's reply under one without: the drop is
// the observer's.
func TestDNSUnsolicitedAnswerControl(t *testing.T) {
	noDNS := dnsPolicy[:strings.Index(dnsPolicy, "[[allow]]")] + dnsPolicy[strings.Index(dnsPolicy, "[[allow]]\nname = \"public-dns\""):]
	for _, tc := range []struct {
		name, policy string
		want         Verdict
	}{
		{"with dns: rules", dnsPolicy, Drop},
		{"without dns: rules (control)", noDNS, Accept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(compile(t, tc.policy), Options{}).NewWorker()
			q := pkt(t, "udp 10.77.0.5:40000 -> 8.8.8.8:53")
			q.Payload = dnsMsg(t, 7, "x.example", 0, false)
			if v := w.Judge(q, monday10.UnixNano(), NoMeta); v.Verdict != Accept {
				t.Fatalf("query: %+v", v)
			}
			a := pkt(t, "udp 8.8.8.8:53 -> 10.77.0.5:40000")
			a.Payload = dnsMsg(t, 8, "x.example", 30, true, "52.1.1.1")
			if v := w.Judge(a, monday10.UnixNano(), NoMeta); v.Verdict != tc.want {
				t.Errorf("answer with another identifier: %+v, want %v", v, tc.want)
			}
		})
	}
}

// TestDNSAnswerBeforeConnectAcrossWorkers: an answer judged on one queue's
// worker is in the table when its verdict returns, so the device's next
// flow, judged on another worker, finds it: the kernel delivers the answer
// only after the verdict.
func TestDNSAnswerBeforeConnectAcrossWorkers(t *testing.T) {
	e := New(compile(t, dnsPolicy), Options{})
	answers, flows := e.NewWorker(), e.NewWorker()
	now := monday10.UnixNano()
	given := make(chan netip.Addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range given {
			p := pkt(t, "tcp 10.77.0.5:50000 -> "+a.String()+":443")
			if d := flows.Judge(p, now, NoMeta); d.Verdict != Accept {
				t.Errorf("flow to %v right after its answer: %v %v", a, d.Verdict, d.Reason)
			}
		}
	}()
	for i := 0; i < 200; i++ {
		a := netip.AddrFrom4([4]byte{52, 50, byte(i >> 8), byte(i)})
		port := strconv.Itoa(40000 + i)
		q := pkt(t, "udp 10.77.0.5:"+port+" -> 10.77.0.1:53")
		q.Payload = dnsMsg(t, uint16(i), "devs.tplinkcloud.com", 0, false)
		answers.Judge(q, now, NoMeta)
		r := pkt(t, "udp 10.77.0.1:53 -> 10.77.0.5:"+port)
		r.Payload = dnsMsg(t, uint16(i), "devs.tplinkcloud.com", 300, true, a.String())
		if d := answers.Judge(r, now, NoMeta); d.Verdict != Accept {
			t.Fatalf("answer %d: %v", i, d.Reason)
		}
		given <- a
	}
	close(given)
	<-done
}
