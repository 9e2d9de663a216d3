package capture

import (
	"errors"
	"github.com/picoseg/picoseg/internal/testpcaps"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

func sharedPcaps(t testing.TB) string { return testpcaps.Dir(t) }

// decoded is one packet as a test compares it.
type decoded struct {
	kind     packet.Kind
	src, dst netip.Addr
	proto    uint8
	sport    uint16
	dport    uint16
	vlan     uint16
	iface    int
	ts       time.Time
}

// readAll reads r to its end and returns the packets and the final error
// (nil at a clean end).
func readAll(t testing.TB, r *Reader) ([]decoded, error) {
	t.Helper()
	var out []decoded
	var p packet.Packet
	for {
		ts, err := r.Next(&p)
		if err == io.EOF {
			return out, nil
		}
		if errors.Is(err, ErrUnsupportedLink) {
			out = append(out, decoded{kind: 255, ts: ts})
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, decoded{kind: p.Kind, src: p.Src, dst: p.Dst, proto: p.Proto, sport: p.SrcPort,
			dport: p.DstPort, vlan: p.VLAN, iface: r.Frame().Interface, ts: ts})
	}
}

// TestSharedCaptures reads every shared capture to its end and checks what
// each one is known to hold (INDEX.md, and tcpdump -r).
func TestSharedCaptures(t *testing.T) {
	dir := sharedPcaps(t)
	type kinds = map[packet.Kind]uint64
	ok, notIP, frag, trunc, bad := packet.KindOK, packet.KindNotIP, packet.KindFragment, packet.KindTruncated, packet.KindMalformed
	want := map[string]struct {
		link    LinkType
		packets int
		kinds   kinds
		badTS   uint64
		check   func(t *testing.T, got []decoded)
	}{
		"general/gopacket_test_ethernet.pcap": {LinkEthernet, 10, kinds{ok: 10}, 0, nil},
		"general/gopacket_test_loopback.pcap": {LinkNull, 24, kinds{ok: 24}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "::1", "::1", packet.ProtoTCP, 58799, 8080)
		}},
		"general/ndpi_telnet.pcap": {LinkEthernet, 92, kinds{ok: 87, trunc: 5}, 0, nil},
		"general/tcpdump_LINKTYPE_RAW_ipv4.pcap": {LinkRaw, 1, kinds{ok: 1}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "192.168.1.100", "9.9.9.9", packet.ProtoUDP, 12345, 53)
		}},
		"general/zeek_icmp_dot1q.pcap": {LinkEthernet, 15, kinds{ok: 9, notIP: 6}, 0, func(t *testing.T, got []decoded) {
			for i, g := range got {
				if g.vlan != 123 {
					t.Errorf("packet %d: vlan %d, want 123", i, g.vlan)
				}
				if g.kind == ok && g.proto != packet.ProtoICMP {
					t.Errorf("packet %d: proto %d, want ICMP", i, g.proto)
				}
			}
			expect(t, got[4], "192.168.123.2", "192.168.123.1", packet.ProtoICMP, 0, 0)
		}},
		"general/zeek_linux_dlt_sll2.pcap": {LinkLinuxSLL2, 6, kinds{ok: 4, notIP: 2}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "192.0.2.1", "192.0.2.1", packet.ProtoICMP, 0, 0)
			expect(t, got[2], "fe80::8c36:6ff:fe44:acaf", "fe80::8c36:6ff:fe44:acaf", packet.ProtoICMPv6, 0, 0)
		}},
		"general/zeek_nflog-http.pcap": {LinkNFLOG, 13, kinds{ok: 13}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "10.0.2.15", "93.184.216.34", packet.ProtoTCP, 49762, 80)
		}},
		"general/zeek_pcapng-multi-interface.pcapng": {LinkEthernet, 6, kinds{ok: 6}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "172.17.0.2", "1.1.1.1", packet.ProtoUDP, 36343, 53)
			expect(t, got[3], "1.1.1.1", "10.0.0.4", packet.ProtoUDP, 53, 56351)
			if got[0].iface != 0 || got[3].iface != 1 {
				t.Errorf("interfaces %d and %d, want 0 and 1", got[0].iface, got[3].iface)
			}
			if w := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC); got[0].ts.Before(w) && got[0].ts.Year() < 2015 {
				t.Errorf("implausible pcapng timestamp %v", got[0].ts)
			}
		}},
		"ics/ndpi_bacnet.pcapng":                       {LinkEthernet, 23, kinds{ok: 23}, 0, nil},
		"ics/ndpi_modbus.pcap":                         {LinkEthernet, 102, kinds{ok: 102}, 0, nil},
		"ics/zeek_dnp3_read.pcap":                      {LinkEthernet, 10, kinds{ok: 10}, 0, nil},
		"iot/iotsentinel_hue-bridge_setup.pcap":        {LinkEthernet, 1513, kinds{ok: 1499, notIP: 14}, 0, nil},
		"iot/iotsentinel_tplink-hs110-plug_setup.pcap": {LinkEthernet, 52, kinds{ok: 45, notIP: 7}, 0, nil},
		"iot/ndpi_mqtt.pcapng":                         {LinkEthernet, 9, kinds{ok: 9}, 0, nil},
		"iot/tcpdump_coap.pcap": {LinkLinuxSLL, 14, kinds{ok: 14}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "::1", "::1", packet.ProtoUDP, 56830, 5683)
		}},
		"iot/zeek_mdns.pcap":                       {LinkEthernet, 24, kinds{ok: 24}, 0, nil},
		"iot/zeek_mqtt.pcap":                       {LinkEthernet, 19, kinds{ok: 19}, 0, nil},
		"malformed/arkime_empty.pcap":              {LinkEthernet, 0, kinds{}, 0, nil},
		"malformed/ndpi_badpackets.pcap":           {LinkEthernet, 93, kinds{trunc: 86, frag: 7}, 0, nil},
		"malformed/ndpi_fuzz-2006-06-26-2594.pcap": {LinkEthernet, 691, kinds{ok: 527, notIP: 78, frag: 26, trunc: 25, bad: 35}, 0, nil},
		"malformed/ndpi_malformed_dns.pcap":        {LinkEthernet, 6, kinds{ok: 6}, 0, nil},
		"malformed/ndpi_malformed_icmp.pcap": {LinkEthernet, 1, kinds{ok: 1}, 0, func(t *testing.T, got []decoded) {
			expect(t, got[0], "218.152.179.213", "218.152.179.54", packet.ProtoICMP, 0, 0)
		}},
		"malformed/tcpdump_ipv4_invalid_total_length.pcap": {LinkEthernet, 1, kinds{trunc: 1}, 0, nil},
		"malformed/tcpdump_ipv6_invalid_length.pcap":       {LinkEthernet, 1, kinds{trunc: 1}, 0, nil},
		"malformed/tcpdump_tcp_header_heapoverflow.pcap":   {LinkEthernet, 1, kinds{trunc: 1}, 0, nil},
		"malformed/tcpdump_timestamp_invalid_micro.pcap": {LinkLinuxSLL, 3, kinds{ok: 3}, 2, func(t *testing.T, got []decoded) {
			expect(t, got[0], "131.155.215.69", "137.116.81.94", packet.ProtoTCP, 46656, 80)
			// 1418145370 s + 1,000,000 µs carries into the next second.
			if w := time.Unix(1418145371, 0).UTC(); !got[1].ts.Equal(w) {
				t.Errorf("carried timestamp %v, want %v", got[1].ts, w)
			}
		}},
		"malformed/zeek_modbus_fuzz-72.pcap":       {LinkEthernet, 36, kinds{ok: 34, trunc: 2}, 0, nil},
		"malformed/zeek_tcp_truncated-header.pcap": {LinkEthernet, 24, kinds{ok: 23, trunc: 1}, 0, nil},
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, path := range files {
		name, _ := filepath.Rel(dir, path)
		name = filepath.ToSlash(name)
		if strings.HasSuffix(name, ".md") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := readAll(t, r)
			w, known := want[name]
			if !known {
				// A capture added later still has to read without panic.
				t.Logf("no expectations for %s: %d packets, err %v", name, len(got), err)
				return
			}
			seen++
			if err != nil {
				t.Fatalf("read error after %d packets: %v", len(got), err)
			}
			if r.LinkType() != w.link {
				t.Errorf("link type %v, want %v", r.LinkType(), w.link)
			}
			st := r.Stats()
			if len(got) != w.packets || st.Packets != uint64(w.packets) {
				t.Errorf("%d packets (stats %d), want %d", len(got), st.Packets, w.packets)
			}
			for k := packet.KindOK; k <= packet.KindMalformed; k++ {
				if st.Kind(k) != w.kinds[k] {
					t.Errorf("%v packets: %d, want %d", k, st.Kind(k), w.kinds[k])
				}
			}
			if st.BadTimestamps != w.badTS {
				t.Errorf("bad timestamps: %d, want %d", st.BadTimestamps, w.badTS)
			}
			for i, g := range got {
				if g.kind == packet.KindOK && (!g.src.IsValid() || g.src.Is4() != g.dst.Is4()) {
					t.Errorf("packet %d: ok with addresses %v -> %v", i, g.src, g.dst)
				}
			}
			if w.check != nil && len(got) == w.packets {
				w.check(t, got)
			}
		})
	}
	if seen < len(want) {
		t.Errorf("found %d of the %d expected captures", seen, len(want))
	}
}

func expect(t *testing.T, g decoded, src, dst string, proto uint8, sport, dport uint16) {
	t.Helper()
	if g.kind != packet.KindOK || g.src != netip.MustParseAddr(src) || g.dst != netip.MustParseAddr(dst) ||
		g.proto != proto || g.sport != sport || g.dport != dport {
		t.Errorf("got %v %v:%d > %v:%d proto %d, want ok %s:%d > %s:%d proto %d",
			g.kind, g.src, g.sport, g.dst, g.dport, g.proto, src, sport, dst, dport, proto)
	}
}
