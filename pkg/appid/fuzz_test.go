package appid

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/packet"
)

// captureSeeds adds the client payloads to port of the shared captures as
// seeds, each payload alone and each flow's first bytes joined.
func captureSeeds(f *testing.F, port uint16, files ...string) {
	dir, ok := testpcaps.Find()
	if !ok {
		return
	}
	for _, name := range files {
		rd, err := capture.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var p packet.Packet
		stream := map[uint16][]byte{}
		for {
			if _, err := rd.Next(&p); err != nil {
				break
			}
			if p.Kind != packet.KindOK || p.DstPort != port || len(p.Payload) == 0 {
				continue
			}
			f.Add(append([]byte(nil), p.Payload...))
			if s := stream[p.SrcPort]; len(s) < 4096 {
				stream[p.SrcPort] = append(s, p.Payload...)
			}
		}
		rd.Close()
		for _, s := range stream {
			f.Add(s)
		}
	}
}

// checkFuzz holds for every checker and input: no panic, a known outcome,
// Used within the data, Name inside the data, and a decision that more
// bytes do not change.
func checkFuzz(t *testing.T, c Checker, data []byte) {
	v := c.Check(data)
	if v.Outcome > Deny {
		t.Fatalf("outcome %d", v.Outcome)
	}
	if v.Used < 0 || v.Used > len(data) && v.Outcome == Pass {
		t.Fatalf("used %d of %d", v.Used, len(data))
	}
	if v.Name != nil && !bytes.Contains(data, v.Name) {
		t.Fatalf("name %q not in data", v.Name)
	}
	if (v.Outcome == Deny || v.Outcome == Mismatch) && v.Reason == "" {
		t.Fatalf("%v without a reason", v.Outcome)
	}
	if v.Outcome == More {
		return
	}
	w := c.Check(append(append([]byte(nil), data...), "\r\n\r\nGET / HTTP/1.1\x16\x03\x01"...))
	if w.Outcome != v.Outcome {
		t.Fatalf("decision %v %q became %v %q with more bytes", v.Outcome, v.Reason, w.Outcome, w.Reason)
	}
}

func FuzzTLS(f *testing.F) {
	f.Add(records(handHello(sniExt("hue.example")), 7))
	f.Add(records(handHello(sniExt("a.example.com"), ext{typ: 0xfe0d, body: []byte{1}}), 1000))
	f.Add(goClientHello(f, "a.example.com"))
	captureSeeds(f, 50443, "iot/iotsentinel_tplink-hs110-plug_setup.pcap")
	c := tlsChecker([]string{"*.example.com"}, Refuse, Refuse)
	f.Fuzz(func(t *testing.T, data []byte) { checkFuzz(t, c, data) })
}

func FuzzHTTP(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n"))
	f.Add([]byte("CONNECT a:443 HTTP/1.1\r\n\r\n"))
	captureSeeds(f, 80, "iot/iotsentinel_hue-bridge_setup.pcap", "general/gopacket_test_ethernet.pcap")
	c := NewHTTP(HTTPConfig{Hosts: NewNameSet([]string{"hue.example", "*.meethue.com"}), Methods: []string{"GET"}})
	f.Fuzz(func(t *testing.T, data []byte) { checkFuzz(t, c, data) })
}

func FuzzModbus(f *testing.F) {
	f.Add(adu(1, 1, 3, 0, 0, 0, 1))
	f.Add(adu(1, 1, 43, 14, 1, 0))
	captureSeeds(f, 502, "ics/ndpi_modbus.pcap", "malformed/zeek_modbus_fuzz-72.pcap")
	c := NewModbus(ModbusConfig{Writes: []uint8{6}, Units: []uint8{1}})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFuzz(t, c, data)
		// Judged request by request, a stream never loops and never
		// skips a byte.
		for rest := data; len(rest) > 0; {
			v := c.Check(rest)
			if v.Outcome != Pass {
				break
			}
			if v.Used <= 0 || v.Used > len(rest) {
				t.Fatalf("used %d of %d", v.Used, len(rest))
			}
			rest = rest[v.Used:]
		}
	})
}
