package learn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// dnsName encodes name as DNS labels.
func dnsName(name string) []byte {
	var b []byte
	for _, l := range strings.Split(name, ".") {
		b = append(append(b, byte(len(l))), l...)
	}
	return append(b, 0)
}

// dnsQueryMsg is a standard query for name's A records.
func dnsQueryMsg(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	return append(append(b, dnsName(name)...), 0, 1, 0, 1)
}

// dnsAnswerMsg answers the query id for name with A records for addrs,
// valid ttl seconds.
func dnsAnswerMsg(id uint16, name string, ttl uint32, addrs ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x81, 0x80, 0, 1, 0, byte(len(addrs)), 0, 0, 0, 0)
	b = append(append(b, dnsName(name)...), 0, 1, 0, 1)
	for _, a := range addrs {
		b = append(b, 0xc0, 12, 0, 1, 0, 1)
		b = binary.BigEndian.AppendUint32(b, ttl)
		ip := netip.MustParseAddr(a).As4()
		b = append(append(b, 0, 4), ip[:]...)
	}
	return b
}

// resolverIP is the resolver of the generated captures: the router.
const resolverIP = "10.77.0.1"

// lookup is a device's query for name and the resolver's answer 5 ms
// later giving addrs.
func lookup(at time.Duration, cmac, client string, sport, id uint16, name string, ttl uint32, addrs ...string) []frame {
	return resolve(at, resolver{cmac, client, routerMAC, resolverIP}, sport, id, name, ttl, addrs...)
}

// resolver is who asks which resolver: the client's MAC and address, the
// resolver's.
type resolver struct{ cmac, client, rmac, server string }

func resolve(at time.Duration, r resolver, sport, id uint16, name string, ttl uint32, addrs ...string) []frame {
	return []frame{
		{at: at, srcMAC: r.cmac, dstMAC: r.rmac, src: r.client, dst: r.server, proto: layers.IPProtocolUDP, sport: sport, dport: 53, data: dnsQueryMsg(id, name)},
		{at: at + 5*time.Millisecond, srcMAC: r.rmac, dstMAC: r.cmac, src: r.server, dst: r.client, proto: layers.IPProtocolUDP, sport: 53, dport: sport, data: dnsAnswerMsg(id, name, ttl, addrs...)},
	}
}

// forgedAnswer is an answer from the resolver's address to a query the
// device never sent.
func forgedAnswer(at time.Duration, cmac, client string, dport, id uint16, name string, addrs ...string) frame {
	return frame{at: at, srcMAC: routerMAC, dstMAC: cmac, src: resolverIP, dst: client, proto: layers.IPProtocolUDP, sport: 53, dport: dport, data: dnsAnswerMsg(id, name, 300, addrs...)}
}

// namedTraffic is a plug that resolves before it connects: one cloud name
// with two addresses, two numbered NTP pool servers, two names of one
// vendor, and the ways a peer stays an address: a second flow long after
// its answer expired, an answer to no query, an answer to another device.
func namedTraffic() []frame {
	s := time.Second
	var f []frame
	f = append(f, lookup(0, plugAMAC, plugA, 30000, 1, "cloud.example.com", 300, "203.0.113.5", "203.0.113.6")...)
	f = append(f, tcpConn(s, plugAMAC, routerMAC, plugA, "203.0.113.5", 40001, 8883, 300, 500)...)
	f = append(f, tcpConn(2*s, plugAMAC, routerMAC, plugA, "203.0.113.6", 40002, 8883, 300, 500)...)
	f = append(f, lookup(3*s, plugAMAC, plugA, 30001, 2, "0.pool.example.org", 150, "203.0.113.9")...)
	f = append(f, lookup(3*s, plugAMAC, plugA, 30002, 3, "1.pool.example.org", 150, "203.0.113.10")...)
	f = append(f, udpExchange(4*s, plugAMAC, routerMAC, plugA, "203.0.113.9", 40003, 123, 48)...)
	f = append(f, udpExchange(4*s, plugAMAC, routerMAC, plugA, "203.0.113.10", 40004, 123, 48)...)
	f = append(f, lookup(5*s, plugAMAC, plugA, 30003, 4, "a.vendor.example", 300, "203.0.113.20")...)
	f = append(f, lookup(5*s, plugAMAC, plugA, 30004, 5, "b.vendor.example", 300, "203.0.113.21")...)
	f = append(f, tcpConn(6*s, plugAMAC, routerMAC, plugA, "203.0.113.20", 40005, 443, 300, 500)...)
	f = append(f, tcpConn(6*s, plugAMAC, routerMAC, plugA, "203.0.113.21", 40006, 443, 300, 500)...)
	// api.example.com: answered for 10 s, used at once and again after
	// TTL and grace (10 s + 1 min) are long gone.
	f = append(f, lookup(7*s, plugAMAC, plugA, 30005, 6, "api.example.com", 10, "203.0.113.30")...)
	f = append(f, tcpConn(8*s, plugAMAC, routerMAC, plugA, "203.0.113.30", 40007, 443, 300, 500)...)
	f = append(f, tcpConn(5*time.Minute, plugAMAC, routerMAC, plugA, "203.0.113.30", 40008, 443, 300, 500)...)
	// An answer to no query, then a flow to its address.
	f = append(f, forgedAnswer(9*s, plugAMAC, plugA, 30006, 7, "evil.example", "203.0.113.40"))
	f = append(f, tcpConn(10*s, plugAMAC, routerMAC, plugA, "203.0.113.40", 40009, 443, 300, 500)...)
	// The other plug's answer, then this plug's flow to its address.
	f = append(f, lookup(11*s, plugBMAC, plugB, 30007, 8, "shared.example", 300, "203.0.113.50")...)
	f = append(f, tcpConn(12*s, plugAMAC, routerMAC, plugA, "203.0.113.50", 40010, 443, 300, 500)...)
	// One address given for one name, then, after that answer expired,
	// for another: no name holds for both flows.
	f = append(f, lookup(13*s, plugAMAC, plugA, 30008, 9, "x.example", 10, "203.0.113.60")...)
	f = append(f, tcpConn(14*s, plugAMAC, routerMAC, plugA, "203.0.113.60", 40011, 443, 300, 500)...)
	f = append(f, lookup(6*time.Minute, plugAMAC, plugA, 30009, 10, "y.example", 300, "203.0.113.60")...)
	f = append(f, tcpConn(6*time.Minute+s, plugAMAC, routerMAC, plugA, "203.0.113.60", 40012, 443, 300, 500)...)
	// NTP from port 123 to 123: one tuple, a new flow to the engine
	// again once idle past its flow TTL, long after the answer expired.
	f = append(f, lookup(15*s, plugAMAC, plugA, 30010, 11, "ntp.example.net", 10, "203.0.113.70")...)
	f = append(f, udpExchange(16*s, plugAMAC, routerMAC, plugA, "203.0.113.70", 123, 123, 48)...)
	f = append(f, udpExchange(9*time.Minute, plugAMAC, routerMAC, plugA, "203.0.113.70", 123, 123, 48)...)
	return f
}

// rulesByPeer maps each rule's "to" to the rule.
func rulesByPeer(p *Proposal) map[string]ProposedRule {
	out := map[string]ProposedRule{}
	for _, r := range p.Rules {
		out[r.Allow.To.String()] = r
	}
	return out
}

// TestLearnPeersByDNSName learns from a capture where a plug resolves
// names before it connects: peers become dns:NAME where every flow
// followed an answer to the plug's own query for NAME, one rule for the
// addresses of one name, one dns:*.POOL for numbered pool servers, and
// addresses (with the reason) everywhere else.
func TestLearnPeersByDNSName(t *testing.T) {
	capture := filepath.Join(t.TempDir(), "named.pcap")
	writeCapture(t, capture, namedTraffic())
	p, text := learnFrom(t, basePolicy, Options{}, capture)
	loadProposal(t, text)
	rules := rulesByPeer(p)
	for _, want := range []string{"dns:cloud.example.com", "dns:*.pool.example.org", "dns:a.vendor.example", "dns:b.vendor.example"} {
		if _, ok := rules[want]; !ok {
			t.Errorf("no rule to %s:\n%s", want, text)
		}
	}
	if r := rules["dns:cloud.example.com"]; r.Flows != 2 || !strings.Contains(strings.Join(r.Comment, "\n"), "203.0.113.5, 203.0.113.6") {
		t.Errorf("the two addresses of cloud.example.com are not one rule of 2 flows: %d flows, %q", r.Flows, r.Comment)
	}
	for _, peer := range []string{"net:203.0.113.5/32", "net:203.0.113.9/32", "net:203.0.113.20/32", "dns:*.vendor.example", "dns:0.pool.example.org", "dns:x.example", "dns:y.example", "dns:ntp.example.net"} {
		if _, ok := rules[peer]; ok {
			t.Errorf("a rule to %s", peer)
		}
	}
	for peer, why := range map[string]string{
		"net:203.0.113.30/32": "1 of its 2 flows followed no DNS answer",
		"net:203.0.113.40/32": "1 of its 1 flows followed no DNS answer",
		"net:203.0.113.50/32": "1 of its 1 flows followed no DNS answer",
		"net:203.0.113.60/32": "its 2 flows followed answers for different names, none of them for all",
		"net:203.0.113.70/32": "1 of its 2 flows followed no DNS answer",
		"net:10.77.0.1/32":    "",
	} {
		r, ok := rules[peer]
		if !ok {
			t.Errorf("no rule to %s:\n%s", peer, text)
			continue
		}
		if c := strings.Join(r.Comment, "\n"); why != "" && !strings.Contains(c, "peer by address: "+why) {
			t.Errorf("%s: comment does not say %q:\n%s", peer, why, c)
		}
	}
	if _, again := learnFrom(t, basePolicy, Options{}, capture); !bytes.Equal(text, again) {
		t.Errorf("learning twice gave different proposals:\n%s\n----\n%s", text, again)
	}
}

// TestLearnedDNSRulesHold replays traffic against the proposal learned
// from namedTraffic: the learned traffic passes, as does a new connection
// after a new answer (the control); a connection to an address no answer
// gave, to one only another device was given, to one a forged answer
// gave, or past the answer's TTL and grace, is dropped.
func TestLearnedDNSRulesHold(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "named.pcap")
	writeCapture(t, capture, namedTraffic())
	p, text := learnFrom(t, basePolicy, Options{}, capture)
	pol, _ := loadProposal(t, text)
	if learnedAccepted(t, loadBase(t, basePolicy), pol, p, capture) == 0 {
		t.Fatalf("the proposal accepts no learned flow:\n%s", text)
	}

	s := time.Second
	var f []frame
	f = append(f, lookup(0, plugAMAC, plugA, 31000, 21, "cloud.example.com", 300, "203.0.113.5")...)
	f = append(f, tcpConn(s, plugAMAC, routerMAC, plugA, "203.0.113.5", 41001, 8883, 300, 500)...)
	f = append(f, tcpConn(2*s, plugAMAC, routerMAC, plugA, "203.0.113.7", 41002, 8883, 300, 500)...)
	f = append(f, lookup(3*s, plugBMAC, plugB, 31001, 22, "cloud.example.com", 300, "203.0.113.8")...)
	f = append(f, tcpConn(4*s, plugAMAC, routerMAC, plugA, "203.0.113.8", 41003, 8883, 300, 500)...)
	f = append(f, forgedAnswer(5*s, plugAMAC, plugA, 31002, 23, "cloud.example.com", "203.0.113.11"))
	f = append(f, tcpConn(6*s, plugAMAC, routerMAC, plugA, "203.0.113.11", 41004, 8883, 300, 500)...)
	f = append(f, lookup(7*s, plugAMAC, plugA, 31003, 24, "cloud.example.com", 5, "203.0.113.12")...)
	f = append(f, tcpConn(7*s+5*s+time.Minute+s, plugAMAC, routerMAC, plugA, "203.0.113.12", 41005, 8883, 300, 500)...)
	attack := filepath.Join(dir, "attack.pcap")
	writeCapture(t, attack, f)
	got := outcomesOf(t, pol, attack)
	if o := got["tcp 10.77.0.21>203.0.113.5:8883"]; !o.Accepted {
		t.Errorf("control: the learned name's address after a new answer: %s", o)
	}
	for flow, what := range map[string]string{
		"tcp 10.77.0.21>203.0.113.7:8883":  "an address no answer gave",
		"tcp 10.77.0.21>203.0.113.8:8883":  "an address only another device was given",
		"tcp 10.77.0.21>203.0.113.11:8883": "an address a forged answer gave",
		"tcp 10.77.0.21>203.0.113.12:8883": "an address past its answer's TTL and grace",
	} {
		if o, ok := got[flow]; !ok || o.Accepted {
			t.Errorf("%s (%s): %s, want dropped", flow, what, o)
		}
	}
}

// dnsSharedCaptures are the shared captures with DNS, and names their
// devices resolved and then used.
var dnsSharedCaptures = map[string][]string{
	"iot/iotsentinel_tplink-hs110-plug_setup.pcap": {"dns:devs.tplinkcloud.com", "dns:time-b.nist.gov"},
	"iot/iotsentinel_hue-bridge_setup.pcap":        {"dns:bridge.meethue.com", "dns:dcp.cpp.philips.com", "dns:www.ecdinterface.philips.com", "dns:*.openwrt.pool.ntp.org"},
}

// TestLearnDNSSharedCaptures learns from the real captures with DNS: the
// proposal names the peers the devices resolved, loads as check loads it,
// and replaying the capture against it accepts every flow of the learned
// devices. Replayed without the DNS answers, every flow a dns: rule
// accepted is dropped: the rules hold on the answers, not on the
// addresses.
func TestLearnDNSSharedCaptures(t *testing.T) {
	dir := testpcaps.Dir(t)
	base := loadBase(t, basePolicy)
	for name, want := range dnsSharedCaptures {
		t.Run(filepath.Base(name), func(t *testing.T) {
			capture := filepath.Join(dir, name)
			if _, err := os.Stat(capture); err != nil {
				t.Skip(err)
			}
			p, text := learnFrom(t, basePolicy, Options{}, capture)
			pol, _ := loadProposal(t, text)
			rules := rulesByPeer(p)
			dnsRules := map[string]bool{}
			for _, w := range want {
				r, ok := rules[w]
				if !ok {
					t.Errorf("no rule to %s:\n%s", w, text)
					continue
				}
				dnsRules[r.Allow.Name] = true
			}
			learnedAccepted(t, base, pol, p, capture)
			d, err := Diff(base, pol, []string{capture})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.NewlyDenied) > 0 {
				t.Errorf("the proposal denies %d flows the base policy allowed: %+v", len(d.NewlyDenied), d.NewlyDenied[0])
			}

			full, err := runPass(pol, []string{capture})
			if err != nil {
				t.Fatal(err)
			}
			stripped := withoutDNSAnswers(t, capture)
			bare, err := runPass(pol, []string{stripped})
			if err != nil {
				t.Fatal(err)
			}
			byName := 0
			for id, f := range full.flows {
				if !f.out.Accepted || !dnsRules[f.out.Rule] {
					continue
				}
				byName++
				for bid, b := range bare.flows {
					if bid.key == id.key && b.first == f.first && b.out.Accepted {
						t.Errorf("without DNS answers, flow %s -> %s:%d is still accepted: %s", f.ends.opener, f.ends.responder, f.ends.rport, b.out)
					}
				}
			}
			if byName == 0 {
				t.Errorf("no flow was accepted by a dns: rule")
			}
		})
	}
}

// withoutDNSAnswers copies a classic pcap without its packets from UDP
// port 53.
func withoutDNSAnswers(t *testing.T, path string) string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "no-answers.pcap")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
		if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && udp.SrcPort == 53 {
			dropped++
			continue
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if dropped == 0 {
		t.Fatal("the capture has no DNS answers")
	}
	return out
}

// TestPoolOf keeps the wildcard to numbered members of a pool of at least
// three labels.
func TestPoolOf(t *testing.T) {
	for name, want := range map[string]string{
		"0.openwrt.pool.ntp.org": "openwrt.pool.ntp.org",
		"12.pool.example.org":    "pool.example.org",
		"3.example.com":          "",
		"3.com":                  "",
		"a.pool.example.org":     "",
		"0a.pool.example.org":    "",
		"pool.example.org":       "",
		"1.a.b.c.d.e.f.example":  "",
	} {
		got, ok := poolOf(name)
		if got != want || ok != (want != "") {
			t.Errorf("poolOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// TestLearnNoNameThroughADeniedResolver: a device whose DNS goes to a
// resolver the base policy's segments deny gets no dns: rule from those
// answers. The engine sees answers only to queries it let through, so a
// rule learned from them would never match; the peer stays an address.
func TestLearnNoNameThroughADeniedResolver(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.toml")
	text = append(text, []byte(`
[[zone]]
name = "blocked"
networks = ["198.51.100.0/24"]

[[segment]]
from = "iot"
to = "blocked"
action = "deny"
`)...)
	if err := os.WriteFile(base, text, 0o600); err != nil {
		t.Fatal(err)
	}
	blocked := resolver{plugAMAC, plugA, routerMAC, "198.51.100.53"}
	var f []frame
	f = append(f, resolve(0, blocked, 30000, 1, "cloud.example.com", 300, "203.0.113.5")...)
	f = append(f, tcpConn(time.Second, plugAMAC, routerMAC, plugA, "203.0.113.5", 40001, 8883, 300, 500)...)
	// The control: the same through the allowed resolver is named.
	f = append(f, lookup(2*time.Second, plugAMAC, plugA, 30001, 2, "other.example.com", 300, "203.0.113.6")...)
	f = append(f, tcpConn(3*time.Second, plugAMAC, routerMAC, plugA, "203.0.113.6", 40002, 8883, 300, 500)...)
	capture := filepath.Join(dir, "blocked.pcap")
	writeCapture(t, capture, f)
	p, out := learnFrom(t, base, Options{}, capture)
	rules := rulesByPeer(p)
	if _, ok := rules["dns:other.example.com"]; !ok {
		t.Errorf("control: no dns: rule through the allowed resolver:\n%s", out)
	}
	if _, ok := rules["dns:cloud.example.com"]; ok {
		t.Errorf("a dns: rule learned through a resolver the base policy denies:\n%s", out)
	}
	if _, ok := rules["net:203.0.113.5/32"]; !ok {
		t.Errorf("no rule to the address:\n%s", out)
	}
}

// TestLearnGroupByName: two plugs that resolve one name (to different
// addresses, as a cloud's load balancer hands them out) did the same
// thing: one group, one dns: rule, and replaying accepts both.
func TestLearnGroupByName(t *testing.T) {
	var f []frame
	for i, p := range []struct{ mac, ip, cloud string }{{plugAMAC, plugA, "203.0.113.5"}, {plugBMAC, plugB, "203.0.113.6"}} {
		at := time.Duration(i) * time.Second
		f = append(f, lookup(at, p.mac, p.ip, 30000, uint16(i+1), "cloud.example.com", 300, p.cloud)...)
		f = append(f, tcpConn(at+100*time.Millisecond, p.mac, routerMAC, p.ip, p.cloud, 40000, 8883, 300, 500)...)
	}
	capture := filepath.Join(t.TempDir(), "group.pcap")
	writeCapture(t, capture, f)
	p, text := learnFrom(t, basePolicy, Options{}, capture)
	pol, _ := loadProposal(t, text)
	r, ok := rulesByPeer(p)["dns:cloud.example.com"]
	if len(p.Groups) != 1 || !ok || r.Allow.From.Kind != config.EndpointGroup || r.Flows != 2 {
		t.Fatalf("want one group with one dns: rule of 2 flows:\n%s", text)
	}
	if !strings.Contains(strings.Join(r.Comment, "\n"), "203.0.113.5, 203.0.113.6") {
		t.Errorf("the rule's comment does not name both addresses: %q", r.Comment)
	}
	if learnedAccepted(t, loadBase(t, basePolicy), pol, p, capture) != 4 {
		t.Errorf("want 4 flows newly accepted (2 DNS, 2 cloud)")
	}
}

// TestLearnRecordKeepsNoNames: the daemon's record holds no DNS names, so
// a peer it saw stays an address, even where the capture alone would name
// it, and the rule says why.
func TestLearnRecordKeepsNoNames(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "named.pcap")
	writeCapture(t, capture, namedTraffic())
	rec := NewRecorder(0, time.UTC)
	recordAsDaemon(t, rec, capture)
	path := filepath.Join(dir, "learn.json")
	if err := rec.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := LoadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := New(loadBase(t, basePolicy), loadConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lr.File(capture); err != nil {
		t.Fatal(err)
	}
	if err := lr.Record(f); err != nil {
		t.Fatal(err)
	}
	p := lr.Propose()
	text := writeProposal(t, p)
	loadProposal(t, text)
	rules := rulesByPeer(p)
	if _, ok := rules["dns:cloud.example.com"]; ok {
		t.Errorf("a dns: rule from flows the record also holds:\n%s", text)
	}
	r, ok := rules["net:203.0.113.5/32"]
	if c := strings.Join(r.Comment, "\n"); !ok || !strings.Contains(c, "the daemon's record keeps no names") {
		t.Errorf("the cloud's rule does not say why it is an address:\n%s", text)
	}
}

// TestLearnNamesThroughTheGateway: with the resolver declared as the
// gateway, the base policy's default DNS service keeps the queries
// allowed: no rule to the resolver is learned, the peers are by name, and
// the proposal accepts the learned traffic with no warning about an
// unseen resolver.
func TestLearnNamesThroughTheGateway(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.toml")
	text = append(text, []byte("\n[gateway]\naddresses = [\""+resolverIP+"\"]\n")...)
	if err := os.WriteFile(base, text, 0o600); err != nil {
		t.Fatal(err)
	}
	capture := filepath.Join(dir, "named.pcap")
	writeCapture(t, capture, namedTraffic())
	p, out := learnFrom(t, base, Options{}, capture)
	rules := rulesByPeer(p)
	if _, ok := rules["dns:cloud.example.com"]; !ok {
		t.Errorf("no rule by name:\n%s", out)
	}
	for peer := range rules {
		if peer == "gateway" || peer == "net:"+resolverIP+"/32" {
			t.Errorf("a rule to the resolver %s, which the gateway's DNS service already allows", peer)
		}
	}
	path := filepath.Join(dir, "proposal.toml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	l, warns, err := policy.Load(path, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		if strings.Contains(w.Msg, "resolver") {
			t.Errorf("warning: %v", w)
		}
	}
	if learnedAccepted(t, loadBase(t, base), l.Policy, p, capture) == 0 {
		t.Errorf("nothing learned:\n%s", out)
	}
}
