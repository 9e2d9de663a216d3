package packet

import (
	"bytes"
	"github.com/picoseg/picoseg/internal/testpcaps"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// captureSeeds returns the frames of every shared capture, split into those
// that start with an Ethernet header and those that start with an IP header
// (raw-IP captures, and the IP part of Ethernet frames).
func captureSeeds(t testing.TB) (ethernet, ip [][]byte) {
	t.Helper()
	dir, ok := testpcaps.Find()
	if !ok {
		return nil, nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.pcap*"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		type source interface {
			ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		}
		var src source
		var link layers.LinkType
		if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
			r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
			if err != nil {
				continue
			}
			src, link = r, r.LinkType()
		} else {
			r, err := pcapgo.NewReader(bytes.NewReader(data))
			if err != nil {
				continue
			}
			src, link = r, r.LinkType()
		}
		for {
			frame, _, err := src.ReadPacketData()
			if err != nil {
				break
			}
			switch link {
			case layers.LinkTypeEthernet:
				ethernet = append(ethernet, frame)
				if len(frame) > 14 {
					ip = append(ip, frame[14:])
				}
			case layers.LinkTypeRaw, 12, 14:
				ip = append(ip, frame)
			}
		}
	}
	return ethernet, ip
}

func generatedSeeds(t testing.TB) (ethernet, ip [][]byte) {
	ethernet = [][]byte{
		tcp4Frame(t),
		serialize(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4}, ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2)),
		serialize(t, eth(layers.EthernetTypeIPv4), ip4(outer4[0], outer4[1], layers.IPProtocolIPv4), ip4(cam4, nvr4, layers.IPProtocolTCP), tcpSYN(1, 2)),
		serialize(t, eth(layers.EthernetTypeARP), payload(string(make([]byte, 28)))),
	}
	ip = [][]byte{
		udp6Packet(t),
		serialize(t, ip6(cam6, nvr6, layers.IPProtocolIPv6HopByHop), ext(layers.IPProtocolIPv6Routing, 0),
			ext(layers.IPProtocolIPv6Fragment, 0), fragHdr(layers.IPProtocolTCP, 0, true), tcpSYN(1, 2)),
		serialize(t, ip4(outer4[0], outer4[1], layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4},
			ip4(cam4, nvr4, layers.IPProtocolUDP), udp(1, 2)),
		serialize(t, ip4(cam4, nvr4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}),
	}
	// Queries with identifiers, errors quoting whole and cut headers.
	ip = append(ip, icmpSeeds(t)...)
	return ethernet, ip
}

// checkDecoded holds for every input: a known kind, a trustworthy address
// pair on KindOK, and the same answer from a fresh decoder (no state leaks
// from one packet into the next).
func checkDecoded(t *testing.T, decode decodeFunc, shared *Decoder, data []byte) {
	var p, fresh Packet
	decode(shared, data, &p)
	decode(NewDecoder(), data, &fresh)
	if !samePacket(&p, &fresh) {
		t.Fatalf("shared decoder %+v, fresh decoder %+v", p, fresh)
	}
	if p.Kind > KindMalformed {
		t.Fatalf("unknown kind %d", p.Kind)
	}
	if p.Kind == KindOK {
		if !p.Src.IsValid() || !p.Dst.IsValid() || p.Src.Is4() != p.Dst.Is4() {
			t.Fatalf("ok packet with addresses %v -> %v", p.Src, p.Dst)
		}
		if p.Length < 20 || int(p.Length) > len(data) {
			t.Fatalf("ok packet with length %d from %d bytes", p.Length, len(data))
		}
	}
	if p.Kind != KindOK && (p.SrcPort|p.DstPort|uint16(p.TCPFlags)|uint16(p.ICMPType)|uint16(p.ICMPCode)|p.ICMPID) != 0 {
		t.Fatalf("%v packet carries ports %d -> %d", p.Kind, p.SrcPort, p.DstPort)
	}
	if p.Quoted.Valid {
		// A quote is only read from a whole ICMP error, and it names a
		// flow: two addresses of the error's own IP version.
		if role, _ := ICMPRoleOf(p.Proto, p.ICMPType); p.Kind != KindOK || role != ICMPError {
			t.Fatalf("%v packet, ICMP type %d, carries a quote", p.Kind, p.ICMPType)
		}
		if !p.Quoted.Src.IsValid() || p.Quoted.Src.Is4() != p.Quoted.Dst.Is4() {
			t.Fatalf("quote with addresses %v -> %v", p.Quoted.Src, p.Quoted.Dst)
		}
	} else if p.Quoted != (Quote{}) {
		t.Fatalf("invalid quote with fields set: %+v", p.Quoted)
	}
}

func FuzzDecodeEthernet(f *testing.F) {
	gen, _ := generatedSeeds(f)
	for _, s := range gen {
		f.Add(s)
	}
	// Real frames from the shared captures, when present; the generated
	// seeds run either way.
	ethernet, _ := captureSeeds(f)
	for _, s := range ethernet {
		f.Add(s)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, viaEthernet, d, data)
		checkDecoded(t, viaSLL, d, data)
		checkDecoded(t, viaSLL2, d, data)
		checkDecoded(t, viaLoopback, d, data)
		checkDecoded(t, viaNFLOG, d, data)
	})
}

func FuzzDecodeIP(f *testing.F) {
	_, gen := generatedSeeds(f)
	for _, s := range gen {
		f.Add(s)
	}
	_, ip := captureSeeds(f)
	for _, s := range ip {
		f.Add(s)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, viaIP, d, data)
	})
}
