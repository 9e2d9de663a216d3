package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
)

const appPolicy = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"

[[allow]]
name = "web"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/80"]
app = "http"
[allow.http]
hosts = ["hue.example"]

[[allow]]
name = "cloud"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/443"]
app = "tls"
[allow.tls]
server_names = ["*.example.com"]

[[allow]]
name = "plc"
from = "zone:iot"
to = "zone:iot"
services = ["tcp/502"]
app = "modbus"
[allow.modbus]
read_only = true

[[allow]]
name = "plain"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/8080"]
`

// conv is one TCP connection's packets, built with real sequence numbers.
type conv struct {
	cli, srv       netip.AddrPort
	cliSeq, srvSeq uint32
}

func newConv(cli, srv string) *conv {
	return &conv{cli: netip.MustParseAddrPort(cli), srv: netip.MustParseAddrPort(srv), cliSeq: 1000, srvSeq: 50000}
}

func (c *conv) packet(fromClient bool, flags uint8, seq uint32, payload []byte) *packet.Packet {
	p := &packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP, TCPFlags: flags, Seq: seq, Payload: payload, PayloadLen: len(payload)}
	p.Length = uint16(40 + len(payload))
	if fromClient {
		p.Src, p.SrcPort, p.Dst, p.DstPort = c.cli.Addr(), c.cli.Port(), c.srv.Addr(), c.srv.Port()
	} else {
		p.Src, p.SrcPort, p.Dst, p.DstPort = c.srv.Addr(), c.srv.Port(), c.cli.Addr(), c.cli.Port()
	}
	return p
}

func (c *conv) syn() *packet.Packet { return c.packet(true, packet.TCPSyn, c.cliSeq, nil) }
func (c *conv) synAck() *packet.Packet {
	return c.packet(false, packet.TCPSyn|packet.TCPAck, c.srvSeq, nil)
}

// data is the client's next segment.
func (c *conv) data(b []byte) *packet.Packet {
	p := c.packet(true, packet.TCPAck, c.cliSeq+1, b)
	c.cliSeq += uint32(len(b))
	return p
}

// at is a client segment at an offset from the stream's start.
func (c *conv) at(off uint32, b []byte) *packet.Packet {
	return c.packet(true, packet.TCPAck, 1001+off, b)
}

func (c *conv) reply(b []byte) *packet.Packet {
	p := c.packet(false, packet.TCPAck, c.srvSeq+1, b)
	c.srvSeq += uint32(len(b))
	return p
}

type appRun struct {
	t      *testing.T
	w      *Worker
	events []Event
	now    int64
}

func newAppRun(t *testing.T, opts Options) *appRun {
	r := &appRun{t: t, now: monday10.UnixNano()}
	opts.Sink = SinkFunc(func(e Event) { r.events = append(r.events, e) })
	r.w = New(compile(t, appPolicy), opts).NewWorker()
	return r
}

func (r *appRun) judge(p *packet.Packet, want Verdict, reason Reason) Decision {
	r.t.Helper()
	r.now += 1e6
	d := r.w.Judge(p, r.now, NoMeta)
	if d.Verdict != want || reason != ReasonNone && d.Reason != reason {
		r.t.Fatalf("%v:%d -> %v:%d seq %d %q: %v (%v), want %v (%v)", p.Src, p.SrcPort, p.Dst, p.DstPort, p.Seq, p.Payload, d.Verdict, d.Reason, want, reason)
	}
	return d
}

func (r *appRun) lastEvent() Event {
	r.t.Helper()
	if len(r.events) == 0 {
		r.t.Fatal("no event")
	}
	return r.events[len(r.events)-1]
}

func handshake(r *appRun, c *conv) {
	r.judge(c.syn(), NeedMore, ReasonAppInspecting)
	r.judge(c.synAck(), NeedMore, ReasonNone)
}

func TestAppHTTPAllowedThenFastPath(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40000", "198.51.100.7:80")
	handshake(r, c)
	r.judge(c.data([]byte("GET / HTTP/1.1\r\nHo")), NeedMore, ReasonAppInspecting)
	r.judge(c.data([]byte("st: hue.example\r\n\r\n")), Accept, ReasonAppIdentified)
	d := r.judge(c.reply([]byte("HTTP/1.1 200 OK\r\n\r\n")), Accept, ReasonAppIdentified)
	if !d.Cached {
		t.Errorf("identified flow not cached")
	}
	key := flowKey(c)
	if proto, name, ok := r.w.e.AppOf(key); !ok || proto != appid.HTTP || name != "hue.example" {
		t.Errorf("AppOf = %v %q %v", proto, name, ok)
	}
}

func TestAppHTTPHostDenied(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40001", "198.51.100.7:80")
	handshake(r, c)
	r.judge(c.data([]byte("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n")), Drop, ReasonAppDenied)
	ev := r.lastEvent()
	if ev.Type != EventAppDenied || ev.App.Proto != appid.HTTP || ev.App.Name() != "evil.example" || ev.App.Detail != "host not allowed" || ev.Rule != "web" {
		t.Errorf("event %+v name %q", ev, ev.App.Name())
	}
	// The flow stays dropped.
	r.judge(c.data([]byte("more")), Drop, ReasonAppDenied)
}

func TestAppMismatchOnOpenPort(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40002", "198.51.100.7:443")
	handshake(r, c)
	r.judge(c.data([]byte("SSH-2.0-OpenSSH_9.2\r\n")), Drop, ReasonAppMismatch)
	if ev := r.lastEvent(); ev.Type != EventAppMismatch || ev.App.Proto != appid.TLS {
		t.Errorf("event %+v", ev)
	}
}

// A segment ahead of the bytes judged is dropped alone, and the stream is
// read in order once the gap is filled: the checker reads what the server
// reads.
func TestAppOutOfOrderAndRetransmission(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40003", "198.51.100.7:80")
	handshake(r, c)
	first, second := []byte("GET / HTTP/1.1\r\n"), []byte("Host: evil.example\r\n\r\n")
	d := r.judge(c.at(uint32(len(first)), second), Drop, ReasonAppOutOfOrder)
	if !d.PacketOnly {
		t.Errorf("out-of-order segment dropped with its flow")
	}
	r.judge(c.at(0, first), NeedMore, ReasonAppInspecting)
	// A retransmission that differs from what was judged is a mismatch.
	r.judge(c.at(0, []byte("GET / HTTP/1.0\r\n")), Drop, ReasonAppMismatch)
}

func TestAppRetransmissionSameBytes(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40004", "198.51.100.7:80")
	handshake(r, c)
	first := []byte("GET / HTTP/1.1\r\n")
	r.judge(c.at(0, first), NeedMore, ReasonAppInspecting)
	r.judge(c.at(0, first), NeedMore, ReasonAppInspecting)
	// Overlapping the old bytes and bringing new ones.
	r.judge(c.at(6, []byte("HTTP/1.1\r\nHost: hue.example\r\n\r\n")), Accept, ReasonAppIdentified)
}

func TestAppMidStreamIsUnidentified(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40005", "198.51.100.7:80")
	r.judge(c.data([]byte("GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n")), Drop, ReasonAppUnidentified)
}

func TestAppBudget(t *testing.T) {
	r := newAppRun(t, Options{AppPackets: 5})
	c := newConv("10.77.0.5:40006", "198.51.100.7:80")
	handshake(r, c)
	r.judge(c.data([]byte("GET / HTTP/1.1\r\n")), NeedMore, ReasonAppInspecting)
	r.judge(c.data([]byte("X: 1\r\n")), NeedMore, ReasonAppInspecting)
	r.judge(c.data([]byte("Y: 2\r\n")), Drop, ReasonAppUnidentified)
	if ev := r.lastEvent(); ev.Type != EventAppUnidentified {
		t.Errorf("event %v", ev.Type)
	}
}

func TestAppTLSClientHelloSplit(t *testing.T) {
	hello := tlsHello("api.example.com")
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40007", "198.51.100.7:443")
	handshake(r, c)
	r.judge(c.data(hello[:3]), NeedMore, ReasonAppInspecting)
	r.judge(c.data(hello[3:40]), NeedMore, ReasonAppInspecting)
	r.judge(c.data(hello[40:]), Accept, ReasonAppIdentified)

	c = newConv("10.77.0.5:40008", "198.51.100.7:443")
	handshake(r, c)
	r.judge(c.data(tlsHello("example.com")), Drop, ReasonAppDenied)
	if ev := r.lastEvent(); ev.App.Name() != "example.com" || ev.App.Detail != "server name not allowed" {
		t.Errorf("event name %q detail %q", ev.App.Name(), ev.App.Detail)
	}
}

// Every Modbus request is judged for the flow's life: reads pass, a write
// pipelined behind a read in one segment cuts the flow, and so does one
// split across segments; the event names the function code.
func TestAppModbusLifelong(t *testing.T) {
	read := mbap(1, 3, 0, 0, 0, 2)
	write := mbap(2, 6, 0, 1, 0, 7)
	for _, tc := range []struct {
		name     string
		segments [][]byte
	}{
		{"pipelined", [][]byte{append(append([]byte{}, read...), write...)}},
		{"split", [][]byte{append(append([]byte{}, read...), write[:5]...), write[5:]}},
		{"later", [][]byte{read, read, read, read, read, read, read, read, read, read, read, read, read, write}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAppRun(t, Options{AppPackets: 4})
			c := newConv("10.77.0.5:40100", "10.77.0.9:502")
			handshake(r, c)
			r.judge(c.data(read), NeedMore, ReasonAppIdentified)
			for i, s := range tc.segments {
				want, reason := NeedMore, ReasonAppIdentified
				if i == len(tc.segments)-1 {
					want, reason = Drop, ReasonAppDenied
				}
				r.judge(c.data(s), want, reason)
			}
			ev := r.lastEvent()
			if ev.Type != EventAppDenied || ev.App.Code != 6 || ev.App.Detail != "write function" || ev.App.Proto != appid.Modbus {
				t.Errorf("event %+v", ev)
			}
		})
	}
}

// A lifelong flow sent a read again with a write in its place (the read
// never reached the server: a bad checksum) is cut.
func TestAppModbusRetransmissionSwap(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40101", "10.77.0.9:502")
	handshake(r, c)
	r.judge(c.at(0, mbap(1, 3, 0, 0, 0, 2)), NeedMore, ReasonAppIdentified)
	r.judge(c.at(0, mbap(1, 6, 0, 0, 0, 2)), Drop, ReasonAppMismatch)
}

func TestAppInspectionAllocatesNothing(t *testing.T) {
	r := newAppRun(t, Options{})
	read := mbap(1, 3, 0, 0, 0, 2)
	c := newConv("10.77.0.5:40102", "10.77.0.9:502")
	handshake(r, c)
	r.judge(c.data(read), NeedMore, ReasonAppIdentified)
	p := c.data(read)
	n := testing.AllocsPerRun(200, func() {
		r.now++
		if d := r.w.Judge(p, r.now, NoMeta); d.Verdict != NeedMore {
			t.Fatalf("verdict %v %v", d.Verdict, d.Reason)
		}
		p.Seq += uint32(len(read))
	})
	if n != 0 {
		t.Errorf("a lifelong flow's packet allocates %v times", n)
	}
}

func mbap(tid uint16, fn byte, data ...byte) []byte {
	n := 2 + len(data)
	return append([]byte{byte(tid >> 8), byte(tid), 0, 0, byte(n >> 8), byte(n), 1, fn}, data...)
}

// tlsHello is a minimal ClientHello record asking for name.
func tlsHello(name string) []byte {
	sni := []byte{0, 0, 0, 0, 0, 0, 0}
	l := len(name)
	sni = append(sni[:0], 0, 0, byte((l+5)>>8), byte(l+5), byte((l+3)>>8), byte(l+3), 0, byte(l>>8), byte(l))
	sni = append(sni, name...)
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0, 0, 2, 0x13, 0x01, 1, 0, byte(len(sni)>>8), byte(len(sni)))
	body = append(body, sni...)
	msg := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

func flowKey(c *conv) flow.Key {
	k, _ := flow.KeyOf(c.syn())
	return k
}

// A lifelong flow picked up mid-stream (a daemon restart) is read from the
// first client segment seen, which must start a request; one that starts
// inside a request is refused.
func TestAppModbusMidStream(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40103", "10.77.0.9:502")
	r.judge(c.data(mbap(1, 3, 0, 0, 0, 2)), NeedMore, ReasonAppIdentified)
	r.judge(c.reply([]byte{0, 1, 0, 0, 0, 7, 1, 3, 4, 0, 0, 0, 0}), NeedMore, ReasonNone)
	r.judge(c.data(mbap(2, 5, 0, 0, 0xff, 0)), Drop, ReasonAppDenied)

	c = newConv("10.77.0.5:40104", "10.77.0.9:502")
	r.judge(c.data(mbap(1, 3, 0, 0, 0, 2)[3:]), Drop, ReasonAppMismatch)
}

// Flows under inspection are bounded: a flow whose slot was taken by newer
// ones is unidentified on its next packet, and never judged from bytes it
// did not have.
func TestAppInspectTableEvicts(t *testing.T) {
	r := newAppRun(t, Options{InspectFlows: 8})
	old := newConv("10.77.0.5:41000", "198.51.100.7:80")
	handshake(r, old)
	r.judge(old.data([]byte("GET / HTTP/1.1\r\n")), NeedMore, ReasonAppInspecting)
	for i := range 8 {
		c := newConv(netip.AddrPortFrom(netip.MustParseAddr("10.77.0.6"), uint16(42000+i)).String(), "198.51.100.7:80")
		handshake(r, c)
	}
	r.judge(old.data([]byte("Host: hue.example\r\n\r\n")), Drop, ReasonAppUnidentified)
}

// Data on a SYN and urgent data are bytes the server may read otherwise
// than the checker: the flow is refused.
func TestAppSYNDataAndUrgent(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40200", "198.51.100.7:80")
	syn := c.syn()
	syn.Payload = []byte("GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n")
	syn.PayloadLen = len(syn.Payload)
	r.judge(syn, Drop, ReasonAppMismatch)

	c = newConv("10.77.0.5:40201", "198.51.100.7:80")
	handshake(r, c)
	p := c.data([]byte("GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n"))
	p.TCPFlags |= 0x20
	r.judge(p, Drop, ReasonAppMismatch)
	if ev := r.lastEvent(); ev.App.Detail != "urgent data" {
		t.Errorf("detail %q", ev.App.Detail)
	}
}

// A reload judges flows again: an identified flow keeps its identity, a
// lifelong one goes on being read where it was.
func TestAppReload(t *testing.T) {
	r := newAppRun(t, Options{})
	c := newConv("10.77.0.5:40300", "198.51.100.7:443")
	handshake(r, c)
	r.judge(c.data(tlsHello("api.example.com")), Accept, ReasonAppIdentified)
	m := newConv("10.77.0.5:40301", "10.77.0.9:502")
	handshake(r, m)
	r.judge(m.data(mbap(1, 3, 0, 0, 0, 2)), NeedMore, ReasonAppIdentified)

	r.w.e.Swap(compile(t, appPolicy), r.now)
	r.judge(c.data([]byte("application data")), Accept, ReasonAppIdentified)
	r.judge(m.data(mbap(2, 3, 0, 0, 0, 2)), NeedMore, ReasonAppIdentified)
	r.judge(m.data(mbap(3, 16, 0, 0, 0, 1, 2, 0, 0)), Drop, ReasonAppDenied)
}

// unidentified = "allow" never lets a flow whose every message must be
// checked onto the fast path: a Modbus flow pushed out of inspection by
// newer flows would otherwise carry writes unread. A rule that decides
// once (HTTP) takes the choice as written.
func TestAppUnidentifiedAllowNeverFastPathsLifelong(t *testing.T) {
	pol := strings.Replace(appPolicy, "[allow.modbus]\nread_only = true\n", "unidentified = \"allow\"\n[allow.modbus]\nread_only = true\n", 1)
	pol = strings.Replace(pol, "[allow.http]\nhosts", "unidentified = \"allow\"\n[allow.http]\nhosts", 1)
	if strings.Count(pol, "unidentified") != 2 {
		t.Fatal("the test policy changed: no Modbus or HTTP rule to edit")
	}
	for _, tc := range []struct {
		name       string
		cli, srv   string
		first, out []byte
		want       Verdict
	}{
		{"modbus", "10.77.0.5:41100", "10.77.0.9:502", mbap(1, 3, 0, 0, 0, 2), mbap(2, 6, 0, 1, 0, 7), Drop},
		{"http", "10.77.0.5:41101", "198.51.100.7:80", []byte("GET / HTTP/1.1\r\n"), []byte("Host: other.example\r\n\r\n"), Accept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &appRun{t: t, now: monday10.UnixNano()}
			r.w = New(compile(t, pol), Options{InspectFlows: 8, Sink: SinkFunc(func(e Event) { r.events = append(r.events, e) })}).NewWorker()
			old := newConv(tc.cli, tc.srv)
			handshake(r, old)
			r.judge(old.data(tc.first), NeedMore, ReasonNone)
			for i := range 8 {
				c := newConv(netip.AddrPortFrom(netip.MustParseAddr("10.77.0.6"), uint16(42000+i)).String(), "198.51.100.7:80")
				handshake(r, c)
			}
			r.judge(old.data(tc.out), tc.want, ReasonAppUnidentified)
		})
	}
}

// A topic-restricted MQTT flow must open with CONNECT: one that opens with
// a PUBLISH (to an allowed topic) is no MQTT session a broker keeps, and a
// flow picked up mid-stream cannot be framed reliably. Opened with CONNECT,
// its allowed PUBLISH passes and a forbidden one is cut.
func TestAppMQTTOpensWithConnect(t *testing.T) {
	pol := strings.Replace(appPolicy, `[[allow]]
name = "plain"`, `[[allow]]
name = "broker"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/1883"]
app = "mqtt"
[allow.mqtt]
publish = ["cam/#"]

[[allow]]
name = "plain"`, 1)
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'c', 'a', 'm'}
	publish := func(topic string) []byte {
		b := []byte{0x30, byte(2 + len(topic) + 1), 0, byte(len(topic))}
		return append(append(b, topic...), 'x')
	}
	r := &appRun{t: t, now: monday10.UnixNano()}
	r.w = New(compile(t, pol), Options{Sink: SinkFunc(func(e Event) { r.events = append(r.events, e) })}).NewWorker()

	c := newConv("10.77.0.5:41200", "198.51.100.7:1883")
	handshake(r, c)
	r.judge(c.data(publish("cam/1")), Drop, ReasonAppMismatch)

	c = newConv("10.77.0.5:41201", "198.51.100.7:1883")
	handshake(r, c)
	r.judge(c.data(connect), NeedMore, ReasonAppIdentified)
	r.judge(c.data(publish("cam/1")), NeedMore, ReasonAppIdentified)
	r.judge(c.data(publish("door/1")), Drop, ReasonAppDenied)
}
