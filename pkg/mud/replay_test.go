package mud

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/replay"
)

const basePath = "testdata/base.toml"

// importFile imports a testdata MUD file into testdata/base.toml and
// returns the proposal and the policy text, which must load as `check`
// loads it.
func importFile(t *testing.T, path string, o Options) (*Proposal, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(basePath)
	if err != nil {
		t.Fatal(err)
	}
	o.Base = NamesOf(cfg)
	p, err := Import(f, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.WriteTOML(&out, base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(basePath, out.Bytes()); err != nil {
		t.Fatalf("the proposal does not load: %v\n%s", err, out.String())
	}
	return p, out.Bytes()
}

// flow is one flow's opening packet and what the MUD file says of it.
type flow struct {
	what         string
	srcMAC       string
	src, dst     string
	proto        string // tcp or udp
	sport, dport uint16
	allowed      bool
	rule         string // the rule that must allow it
}

// capturePcap writes each flow's first packet (a SYN for TCP) as an
// Ethernet pcap, one a second.
func capturePcap(t *testing.T, flows []flow) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, f := range flows {
		mac, err := net.ParseMAC(f.srcMAC)
		if err != nil {
			t.Fatal(err)
		}
		eth := &layers.Ethernet{SrcMAC: mac, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0xfe, 1}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(f.src).To4(), DstIP: net.ParseIP(f.dst).To4()}
		var l4 gopacket.SerializableLayer
		switch f.proto {
		case "tcp":
			ip.Protocol = layers.IPProtocolTCP
			tcp := &layers.TCP{SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport), SYN: true, Window: 1024, Seq: 1}
			tcp.SetNetworkLayerForChecksum(ip)
			l4 = tcp
		case "udp":
			ip.Protocol = layers.IPProtocolUDP
			udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
			udp.SetNetworkLayerForChecksum(ip)
			l4 = udp
		default:
			t.Fatalf("flow %q: protocol %q", f.what, f.proto)
		}
		out := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(out, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(make([]byte, 20))); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Second), CaptureLength: len(out.Bytes()), Length: len(out.Bytes())}
		if err := w.WritePacket(ci, out.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// replayFlows replays the flows' capture through text's policy, as
// `picoseg replay` does, and checks each verdict against the MUD file's.
func replayFlows(t *testing.T, text []byte, flows []flow) {
	t.Helper()
	cfg, _, err := config.Parse(basePath, text)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := replay.New(pol)
	rd, err := capture.NewReader(bytes.NewReader(capturePcap(t, flows)))
	if err != nil {
		t.Fatal(err)
	}
	var p packet.Packet
	for i := 0; ; i++ {
		ts, err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			if i != len(flows) {
				t.Fatalf("read %d packets, wrote %d", i, len(flows))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f := flows[i]
		d := r.Packet(&p, ts.UnixNano())
		got := d.Verdict == engine.Accept
		rule := ""
		if got && d.Rule >= 0 && int(d.Rule) < len(pol.Rules) {
			rule = pol.Rules[d.Rule].Name
		}
		if got != f.allowed || (f.allowed && rule != f.rule) {
			t.Errorf("%s: accepted %v by rule %q (layer %s, reason %v); the MUD file says %v (rule %q)",
				f.what, got, rule, d.Layer, d.Reason, f.allowed, f.rule)
		}
	}
}

const (
	camMAC  = "02:00:00:00:00:31"
	camIP   = "10.77.0.31"
	hubMAC  = "02:00:00:00:01:05"
	hubIP   = "192.168.1.5"
	toolMAC = "02:00:00:00:00:40"
	toolIP  = "10.77.0.40"
	lanMAC  = "02:00:00:00:01:50"
	lanIP   = "192.168.1.50"
)

// TestImportRFCReplay imports the RFC-form camera with its abstractions
// mapped, and replays traffic the MUD file allows and traffic it does not.
func TestImportRFCReplay(t *testing.T) {
	m := Mapping{}
	for _, s := range []string{"local-networks=zone:lan", "my-controller=device:hub", "manufacturer:example.com=group:acme-admins"} {
		if err := m.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	p, text := importFile(t, "testdata/rfc-camera.json", Options{MAC: camMAC, IPs: []string{camIP}, Map: m})
	if p.File.Form != FormRFC {
		t.Errorf("form %v, want RFC", p.File.Form)
	}
	flows := []flow{
		{"camera to its cloud on 443", camMAC, camIP, "203.0.113.5", "tcp", 40001, 443, true, "cam-100-mud-1"},
		{"camera to its cloud on 80", camMAC, camIP, "203.0.113.5", "tcp", 40002, 80, false, ""},
		{"camera to another cloud on 443", camMAC, camIP, "198.51.100.7", "tcp", 40003, 443, false, ""},
		{"camera to its controller", camMAC, camIP, hubIP, "udp", 40004, 5683, true, "cam-100-mud-3"},
		{"camera to its controller, another port", camMAC, camIP, hubIP, "udp", 40005, 5684, false, ""},
		{"controller opens to the camera", hubMAC, hubIP, camIP, "udp", 5683, 5683, false, ""},
		{"a LAN host to the camera's web page", lanMAC, lanIP, camIP, "tcp", 40006, 80, true, "cam-100-mud-6"},
		{"the camera opens to a LAN host's port 80", camMAC, camIP, lanIP, "tcp", 40007, 80, false, ""},
		{"the manufacturer's admin tool to the camera", toolMAC, toolIP, camIP, "tcp", 40008, 9000, true, "cam-100-mud-7"},
		{"the admin tool on another port", toolMAC, toolIP, camIP, "tcp", 40009, 9001, false, ""},
		{"the camera to NTP (a DNS name)", camMAC, camIP, "192.0.2.123", "udp", 40010, 123, false, ""},
		{"the camera to the internet on 53", camMAC, camIP, "192.0.2.53", "udp", 40011, 53, false, ""},
	}
	replayFlows(t, text, flows)
	if !strings.Contains(string(text), "# to = \"dns:pool.ntp.org\"") && !DNSNamesSupported() {
		t.Errorf("the rule to pool.ntp.org is not written commented out:\n%s", text)
	}
}

// TestImportMUDgeeReplay imports the MUDgee-form plug.
func TestImportMUDgeeReplay(t *testing.T) {
	const plugMAC, plugIP = "02:00:00:00:00:21", "10.77.0.21"
	p, text := importFile(t, "testdata/mudgee-plug.json", Options{Name: "plug", MAC: plugMAC, IPs: []string{plugIP}})
	if p.File.Form != FormMUDgee {
		t.Errorf("form %v, want MUDgee", p.File.Form)
	}
	replayFlows(t, text, []flow{
		{"plug to its broker", plugMAC, plugIP, "198.51.100.10", "tcp", 40001, 8883, true, "plug-mud-1"},
		{"plug to its broker on 1883", plugMAC, plugIP, "198.51.100.10", "tcp", 40002, 1883, false, ""},
		{"plug to another broker", plugMAC, plugIP, "198.51.100.11", "tcp", 40003, 8883, false, ""},
		{"broker opens to the plug", "02:00:00:00:99:99", "198.51.100.10", plugIP, "tcp", 8883, 40004, false, ""},
	})
}

// TestImportDraftReplay imports the draft-form bulb.
func TestImportDraftReplay(t *testing.T) {
	const bulbMAC, bulbIP = "02:00:00:00:00:51", "10.77.0.51"
	m := Mapping{"local-networks": "zone:iot"}
	p, text := importFile(t, "testdata/draft-bulb.json", Options{Name: "bulb", MAC: bulbMAC, IPs: []string{bulbIP}, Map: m})
	if p.File.Form != FormDraft {
		t.Errorf("form %v, want draft", p.File.Form)
	}
	replayFlows(t, text, []flow{
		{"bulb to its bridge on 8081", bulbMAC, bulbIP, "10.77.0.2", "tcp", 40001, 8081, true, "bulb-mud-1"},
		{"bulb to its bridge on 8082", bulbMAC, bulbIP, "10.77.0.2", "tcp", 40002, 8082, false, ""},
		{"bridge opens to the bulb", "02:00:00:00:00:02", "10.77.0.2", bulbIP, "tcp", 8080, 8080, false, ""},
		{"bulb SSDP on its zone", bulbMAC, bulbIP, "10.77.0.60", "udp", 40003, 1900, true, "bulb-mud-2"},
		{"bulb SSDP to the LAN", bulbMAC, bulbIP, lanIP, "udp", 40004, 1900, false, ""},
	})
}
