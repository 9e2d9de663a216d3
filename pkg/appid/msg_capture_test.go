package appid

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/packet"
)

// capturedPayloads returns, in capture order, the payloads of the packets
// of a shared capture sent to dstPort, and per client (source port) those
// payloads joined into the client's byte stream (captures whose segments
// arrive in order, as these do). It skips when the captures are absent.
func capturedPayloads(tb testing.TB, name string, dstPort uint16) (payloads [][]byte, streams map[uint16][]byte) {
	tb.Helper()
	r, err := capture.Open(filepath.Join(testpcaps.Dir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	streams = map[uint16][]byte{}
	var p packet.Packet
	for {
		_, err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if p.DstPort != dstPort || len(p.Payload) == 0 {
			continue
		}
		payloads = append(payloads, append([]byte(nil), p.Payload...))
		streams[p.SrcPort] = append(streams[p.SrcPort], p.Payload...)
	}
	if len(payloads) == 0 {
		tb.Fatalf("%s: no payload to port %d", name, dstPort)
	}
	return payloads, streams
}

// TestMQTTCaptures reads the shared MQTT captures' client streams with
// the parser: every packet parses, and the CONNECTs name what the captures
// say.
func TestMQTTCaptures(t *testing.T) {
	for _, name := range []string{"iot/ndpi_mqtt.pcapng", "iot/zeek_mqtt.pcap"} {
		_, streams := capturedPayloads(t, name, 1883)
		for port, s := range streams {
			var types []uint8
			for off := 0; off < len(s); {
				h, err := ParseMQTTHeader(s[off:])
				if err != nil || off+h.Len() > len(s) {
					t.Fatalf("%s client %d at %d: %+v %v", name, port, off, h, err)
				}
				types = append(types, h.Type)
				if h.Type == MQTTConnect {
					c, err := ParseMQTTConnect(s[off+h.Size : off+h.Len()])
					t.Logf("%s client %d: level %d client id %q", name, port, c.Level, c.ClientID)
					if err != nil || (c.Level != 3 && c.Level != 4) || len(c.ClientID) == 0 {
						t.Errorf("%s client %d: CONNECT %+v %v", name, port, c, err)
					}
				}
				if h.Type == MQTTPublish {
					p, _ := ParseMQTTPublish(h.Flags, s[off+h.Size:off+h.Len()])
					t.Logf("%s client %d: PUBLISH %q", name, port, p.Topic)
				}
				if h.Type == MQTTSubscribe {
					_, it, _ := ParseMQTTSubscribe(s[off+h.Size:off+h.Len()], 4)
					for f, _, ok := it.Next(); ok; f, _, ok = it.Next() {
						t.Logf("%s client %d: SUBSCRIBE %q", name, port, f)
					}
				}
				off += h.Len()
			}
			t.Logf("%s client %d: packet types %v", name, port, types)
		}
	}
}

// TestMQTTCheckerCaptures: the captures' sessions pass a constraint naming
// their client ids and topics, in pieces of any size, and are denied by
// one that leaves their topics or ids out.
func TestMQTTCheckerCaptures(t *testing.T) {
	allow := mustMQTT(t, MQTTConstraint{
		ClientIDs: []string{"cbaa*", "paho/*", "P47775ID170W2120"},
		Publish:   []string{"astr/admin/+", "SampleTopic"},
		Subscribe: []string{"astr/s720/#", "SampleTopic"},
	})
	otherTopics := mustMQTT(t, MQTTConstraint{Publish: []string{"cam/#"}, Subscribe: []string{"cmd/#"}})
	otherIDs := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"cam-*"}})
	for _, name := range []string{"iot/ndpi_mqtt.pcapng", "iot/zeek_mqtt.pcap"} {
		_, streams := capturedPayloads(t, name, 1883)
		for port, s := range streams {
			for _, piece := range []int{1, 3, 7, len(s)} {
				if out, v := feedMQTT(allow, s, piece); out != Pass {
					t.Errorf("%s client %d in pieces of %d: %+v", name, port, piece, v)
				}
			}
			topics := false
			for off := 0; off < len(s); {
				h, _ := ParseMQTTHeader(s[off:])
				topics = topics || h.Type == MQTTPublish || h.Type == MQTTSubscribe
				off += h.Len()
			}
			out, v := feedMQTT(otherTopics, s, len(s))
			if topics && (out != Deny || (v.Reason != reasonPublishTopic && v.Reason != reasonSubscribeFilter)) {
				t.Errorf("%s client %d against other topics: %+v", name, port, v)
			}
			if !topics && out != Pass {
				t.Errorf("%s client %d (CONNECT only) against other topics: %+v", name, port, v)
			}
			if out, v := feedMQTT(otherIDs, s, len(s)); out != Deny || v.Reason != reasonClientID {
				t.Errorf("%s client %d against other ids: %+v", name, port, v)
			}
		}
	}
}

func FuzzMQTTCheck(f *testing.F) {
	if dir, ok := testpcaps.Find(); ok {
		_ = dir
		for _, name := range []string{"iot/ndpi_mqtt.pcapng", "iot/zeek_mqtt.pcap"} {
			payloads, streams := capturedPayloads(f, name, 1883)
			for _, p := range payloads {
				f.Add(p)
			}
			for _, s := range streams {
				f.Add(s)
			}
		}
	}
	f.Add(mqttConnect(5, "cam-1"))
	f.Add(mqttSubscribe5("cmd/#", "cmd/+/x"))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	checkers := []*MQTTChecker{
		mustMQTT(f, MQTTConstraint{ClientIDs: []string{"*a*b*"}}),
		mustMQTT(f, MQTTConstraint{Publish: []string{"+/x/#", "a"}, Subscribe: []string{"#"}}),
		mustMQTT(f, MQTTConstraint{Subscribe: []string{}}),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range checkers {
			for _, v := range []Verdict{m.Check(data), m.CheckFirst(data)} {
				// Used never stops inside the fixed header of the packet
				// it ends, and only a Pass uses anything.
				if v.Outcome != Pass && v.Used != 0 {
					t.Fatalf("%+v used bytes", v)
				}
				if v.Outcome == Pass && (v.Used <= 0 || v.Used > len(data)) {
					t.Fatalf("pass using nothing: %+v", v)
				}
				if (v.Outcome == Deny || v.Outcome == Mismatch) && v.Reason == "" {
					t.Fatalf("no reason: %+v", v)
				}
			}
			// Bytes beyond what was judged never change the judgement of
			// a prefix the checker denied.
			if v := m.Check(data); v.Outcome == Deny {
				if w := m.Check(append(append([]byte(nil), data...), 0x30, 0x00)); w.Outcome != Deny {
					t.Fatalf("deny %+v became %+v with more bytes", v, w)
				}
			}
		}
	})
}

// TestCoAPCaptures judges the shared LwM2M capture's client datagrams: a
// registration (POST /rd) and piggybacked responses to the server's reads.
func TestCoAPCaptures(t *testing.T) {
	payloads, _ := capturedPayloads(t, "iot/tcpdump_coap.pcap", 5683)
	allow := mustCoAP(t, CoAPConstraint{Methods: []string{"POST"}, Paths: []string{"/rd"}})
	getOnly := mustCoAP(t, CoAPConstraint{Methods: []string{"GET"}})
	otherPath := mustCoAP(t, CoAPConstraint{Paths: []string{"/bs"}})
	var path []byte
	for i, p := range payloads {
		if v := allow.Check(p); v.Outcome != Pass {
			t.Errorf("datagram %d: %+v", i, v)
		}
		if i == 0 {
			path = allow.AppendName(path, p)
			if v := getOnly.Check(p); v.Outcome != Deny || v.Reason != reasonCoAPMethod || v.Code != CoAPPost {
				t.Errorf("registration under GET only: %+v", v)
			}
			if v := otherPath.Check(p); v.Outcome != Deny || v.Reason != reasonCoAPPath {
				t.Errorf("registration under /bs only: %+v", v)
			}
		}
	}
	if string(path) != "/rd" {
		t.Errorf("registration path %q", path)
	}
}

func FuzzCoAPCheck(f *testing.F) {
	if _, ok := testpcaps.Find(); ok {
		for _, name := range []string{"iot/tcpdump_coap.pcap"} {
			payloads, _ := capturedPayloads(f, name, 5683)
			for _, p := range payloads {
				f.Add(p)
			}
		}
	}
	f.Add(coapMsg(0, CoAPGet, "tk", append(coapPath("sensors", "temp"), coapOpt{300, "x"}), "p"))
	k := mustCoAP(f, CoAPConstraint{Methods: []string{"GET"}, Paths: []string{"/sensors/*", "/fw/**"}})
	f.Fuzz(func(t *testing.T, data []byte) {
		v := k.Check(data)
		if v.Used != 0 || ((v.Outcome == Deny || v.Outcome == Mismatch) && v.Reason == "") || v.Outcome == More {
			t.Fatalf("%+v", v)
		}
		m, err := ParseCoAP(data)
		if err != nil && v.Outcome != Mismatch {
			t.Fatalf("parse error %v, verdict %+v", err, v)
		}
		if err == nil && v.Outcome == Pass && m.IsRequest() {
			// An allowed request's path has the shape a pattern allows.
			if _, ok := CoAPMethod(coapMethodNames[m.Code]); !ok || m.Code != CoAPGet {
				t.Fatalf("method %d passed", m.Code)
			}
		}
		_ = k.AppendName(nil, data)
	})
}
