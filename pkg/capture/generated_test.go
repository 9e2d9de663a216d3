package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"github.com/picoseg/picoseg/internal/testpcaps"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/picoseg/picoseg/pkg/packet"
)

var (
	camIP = net.IP{192, 168, 10, 20}
	nvrIP = net.IP{192, 168, 20, 5}
	cam6  = net.ParseIP("fd00:10::20")
	nvr6  = net.ParseIP("fd00:20::5")
	t0    = time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
)

// frame builds an Ethernet/IPv4/TCP frame to the NVR's RTSP port, from a
// camera source port that numbers the packet.
func frame(t testing.TB, sport uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: camIP, DstIP: nvrIP, Protocol: layers.IPProtocolTCP}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 554, SYN: true, Window: 1024}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x0c}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		EthernetType: layers.EthernetTypeIPv4}, ip, tcp)
}

// rawUDP6 builds a raw IPv6/UDP packet (no link header).
func rawUDP6(t testing.TB, sport uint16) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: cam6, DstIP: nvr6, NextHeader: layers.IPProtocolUDP}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 5683}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, udp, gopacket.Payload("coap"))
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ci(i int, data []byte) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
}

// writePcap writes n camera frames as a classic pcap.
func writePcap(t testing.TB, n int, nanos bool, link layers.LinkType) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		f := frame(t, uint16(40000+i))
		if err := w.WritePacket(ci(i, f), f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writeMixedPcapng writes a pcapng whose two interfaces have different link
// types: Ethernet frames on interface 0, raw IPv6 packets on interface 1.
func writeMixedPcapng(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "br-lan", LinkType: layers.LinkTypeEthernet, SnapLength: 65535},
		pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		data := frame(t, uint16(40000+i))
		info := ci(i, data)
		if i%2 == 1 {
			data = rawUDP6(t, uint16(50000+i))
			info = ci(i, data)
			info.InterfaceIndex = raw
		}
		if err := w.WritePacket(info, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// toBigEndian rewrites a little-endian classic pcap in big-endian order.
func toBigEndian(t testing.TB, le []byte) []byte {
	t.Helper()
	be := append([]byte(nil), le...)
	swap32 := func(b []byte) { binary.BigEndian.PutUint32(b, binary.LittleEndian.Uint32(b)) }
	swap16 := func(b []byte) { binary.BigEndian.PutUint16(b, binary.LittleEndian.Uint16(b)) }
	swap32(be[0:4])
	swap16(be[4:6])
	swap16(be[6:8])
	for _, off := range []int{8, 12, 16, 20} {
		swap32(be[off : off+4])
	}
	for off := 24; off < len(be); {
		capLen := int(binary.LittleEndian.Uint32(le[off+8:]))
		for i := range 4 {
			swap32(be[off+4*i : off+4*i+4])
		}
		off += 16 + capLen
	}
	return be
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGeneratedCaptures(t *testing.T) {
	t.Parallel()
	const n = 6
	tests := []struct {
		name  string
		data  []byte
		link  LinkType
		nanos bool
	}{
		{"pcap microseconds", writePcap(t, n, false, layers.LinkTypeEthernet), LinkEthernet, false},
		{"pcap nanoseconds", writePcap(t, n, true, layers.LinkTypeEthernet), LinkEthernet, true},
		{"pcap big-endian", toBigEndian(t, writePcap(t, n, false, layers.LinkTypeEthernet)), LinkEthernet, false},
		{"pcap gzip", gzipped(t, writePcap(t, n, false, layers.LinkTypeEthernet)), LinkEthernet, false},
		{"pcapng two link types", writeMixedPcapng(t, n), LinkEthernet, true},
		{"pcapng gzip", gzipped(t, writeMixedPcapng(t, n)), LinkEthernet, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Files in a temporary directory: the magic decides, not the
			// name, so every one is called .pcap.
			path := filepath.Join(t.TempDir(), "capture.pcap")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.LinkType() != tt.link {
				t.Errorf("link type %v, want %v", r.LinkType(), tt.link)
			}
			got, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d packets, want %d", len(got), n)
			}
			mixed := strings.HasPrefix(tt.name, "pcapng")
			for i, g := range got {
				wantTS := t0.Add(time.Duration(i) * time.Millisecond)
				if !g.ts.Equal(wantTS) {
					t.Errorf("packet %d: timestamp %v, want %v", i, g.ts, wantTS)
				}
				if mixed && i%2 == 1 {
					expect(t, g, "fd00:10::20", "fd00:20::5", packet.ProtoUDP, uint16(50000+i), 5683)
					if g.iface != 1 {
						t.Errorf("packet %d: interface %d, want 1", i, g.iface)
					}
					continue
				}
				expect(t, g, "192.168.10.20", "192.168.20.5", packet.ProtoTCP, uint16(40000+i), 554)
			}
			if st := r.Stats(); st.Packets != n || st.Kind(packet.KindOK) != n {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestTruncatedCapture cuts captures inside their last record: the packets
// before it are read, then a CorruptError that names the record, then the
// same error again.
func TestTruncatedCapture(t *testing.T) {
	t.Parallel()
	const n = 5
	pcap := writePcap(t, n, false, layers.LinkTypeEthernet)
	lastRecord := len(pcap) - (16 + len(frame(t, 0)))
	ng := writeMixedPcapng(t, n)
	lastBlock := len(ng) - int(binary.LittleEndian.Uint32(ng[len(ng)-4:]))
	cases := []struct {
		name string
		data []byte
		good int
	}{
		{"pcap cut inside the last record's data", pcap[:len(pcap)-5], n - 1},
		{"pcap cut inside the last record's header", pcap[:lastRecord+7], n - 1},
		{"pcap cut right after the last record's header", pcap[:lastRecord+16], n - 1},
		{"pcapng cut inside the last block", ng[:len(ng)-3], n - 1},
		{"pcapng cut inside the last block header", ng[:lastBlock+5], n - 1},
		{"pcapng cut inside the last block body", ng[:lastBlock+30], n - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cut.pcap")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := readAll(t, r)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("after %d packets: error %v, want a *CorruptError", len(got), err)
			}
			if len(got) != c.good || ce.Index != c.good {
				t.Errorf("%d good packets, error at record %d; want %d and %d", len(got), ce.Index, c.good, c.good)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("cause %v, want io.ErrUnexpectedEOF", ce.Err)
			}
			for i, g := range got {
				if g.kind != packet.KindOK {
					t.Errorf("packet %d before the cut: %v", i, g.kind)
				}
			}
			var p packet.Packet
			if _, again := r.Next(&p); again != err || p.Kind != packet.KindMalformed {
				t.Errorf("next call: %v with kind %v, want the same error and kind malformed", again, p.Kind)
			}
		})
	}
}

func TestCorruptCaptures(t *testing.T) {
	t.Parallel()
	pcap := writePcap(t, 3, false, layers.LinkTypeEthernet)
	hugeRecord := append([]byte(nil), pcap...)
	binary.LittleEndian.PutUint32(hugeRecord[24+8:], MaxRecordLength+1)
	ng := writeMixedPcapng(t, 2)
	badTrailer := append([]byte(nil), ng...)
	badTrailer[len(badTrailer)-1] ^= 0xff
	badIface := append([]byte(nil), ng...)
	// The last block is an enhanced packet block; point it at interface 7.
	last := len(ng) - int(binary.LittleEndian.Uint32(ng[len(ng)-4:]))
	binary.LittleEndian.PutUint32(badIface[last+8:], 7)
	badLen := append([]byte(nil), ng...)
	binary.LittleEndian.PutUint32(badLen[last+4:], 13)
	cases := []struct {
		name, data []byte
		index      int
		msg        string
	}{
		{[]byte("record longer than the limit"), hugeRecord, 0, "more than the 262144-byte limit"},
		{[]byte("pcapng trailer mismatch"), badTrailer, 1, "does not match"},
		{[]byte("pcapng unknown interface"), badIface, 1, "interface 7"},
		{[]byte("pcapng block length not a multiple of 4"), badLen, 1, "invalid length 13"},
	}
	for _, c := range cases {
		t.Run(string(c.name), func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.data))
			if err != nil {
				t.Fatal(err)
			}
			_, err = readAll(t, r)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Index != c.index || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want a *CorruptError at record %d saying %q", err, c.index, c.msg)
			}
		})
	}
}

func TestNewReaderRejects(t *testing.T) {
	t.Parallel()
	pcap := writePcap(t, 1, false, layers.LinkTypeEthernet)
	badVersion := append([]byte(nil), pcap...)
	badVersion[4] = 3
	cases := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "empty input"},
		{"text file", []byte("# not a capture\n"), "unknown capture format"},
		{"two bytes", []byte{0xd4, 0xc3}, "too short"},
		{"pcap header cut short", pcap[:20], "pcap file header cut short"},
		{"pcap version 3", badVersion, "unsupported pcap version 3.4"},
		{"pcapng header cut short", writeMixedPcapng(t, 1)[:10], "pcapng section header"},
		{"gzip of nothing useful", gzipped(t, []byte("hello")), "unknown capture format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want one saying %q", err, c.msg)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.pcap")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

func TestUnsupportedLinkType(t *testing.T) {
	t.Parallel()
	data := writePcap(t, 3, false, layers.LinkType(147)) // LINKTYPE_USER0
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType().Supported() {
		t.Fatal("USER0 reported as supported")
	}
	var p packet.Packet
	for i := range 3 {
		_, err := r.Next(&p)
		var ule *UnsupportedLinkError
		if !errors.Is(err, ErrUnsupportedLink) || !errors.As(err, &ule) || ule.Index != i || ule.LinkType != 147 {
			t.Fatalf("packet %d: error %v, want an UnsupportedLinkError", i, err)
		}
		if p.Kind != packet.KindMalformed {
			t.Errorf("packet %d: kind %v, want malformed", i, p.Kind)
		}
		if len(r.Frame().Data) == 0 {
			t.Errorf("packet %d: no frame data", i)
		}
	}
	if _, err := r.Next(&p); err != io.EOF {
		t.Errorf("end: %v, want io.EOF", err)
	}
	if st := r.Stats(); st.Packets != 3 || st.UnsupportedLink != 3 || st.Kind(packet.KindOK) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	r, err := NewReader(bytes.NewReader(writePcap(t, 2, false, layers.LinkTypeEthernet)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, r); err != nil || len(got) != 2 {
		t.Fatalf("first capture: %d packets, %v", len(got), err)
	}
	if err := r.Reset(bytes.NewReader(writeMixedPcapng(t, 3))); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, r); err != nil || len(got) != 3 || r.Stats().Packets != 3 {
		t.Fatalf("second capture: %d packets, %v, stats %+v", len(got), err, r.Stats())
	}
	err = r.Reset(strings.NewReader("not a capture"))
	var p packet.Packet
	if _, again := r.Next(&p); err == nil || again != err || r.LinkType() != 0 {
		t.Errorf("after a failed Reset: Reset %v, Next %v", err, again)
	}
}

func TestLinkTypeNames(t *testing.T) {
	t.Parallel()
	for l, want := range map[LinkType]string{LinkEthernet: "ethernet", LinkLinuxSLL2: "linux-sll2", 147: "linktype-147"} {
		if got := l.String(); got != want {
			t.Errorf("%d: %q, want %q", uint16(l), got, want)
		}
	}
	for _, l := range []LinkType{LinkNull, LinkEthernet, LinkRawBSD, LinkRawOBSD, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkNFLOG, LinkLinuxSLL2} {
		if !l.Supported() {
			t.Errorf("%v not supported", l)
		}
	}
	if len(Stats{}.ByKind) <= int(packet.KindMalformed) {
		t.Error("Stats.ByKind has no room for every packet.Kind")
	}
}

func TestRawIPv4OnlyLinkType(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkType(LinkIPv4)); err != nil {
		t.Fatal(err)
	}
	v6 := rawUDP6(t, 1)
	if err := w.WritePacket(ci(0, v6), v6); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var p packet.Packet
	if _, err := r.Next(&p); err != nil || p.Kind != packet.KindMalformed {
		t.Errorf("IPv6 in LINKTYPE_IPV4: %v, %v; want malformed", p.Kind, err)
	}
}

func TestNextNoAllocs(t *testing.T) {
	data := writePcap(t, 2000, false, layers.LinkTypeEthernet)
	ng := writeMixedPcapng(t, 2000)
	for name, d := range map[string][]byte{"pcap": data, "pcapng": ng} {
		t.Run(name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(d))
			if err != nil {
				t.Fatal(err)
			}
			var p packet.Packet
			if _, err := r.Next(&p); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(1000, func() {
				if _, err := r.Next(&p); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("%v allocations per packet, want 0", n)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	f.Add(writePcap(f, 3, false, layers.LinkTypeEthernet))
	f.Add(writePcap(f, 2, true, layers.LinkTypeEthernet))
	f.Add(toBigEndian(f, writePcap(f, 2, false, layers.LinkTypeEthernet)))
	f.Add(writeMixedPcapng(f, 3))
	if dir, ok := testpcaps.Find(); ok {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.pcap*"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil && len(b) < 16<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var p packet.Packet
		// Every record consumes at least 8 bytes, so a reader that does not
		// end within len(data) calls is stuck.
		for range len(data) + 1 {
			_, err := r.Next(&p)
			if err == io.EOF {
				return
			}
			var ce *CorruptError
			if errors.As(err, &ce) {
				if _, again := r.Next(&p); again != err {
					t.Fatalf("corrupt error not sticky: %v then %v", err, again)
				}
				return
			}
			if err == nil && len(r.Frame().Data) > MaxRecordLength {
				t.Fatalf("record of %d bytes", len(r.Frame().Data))
			}
			if err == nil && p.Kind == packet.KindOK && (!p.Src.IsValid() || p.Src.Is4() != p.Dst.Is4()) {
				t.Fatalf("ok packet with addresses %v -> %v", p.Src, p.Dst)
			}
		}
		t.Fatalf("reader did not end within %d records", len(data)+1)
	})
}

// BenchmarkReplayIoT reads and decodes the shared IoT captures from memory,
// as `picoseg replay` would before the engine: the budget is well under
// 500 ns per packet.
func BenchmarkReplayIoT(b *testing.B) {
	dir := sharedPcaps(b)
	files, _ := filepath.Glob(filepath.Join(dir, "iot", "*.pcap*"))
	var captures [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		captures = append(captures, data)
	}
	if len(captures) == 0 {
		b.Skip("no IoT captures")
	}
	var p packet.Packet
	var packets, ok int
	r, err := NewReader(bytes.NewReader(captures[0]))
	if err != nil {
		b.Fatal(err)
	}
	var in bytes.Reader
	b.ReportAllocs()
	for b.Loop() {
		for _, data := range captures {
			in.Reset(data)
			if err := r.Reset(&in); err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Next(&p); err != nil {
					if err != io.EOF {
						b.Fatal(err)
					}
					break
				}
				packets++
				if p.Kind == packet.KindOK {
					ok++
				}
			}
		}
	}
	if ok == 0 {
		b.Fatal("no packet decoded")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
	b.ReportMetric(float64(packets)/float64(b.N), "packets/op")
}
