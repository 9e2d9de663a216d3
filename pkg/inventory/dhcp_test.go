package inventory

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// dhcpMsg builds a DHCPv4 client message (a UDP payload) from chaddr with
// the given options, each written as code, length, value.
func dhcpMsg(chaddr [6]byte, opts ...[]byte) []byte {
	b := make([]byte, bootpFixedLen+4)
	b[0], b[1], b[2] = bootRequest, 1, 6
	copy(b[28:], chaddr[:])
	binary.BigEndian.PutUint32(b[bootpFixedLen:], dhcpCookie)
	b = append(b, 53, 1, 3) // DHCPREQUEST
	for _, o := range opts {
		b = append(b, o...)
	}
	return append(b, dhcpOptEnd)
}

func opt(code byte, val string) []byte { return append([]byte{code, byte(len(val))}, val...) }

// udp4 wraps a UDP payload in IPv4 and UDP headers.
func udp4(src, dst string, sport, dport uint16, payload []byte) []byte {
	ip := make([]byte, 28, 28+len(payload))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	binary.BigEndian.PutUint16(ip[24:], uint16(8+len(payload)))
	return append(ip, payload...)
}

func TestParseDHCPv4(t *testing.T) {
	const url = "https://mud.example.com/acme/cam-100.json"
	long := "https://mud.example.com/" + strings.Repeat("a", 200) // two options' worth, joined
	for _, tc := range []struct {
		name          string
		msg           []byte
		ok            bool
		url, hostname string
	}{
		{"MUD URL and hostname", dhcpMsg(camera, opt(12, "cam-1"), opt(161, url)), true, url, "cam-1"},
		{"no MUD URL", dhcpMsg(camera, opt(12, "cam-1")), true, "", "cam-1"},
		{"http is not kept", dhcpMsg(camera, opt(161, "http://mud.example.com/x.json")), true, "", ""},
		{"a file path is not kept", dhcpMsg(camera, opt(161, "/etc/shadow")), true, "", ""},
		{"user info is not kept", dhcpMsg(camera, opt(161, "https://u:p@mud.example.com/x")), true, "", ""},
		{"no host is not kept", dhcpMsg(camera, opt(161, "https:///x")), true, "", ""},
		{"a newline is not kept", dhcpMsg(camera, opt(161, "https://mud.example.com/x\nforged")), true, "", ""},
		{"a space is not kept", dhcpMsg(camera, opt(161, "https://mud.example.com/a b")), true, "", ""},
		{"a bad hostname is not kept", dhcpMsg(camera, opt(12, "cam\"1"), opt(161, url)), true, url, ""},
		{"split in two options (RFC 3396)", dhcpMsg(camera, opt(161, long[:120]), opt(161, long[120:])), true, long, ""},
		{"over 255 bytes in all", dhcpMsg(camera, opt(161, long[:120]), opt(161, long[120:]), opt(161, strings.Repeat("b", 100))), true, "", ""},
		{"an option cut short", append(dhcpMsg(camera, opt(12, "cam-1"))[:bootpFixedLen+4+3+7], 161, 40, 'h'), true, "", "cam-1"},
		{"pad options", dhcpMsg(camera, []byte{0, 0, 0}, opt(161, url)), true, url, ""},
		{"a reply (op 2)", func() []byte { b := dhcpMsg(camera, opt(161, url)); b[0] = 2; return b }(), false, "", ""},
		{"not Ethernet", func() []byte { b := dhcpMsg(camera, opt(161, url)); b[2] = 8; return b }(), false, "", ""},
		{"no magic cookie", func() []byte { b := dhcpMsg(camera, opt(161, url)); b[bootpFixedLen] = 0; return b }(), false, "", ""},
		{"too short", dhcpMsg(camera)[:100], false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, ok := ParseDHCPv4(tc.msg)
			if ok != tc.ok || req.MUDURL != tc.url || req.Hostname != tc.hostname {
				t.Errorf("got ok %v url %q hostname %q; want %v %q %q", ok, req.MUDURL, req.Hostname, tc.ok, tc.url, tc.hostname)
			}
			if ok && req.ClientMAC != camera {
				t.Errorf("chaddr %x", req.ClientMAC)
			}
		})
	}
}

func TestParseDHCPv4IP(t *testing.T) {
	msg := dhcpMsg(camera, opt(161, "https://mud.example.com/cam"))
	if req, ok := ParseDHCPv4IP(udp4("0.0.0.0", "255.255.255.255", 68, 67, msg)); !ok || req.MUDURL != "https://mud.example.com/cam" {
		t.Errorf("a discover from 0.0.0.0: ok %v url %q", ok, req.MUDURL)
	}
	// What the queue's copy range cut: options before the cut are read.
	if _, ok := ParseDHCPv4IP(udp4("10.77.0.50", "10.77.0.1", 68, 67, msg)[:300]); !ok {
		t.Error("a message cut after its fixed part was refused")
	}
	for name, ip := range map[string][]byte{
		"server to client": udp4("10.77.0.1", "10.77.0.50", 67, 68, msg),
		"to another port":  udp4("10.77.0.50", "10.77.0.1", 68, 1067, msg),
		"fragment": func() []byte {
			b := udp4("10.77.0.50", "10.77.0.1", 68, 67, msg)
			b[6] = 0x20 // more fragments
			return b
		}(),
		"IPv6":  append([]byte{0x60}, make([]byte, 60)...),
		"short": {0x45, 0},
	} {
		if _, ok := ParseDHCPv4IP(ip); ok {
			t.Errorf("%s: read as a client message", name)
		}
	}
}

// TestObserveDHCP records the MUD URL for the sender, only when the
// message speaks for the MAC that sent it, and keeps it across a restart.
func TestObserveDHCP(t *testing.T) {
	state := filepath.Join(t.TempDir(), "devices.json")
	inv, _ := newInv(t, Options{StatePath: state})
	const url = "https://mud.example.com/acme/cam-100.json"
	req, _ := ParseDHCPv4(dhcpMsg(camera, opt(12, "cam-1"), opt(161, url)))
	if !inv.ObserveDHCP(Observation{MAC: camera, HasMAC: true}, req) {
		t.Error("a device first seen by its DHCP request is not new")
	}
	// The plug sends a request naming the camera's MAC as chaddr, to give
	// the camera another MUD URL: ignored whole.
	forged, _ := ParseDHCPv4(dhcpMsg(camera, opt(161, "https://evil.example/x")))
	if inv.ObserveDHCP(Observation{MAC: plug, HasMAC: true}, forged) {
		t.Error("a forged request made a device")
	}
	d := device(t, inv, "02:00:00:00:00:22", "")
	if d.MUDURL != url || d.Hostname != "cam-1" {
		t.Errorf("camera: MUD URL %q hostname %q", d.MUDURL, d.Hostname)
	}
	if len(inv.Devices()) != 1 {
		t.Errorf("devices %+v, want the camera alone", inv.Devices())
	}
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	again, _ := newInv(t, Options{StatePath: state})
	if d := device(t, again, "02:00:00:00:00:22", ""); d.MUDURL != url {
		t.Errorf("after a restart: MUD URL %q", d.MUDURL)
	}
	// A state file whose MUD URL is not one ObserveDHCP keeps is not ours.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte(strings.Replace(string(data), url, "http://x/\\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StatePath: state}); err == nil || !strings.Contains(err.Error(), "bad MUD URL") {
		t.Errorf("state with a bad MUD URL: %v", err)
	}
}

// TestDHCPObservationZones: only the guarded networks' devices are
// recorded, and a MAC speaks only inside its own zone.
func TestDHCPObservationZones(t *testing.T) {
	cfg, _, err := config.Parse("test.toml", []byte(`
[inventory]
unknown_group = "quarantine"
[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]
[[zone]]
name = "lan"
interfaces = ["br-lan"]
networks = ["192.168.1.0/24"]
[[zone]]
name = "wan"
interfaces = ["wan"]
networks = ["0.0.0.0/0"]
[[group]]
name = "quarantine"
[[device]]
name = "kitchen-plug"
mac = "02:00:00:00:00:11"
ip = ["10.77.0.20"]
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := NewIdentifier(pol)
	zone := func(name string) int32 {
		for i := range pol.Zones {
			if pol.ZoneName(int32(i)) == name {
				return int32(i)
			}
		}
		t.Fatalf("no zone %s", name)
		return policy.None
	}
	for _, tc := range []struct {
		name   string
		mac    [6]byte
		src    string
		inZone int32
		ok     bool
		zone   string
	}{
		{"a new device's discover on the IoT bridge", camera, "0.0.0.0", zone("iot"), true, "iot"},
		{"a renewal, zone unknown", camera, "10.77.0.50", policy.None, true, "iot"},
		{"the plug on its own bridge", plug, "0.0.0.0", zone("iot"), true, "iot"},
		{"the plug's MAC on the LAN bridge", plug, "0.0.0.0", zone("lan"), false, ""},
		{"a host on the upstream link", camera, "0.0.0.0", zone("wan"), false, ""},
		{"no zone known at all", camera, "0.0.0.0", policy.None, false, ""},
	} {
		p := packet.Packet{HasMAC: true, SrcMAC: tc.mac, Src: netip.MustParseAddr(tc.src)}
		o, ok := id.DHCPObservation(&p, tc.inZone, newClock().Now())
		if ok != tc.ok || (ok && o.Zone != tc.zone) {
			t.Errorf("%s: ok %v zone %q; want %v %q", tc.name, ok, o.Zone, tc.ok, tc.zone)
		}
	}
	p := packet.Packet{SrcMAC: camera, Src: netip.MustParseAddr("0.0.0.0")}
	if _, ok := id.DHCPObservation(&p, zone("iot"), newClock().Now()); ok {
		t.Error("a message without a MAC was taken")
	}
}

// FuzzParseDHCPv4IP: whatever a device sends, what is kept is a valid
// https URL and a plain host name, and nothing panics.
func FuzzParseDHCPv4IP(f *testing.F) {
	msg := dhcpMsg(camera, opt(12, "cam-1"), opt(161, "https://mud.example.com/acme/cam-100.json"))
	f.Add(udp4("0.0.0.0", "255.255.255.255", 68, 67, msg))
	f.Add(udp4("10.77.0.50", "10.77.0.1", 68, 67, dhcpMsg(camera, opt(161, "https://a.example/"), opt(161, "x"))))
	f.Add(udp4("10.77.0.50", "10.77.0.1", 68, 67, msg[:250]))
	f.Fuzz(func(t *testing.T, ip []byte) {
		req, ok := ParseDHCPv4IP(ip)
		if !ok && req != (DHCPRequest{}) {
			t.Fatalf("refused, yet %+v", req)
		}
		if req.MUDURL != "" && (!ValidMUDURL(req.MUDURL) || len(req.MUDURL) > MaxMUDURL) {
			t.Fatalf("kept MUD URL %q", req.MUDURL)
		}
		if req.Hostname != "" && !validHostname(req.Hostname) {
			t.Fatalf("kept hostname %q", req.Hostname)
		}
	})
}
