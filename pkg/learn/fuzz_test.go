package learn

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// Pools the fuzzer draws frames from: devices of the local zone with and
// without usable MACs, a router, the internet, multicast and broadcast,
// IPv6 link-local and unique local addresses.
var (
	fuzzMACs  = []string{plugAMAC, plugBMAC, camMAC, nvrMAC, routerMAC, "00:00:00:00:00:00", "01:00:5e:00:00:fb", "ff:ff:ff:ff:ff:ff"}
	fuzzAddrs = []string{plugA, plugB, cam, nvr, cloud, ntp, "224.0.0.251", "255.255.255.255", "10.255.255.255", "0.0.0.0", "192.168.1.1"}
	fuzzAddr6 = []string{"fe80::21", "fd00::21", "fd00::22", "ff02::fb", "2001:db8::1", "::1"}
	fuzzProto = []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolTCP, 47}
)

// framesOf turns fuzz input into frames, six bytes a frame.
func framesOf(data []byte) []frame {
	var out []frame
	at := time.Duration(0)
	for len(data) >= 6 && len(out) < 400 {
		b := data[:6]
		data = data[6:]
		at += time.Duration(b[5]) * 100 * time.Millisecond
		fr := frame{at: at, srcMAC: fuzzMACs[int(b[0]>>4)%len(fuzzMACs)], dstMAC: fuzzMACs[int(b[0]&15)%len(fuzzMACs)],
			proto: fuzzProto[int(b[3]>>6)%len(fuzzProto)], sport: 40000 + uint16(b[3]&7), dport: uint16(b[4]) % 32,
			syn: b[3]&8 != 0, ack: b[3]&16 != 0, payload: int(b[3]&32) * 20}
		if b[1]&128 != 0 {
			fr.src, fr.dst = fuzzAddr6[int(b[1]&127)%len(fuzzAddr6)], fuzzAddr6[int(b[2])%len(fuzzAddr6)]
		} else {
			fr.src, fr.dst = fuzzAddrs[int(b[1])%len(fuzzAddrs)], fuzzAddrs[int(b[2])%len(fuzzAddrs)]
		}
		if fr.dport == 31 {
			fuzzDNS(&fr, b)
		}
		out = append(out, fr)
	}
	return out
}

// fuzzNames are the names the fuzzer's DNS messages ask for.
var fuzzNames = []string{"cloud.example.com", "0.pool.example.org", "1.pool.example.org", "b.example.com"}

// fuzzDNS makes fr a DNS message over UDP: a query from its source, or
// (b[3]&32) an answer from its source giving one or two of the internet
// addresses for a name. Identifiers follow the name, so that answers and
// queries meet often.
func fuzzDNS(fr *frame, b []byte) {
	fr.proto = layers.IPProtocolUDP
	n := int(b[5]) % len(fuzzNames)
	id := uint16(n + 1)
	if b[3]&32 == 0 {
		fr.dport, fr.data = 53, dnsQueryMsg(id, fuzzNames[n])
		return
	}
	addrs := []string{cloud, ntp}[:1+int(b[4]>>7)]
	if b[4]&64 != 0 {
		addrs[0] = ntp
	}
	fr.sport, fr.dport = 53, 40000+uint16(b[3]&7)
	fr.data = dnsAnswerMsg(id, fuzzNames[n], uint32(b[4]>>5), addrs...)
}

// FuzzLearn learns from arbitrary traffic of a small network: whatever it
// saw, the proposal loads as `check` loads it, within the pico classes
// the mark mask holds; replayed against it, the same traffic has every
// flow of its devices accepted but those it leaves out on purpose; and
// learning it twice writes the same bytes.
func FuzzLearn(f *testing.F) {
	f.Add([]byte("\x12\x00\x04\x08\x10\x01\x21\x04\x00\x10\x10\x01\x13\x80\x03\x00\x05\x01"))
	f.Add(bytes.Repeat([]byte("\x45\x01\x02\x08\x07\x00"), 40))
	f.Add([]byte("\x04\x81\x83\x40\x1f\x02\x40\x0a\x00\x48\x02\x03\x66\x02\x07\xc0\x03\x01"))
	// A plug asks for a name, is answered, and connects to the address.
	f.Add([]byte("\x04\x00\x0a\x40\x1f\x04\x40\x0a\x00\x60\x9f\x04\x04\x00\x04\x08\x10\x01\x04\x00\x05\x49\x11\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := framesOf(data)
		if len(frames) == 0 {
			return
		}
		capture := filepath.Join(t.TempDir(), "fuzz.pcap")
		writeCapture(t, capture, frames)
		p, text := learnFrom(t, basePolicy, Options{ScanPeers: 4, ScanPorts: 6}, capture)
		pol, _ := loadProposal(t, text)
		learnedAccepted(t, loadBase(t, basePolicy), pol, p, capture)
		if t.Failed() {
			t.Logf("\n%s", text)
		}
		if _, again := learnFrom(t, basePolicy, Options{ScanPeers: 4, ScanPorts: 6}, capture); !bytes.Equal(text, again) {
			t.Fatalf("two runs differ")
		}
		os.Remove(capture)
	})
}
