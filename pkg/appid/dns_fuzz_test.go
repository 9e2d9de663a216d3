package appid

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/packet"
)

// dnsCaptures are the shared captures with DNS in them.
var dnsCaptures = []string{"iot/iotsentinel_hue-bridge_setup.pcap", "iot/iotsentinel_tplink-hs110-plug_setup.pcap"}

// captureDNS returns the DNS payloads (UDP port 53) of the shared captures,
// none when they are absent.
func captureDNS(tb testing.TB) [][]byte {
	tb.Helper()
	dir, ok := testpcaps.Find()
	if !ok {
		return nil
	}
	var out [][]byte
	for _, name := range dnsCaptures {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		rd, err := capture.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		var p packet.Packet
		for {
			if _, err := rd.Next(&p); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				continue
			}
			if p.Kind == packet.KindOK && p.Proto == packet.ProtoUDP && (p.SrcPort == 53 || p.DstPort == 53) {
				out = append(out, append([]byte(nil), p.Payload...))
			}
		}
		f.Close()
	}
	return out
}

func TestDNSParseCaptures(t *testing.T) {
	msgs := captureDNS(t)
	if len(msgs) == 0 {
		t.Skip("shared captures with DNS not present")
	}
	var m DNSMessage
	answers := 0
	for i, msg := range msgs {
		if err := m.Parse(msg); err != nil {
			t.Errorf("message %d: %v", i, err)
			continue
		}
		if m.Header.Response() && m.NAddrs > 0 {
			answers++
		}
	}
	if answers == 0 {
		t.Errorf("no answer with addresses in %d DNS messages", len(msgs))
	}
}

func FuzzDNSParse(f *testing.F) {
	for _, msg := range captureDNS(f) {
		f.Add(msg)
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4})
	check := NewDNS(DNSConfig{Names: NewNameSet([]string{"*.tplinkcloud.com", "bridge.meethue.com"}), MaxName: 60, MaxEntropy: 4.2})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if v := check.Check(msg); v.Outcome != Pass && v.Outcome != Deny && v.Outcome != Mismatch {
			t.Fatalf("a datagram checker answered %v", v.Outcome)
		}
		var m DNSMessage
		if err := m.Parse(msg); err != nil {
			return
		}
		if m.NAddrs > MaxDNSAddrs || len(m.Question.Bytes()) > MaxDNSName {
			t.Fatalf("bounds broken: %d addresses, name of %d", m.NAddrs, len(m.Question.Bytes()))
		}
		for _, c := range m.Question.Bytes() {
			if c <= ' ' || c >= 0x7f || ('A' <= c && c <= 'Z') {
				t.Fatalf("name byte %#x in %q", c, m.Question.Bytes())
			}
		}
		for _, a := range m.Addrs[:m.NAddrs] {
			if !a.Addr.IsValid() {
				t.Fatalf("invalid address")
			}
		}
	})
}
