package replay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// msgPolicy is a gateway whose devices (the captures' clients) reach
// brokers and CoAP servers by one rule each; rule is the application
// constraint appended to both.
func msgPolicy(t *testing.T, mqtt, coap string) *policy.Policy {
	t.Helper()
	src := `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0", "::/0"]

[[zone]]
name = "iot"
networks = ["192.168.0.0/24", "10.0.1.0/24", "100.64.0.0/10", "::1/128"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"

[[allow]]
name = "broker"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/1883"]
app = "mqtt"
` + mqtt + `

[[allow]]
name = "lwm2m"
from = "zone:iot"
to = "zone:iot"
services = ["udp/5683"]
app = "coap"
` + coap + "\n"
	cfg, _, err := config.Parse("msg.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// flowResult is what a replay decided for one flow.
type flowResult struct {
	verdict engine.Verdict
	layer   engine.Layer
	reason  engine.Reason
	detail  string // the checker's reason, from the app event
	name    string
}

// replayApps replays a capture through pol and returns each flow's last
// decision, by client port.
func replayApps(t *testing.T, pol *policy.Policy, capt []byte) map[uint16]*flowResult {
	t.Helper()
	flows := map[uint16]*flowResult{}
	var events []engine.Event
	eng := engine.New(pol, engine.Options{Sink: engine.SinkFunc(func(e engine.Event) { events = append(events, e) })})
	w := eng.NewWorker()
	rd, err := capture.NewReader(bytes.NewReader(capt))
	if err != nil {
		t.Fatal(err)
	}
	var p packet.Packet
	for {
		ts, err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = events[:0]
		d := w.Judge(&p, ts.UnixNano(), engine.NoMeta)
		port := p.SrcPort
		if p.SrcPort == 1883 || p.SrcPort == 5683 && p.DstPort != 5683 {
			port = p.DstPort
		}
		if d.Verdict == engine.Drop || d.NewFlow || flows[port] == nil || flows[port].verdict != engine.Drop {
			fr := &flowResult{verdict: d.Verdict, layer: d.Layer, reason: d.Reason}
			for _, e := range events {
				fr.detail, fr.name = e.App.Detail, e.App.Name()
			}
			if old := flows[port]; old != nil && old.verdict == engine.Drop {
				continue // a dropped flow stays dropped
			}
			flows[port] = fr
		}
	}
	return flows
}

// restoreSYNs returns an Ethernet capture with a client SYN put back in
// front of each TCP flow to port 1883 whose own SYN the capture lacks (the
// shared MQTT captures start after it, or mid-flow): its sequence number
// is the one before the client's first byte, so the stream inspected is
// exactly the capture's.
func restoreSYNs(t *testing.T, path string) []byte {
	t.Helper()
	rd, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	type rec struct {
		ts   time.Time
		data []byte
	}
	var recs []rec
	var p packet.Packet
	for {
		ts, err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec{ts, append([]byte(nil), rd.Frame().Data...)})
	}
	// The first packet of each flow, and its client's first data segment.
	first, data := map[uint16]int{}, map[uint16]*layers.TCP{}
	tmpl := map[uint16]gopacket.Packet{}
	for i, r := range recs {
		pk := gopacket.NewPacket(r.data, layers.LayerTypeEthernet, gopacket.Default)
		tcp, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || (tcp.DstPort != 1883 && tcp.SrcPort != 1883) {
			continue
		}
		port := uint16(tcp.SrcPort)
		if tcp.SrcPort == 1883 {
			port = uint16(tcp.DstPort)
		}
		if _, ok := first[port]; !ok {
			first[port] = i
		}
		if tcp.DstPort == 1883 && len(tcp.Payload) > 0 && data[port] == nil {
			data[port], tmpl[port] = tcp, pk
		}
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	write := func(ts time.Time, b []byte) {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		for port, at := range first {
			if at == i && data[port] != nil {
				write(r.ts.Add(-time.Millisecond), synBefore(t, tmpl[port], data[port]))
			}
		}
		write(r.ts, r.data)
	}
	return buf.Bytes()
}

// synBefore builds the SYN that opened the connection of the client data
// segment d (in packet pk).
func synBefore(t *testing.T, pk gopacket.Packet, d *layers.TCP) []byte {
	t.Helper()
	eth := *pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := *pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ip.Options, ip.Padding = nil, nil
	syn := &layers.TCP{SrcPort: d.SrcPort, DstPort: d.DstPort, Seq: d.Seq - 1, SYN: true, Window: 65535}
	if err := syn.SetNetworkLayerForChecksum(&ip); err != nil {
		t.Fatal(err)
	}
	stack := []gopacket.SerializableLayer{&eth}
	if tag, ok := pk.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
		stack = append(stack, tag) // the capture's second flow is tagged
	}
	stack = append(stack, &ip, syn)
	out := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(out, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestReplayMQTTCaptures replays the shared MQTT captures (with their
// missing SYNs put back) under a rule naming their client ids and topics:
// every flow is accepted; under rules that leave a topic or a client id
// out, the flows carrying it are dropped at the pico layer with the
// checker's reason.
func TestReplayMQTTCaptures(t *testing.T) {
	dir := testpcaps.Dir(t)
	const coap = ""
	allow := msgPolicy(t, `[allow.mqtt]
client_ids = ["cbaa*", "paho/*", "P47775ID170W2120"]
publish = ["astr/admin/+", "SampleTopic"]
subscribe = ["astr/s720/#", "SampleTopic"]`, coap)
	noOTA := msgPolicy(t, `[allow.mqtt]
publish = ["SampleTopic"]
subscribe = ["astr/s720/#", "SampleTopic"]`, coap)
	camsOnly := msgPolicy(t, `[allow.mqtt]
client_ids = ["cam-*"]`, coap)
	for _, tc := range []struct {
		file string
		// per client port: what noOTA decides, and its checker reason
		noOTA map[uint16]string
	}{
		{"iot/ndpi_mqtt.pcapng", map[uint16]string{41892: "publish topic not allowed", 35035: ""}},
		{"iot/zeek_mqtt.pcap", map[uint16]string{49327: "", 49330: ""}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			capt := restoreSYNs(t, filepath.Join(dir, tc.file))
			for port, fr := range replayApps(t, allow, capt) {
				if fr.verdict == engine.Drop || fr.layer != engine.LayerPico {
					t.Errorf("allowed, client %d: %+v", port, fr)
				}
			}
			got := replayApps(t, noOTA, capt)
			for port, reason := range tc.noOTA {
				fr := got[port]
				switch {
				case fr == nil:
					t.Errorf("no OTA topic, client %d: no flow", port)
				case reason == "" && fr.verdict == engine.Drop:
					t.Errorf("no OTA topic, client %d dropped: %+v", port, fr)
				case reason != "" && (fr.verdict != engine.Drop || fr.layer != engine.LayerPico || fr.reason != engine.ReasonAppDenied || fr.detail != reason):
					t.Errorf("no OTA topic, client %d: %+v, want a pico drop for %q", port, fr, reason)
				}
			}
			for port, fr := range replayApps(t, camsOnly, capt) {
				if fr.verdict != engine.Drop || fr.layer != engine.LayerPico || fr.detail != "client id not allowed" || fr.name == "" {
					t.Errorf("cameras only, client %d: %+v", port, fr)
				}
			}
		})
	}
}

// TestReplayCoAPCapture replays the shared LwM2M capture: the device
// registers (POST /rd) and answers the server's reads. A rule allowing
// POST to /rd accepts the flow; GET only, or another path, drops it at
// the pico layer at the registration.
func TestReplayCoAPCapture(t *testing.T) {
	f := filepath.Join(testpcaps.Dir(t), "iot", "tcpdump_coap.pcap")
	capt, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule   string
		detail string
	}{
		{"[allow.coap]\nmethods = [\"POST\"]\npaths = [\"/rd\"]", ""},
		{"", ""},
		{"[allow.coap]\nmethods = [\"GET\"]", "method not allowed"},
		{"[allow.coap]\npaths = [\"/bs\", \"/rd/*\"]", "path not allowed"},
	} {
		got := replayApps(t, msgPolicy(t, "", tc.rule), capt)
		fr := got[56830]
		switch {
		case fr == nil:
			t.Errorf("%q: no flow", tc.rule)
		case tc.detail == "" && fr.verdict == engine.Drop:
			t.Errorf("%q: dropped: %+v", tc.rule, fr)
		case tc.detail != "" && (fr.verdict != engine.Drop || fr.layer != engine.LayerPico || fr.detail != tc.detail):
			t.Errorf("%q: %+v, want a pico drop for %q", tc.rule, fr, tc.detail)
		}
	}
}
