package learn

import (
	"cmp"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// frame is one Ethernet frame a test capture holds.
type frame struct {
	at             time.Duration // after the capture's start
	srcMAC, dstMAC string
	src, dst       string
	proto          layers.IPProtocol
	sport, dport   uint16
	syn, ack       bool
	payload        int
	data           []byte // the payload itself, when set (payload is then ignored)
}

var captureStart = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

// writeCapture writes frames as a classic Ethernet pcap at path.
func writeCapture(t testing.TB, path string, frames []frame) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	frames = slices.Clone(frames)
	slices.SortStableFunc(frames, func(a, b frame) int { return cmp.Compare(a.at, b.at) })
	for _, fr := range frames {
		data := serializeFrame(t, fr)
		ci := gopacket.CaptureInfo{Timestamp: captureStart.Add(fr.at), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
}

func serializeFrame(t testing.TB, fr frame) []byte {
	t.Helper()
	src, dst := netip.MustParseAddr(fr.src), netip.MustParseAddr(fr.dst)
	smac, _ := net.ParseMAC(fr.srcMAC)
	dmac, _ := net.ParseMAC(fr.dstMAC)
	eth := &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}
	var ip gopacket.NetworkLayer
	if src.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: fr.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	} else {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: fr.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	var tl []gopacket.SerializableLayer
	switch fr.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(fr.sport), DstPort: layers.TCPPort(fr.dport), SYN: fr.syn, ACK: fr.ack, Window: 1024}
		tcp.SetNetworkLayerForChecksum(ip)
		tl = append(tl, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(fr.sport), DstPort: layers.UDPPort(fr.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		tl = append(tl, udp)
	}
	data := fr.data
	if data == nil {
		data = make([]byte, fr.payload)
	}
	tl = append(tl, gopacket.Payload(data))
	buf := gopacket.NewSerializeBuffer()
	all := append([]gopacket.SerializableLayer{eth, ip.(gopacket.SerializableLayer)}, tl...)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Addresses of the generated captures.
const (
	routerMAC = "02:00:00:00:00:01"
	plugAMAC  = "02:00:00:00:00:21"
	plugBMAC  = "02:00:00:00:00:22"
	camMAC    = "02:00:00:00:00:31"
	nvrMAC    = "02:00:00:00:00:40"
	scanMAC   = "02:00:00:00:00:66"
	plugA     = "10.77.0.21"
	plugB     = "10.77.0.22"
	cam       = "10.77.0.31"
	nvr       = "10.77.0.40"
	scanner   = "10.77.0.66"
	cloud     = "203.0.113.5"
	ntp       = "203.0.113.9"
)

// tcpConn is a whole small TCP connection: handshake, a request of req
// bytes and an answer of resp bytes. The client's MAC is cmac; its peer
// answers from pmac (the router for the internet).
func tcpConn(at time.Duration, cmac, pmac, client, server string, sport, dport uint16, req, resp int) []frame {
	ms := time.Millisecond
	return []frame{
		{at: at, srcMAC: cmac, dstMAC: pmac, src: client, dst: server, proto: layers.IPProtocolTCP, sport: sport, dport: dport, syn: true},
		{at: at + ms, srcMAC: pmac, dstMAC: cmac, src: server, dst: client, proto: layers.IPProtocolTCP, sport: dport, dport: sport, syn: true, ack: true},
		{at: at + 2*ms, srcMAC: cmac, dstMAC: pmac, src: client, dst: server, proto: layers.IPProtocolTCP, sport: sport, dport: dport, ack: true, payload: req},
		{at: at + 3*ms, srcMAC: pmac, dstMAC: cmac, src: server, dst: client, proto: layers.IPProtocolTCP, sport: dport, dport: sport, ack: true, payload: resp},
	}
}

// udpExchange is one datagram of size bytes each way.
func udpExchange(at time.Duration, cmac, pmac, client, server string, sport, dport uint16, size int) []frame {
	return []frame{
		{at: at, srcMAC: cmac, dstMAC: pmac, src: client, dst: server, proto: layers.IPProtocolUDP, sport: sport, dport: dport, payload: size},
		{at: at + time.Millisecond, srcMAC: pmac, dstMAC: cmac, src: server, dst: client, proto: layers.IPProtocolUDP, sport: dport, dport: sport, payload: size},
	}
}

// homeTraffic is ten minutes of two plugs that do the same things (the
// cloud on tcp/8883, NTP) and a camera streaming to its NVR.
func homeTraffic() []frame {
	var out []frame
	for i := 0; i < 10; i++ {
		at := time.Duration(i) * time.Minute
		for j, p := range []struct{ mac, ip string }{{plugAMAC, plugA}, {plugBMAC, plugB}} {
			sport := uint16(40000 + 10*i + j)
			out = append(out, tcpConn(at+time.Duration(j)*time.Second, p.mac, routerMAC, p.ip, cloud, sport, 8883, 300, 500)...)
			out = append(out, udpExchange(at+time.Duration(j)*time.Second+10*time.Second, p.mac, routerMAC, p.ip, ntp, sport, 123, 48)...)
		}
		out = append(out, tcpConn(at+20*time.Second, camMAC, nvrMAC, cam, nvr, uint16(50000+i), 554, 200, 1200)...)
	}
	return out
}
