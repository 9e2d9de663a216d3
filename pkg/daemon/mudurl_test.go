package daemon

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/queue"
)

// dhcpRequest is a DHCPv4 request from 0.0.0.0:68 to 255.255.255.255:67,
// chaddr as given, carrying option 161.
func dhcpRequest(chaddr net.HardwareAddr, mudURL string) []byte {
	msg := make([]byte, 240)
	msg[0], msg[1], msg[2] = 1, 1, 6
	copy(msg[28:], chaddr)
	binary.BigEndian.PutUint32(msg[236:], 0x63825363)
	msg = append(msg, 53, 1, 3, 161, byte(len(mudURL)))
	msg = append(append(msg, mudURL...), 255)
	ip := make([]byte, 28, 28+len(msg))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(msg)))
	copy(ip[16:], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[20:], 68)
	binary.BigEndian.PutUint16(ip[22:], 67)
	binary.BigEndian.PutUint16(ip[24:], uint16(8+len(msg)))
	return append(ip, msg...)
}

// TestDHCPMUDURLReachesStatus sends DHCP requests through the handler as
// the queue would and reads the inventory back as `status devices` shows
// it.
func TestDHCPMUDURLReachesStatus(t *testing.T) {
	const url = "https://mud.example.com/acme/cam-100.json"
	cam, _ := net.ParseMAC("02:00:00:00:00:31")
	plug, _ := net.ParseMAC("02:00:00:00:00:21")
	wanHost, _ := net.ParseMAC("02:00:00:00:99:01")
	for _, tc := range []struct {
		name     string
		gateway  string // the [gateway] table
		from     net.HardwareAddr
		chaddr   net.HardwareAddr
		inIface  uint32
		recorded bool
	}{
		{"a camera on the IoT bridge", "", cam, cam, 3, true},
		{"a plug naming the camera's MAC", "", plug, cam, 3, false},
		{"a host on the upstream link", "", wanHost, wanHost, 4, false},
		{"a request the policy refuses", "[gateway]\ndhcp = false\n", cam, cam, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := loadText(t, strings.Replace(policyText, "[daemon]", tc.gateway+"[daemon]", 1))
			eng := engine.New(l.Policy, engine.Options{})
			zones := newIfaceZones(func() (map[uint32]string, error) { return map[uint32]string{3: "br-iot", 4: "wan0"}, nil })
			noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			h := newHandler(eng, nft.DefaultMarks(), 4200, 1, zones, func() time.Time { return noon })
			inv, err := inventory.New(inventory.Options{Now: func() time.Time { return noon }})
			if err != nil {
				t.Fatal(err)
			}
			var alerts []alert.Alert
			devs := newDevices(inv, inventory.NewIdentifier(l.Policy), func(a alert.Alert) { alerts = append(alerts, a) }, 1)
			h.flowStarted, h.dhcpSeen = devs.flowStarted, devs.dhcpSeen
			h.Judge(&queue.Packet{Queue: 4200, Payload: dhcpRequest(tc.chaddr, url), HwAddr: tc.from, InIfindex: tc.inIface})
			var got []string
			for _, d := range inv.Devices() {
				if d.MUDURL != "" {
					got = append(got, d.MAC+" "+d.MUDURL)
				}
			}
			want := ""
			if tc.recorded {
				want = cam.String() + " " + url
			}
			if strings.Join(got, ",") != want {
				t.Fatalf("MUD URLs %q, want %q", got, want)
			}
			if !tc.recorded {
				return
			}
			if len(alerts) != 1 || alerts[0].Type != alert.TypeNewDevice {
				t.Errorf("alerts %+v, want one new_device", alerts)
			}
			var text bytes.Buffer
			if err := WriteDevices(&text, inv.Devices()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "MUD") || !strings.Contains(text.String(), "mud.example.com/acme/cam-100.js~") {
				t.Errorf("status devices:\n%s", text.String())
			}
			js, err := json.Marshal(inv.Devices())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(js), `"mud_url":"`+url+`"`) {
				t.Errorf("JSON %s lacks the MUD URL", js)
			}
		})
	}
}
