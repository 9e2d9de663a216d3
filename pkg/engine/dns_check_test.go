package engine

import (
	"strconv"
	"testing"
	"time"
)

const dnsCheckPolicy = `
[gateway]
addresses = ["10.77.0.1"]
dns = false

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "iot"
to = "gateway"
action = "micro"

[[device]]
name = "plug"
ip = ["10.77.0.5"]

[[device]]
name = "hue"
ip = ["10.77.0.6"]

[[allow]]
name = "plug-dns"
from = "zone:iot"
to = "gateway"
services = ["udp/53"]
app = "dns"
[allow.dns]
names = ["*.tplinkcloud.com", "*.meethue.com"]
max_name = 64
max_entropy = 4.2
rate = "3/min"
`

// TestDNSChecks: each query of a device's resolver socket is judged: an
// allowed name passes, a name off the list, a long name and a tunnel's
// random labels are dropped, and past the rate a device's queries are
// dropped while another device's pass.
func TestDNSChecks(t *testing.T) {
	w := New(compile(t, dnsCheckPolicy), Options{}).NewWorker()
	now := monday10
	query := func(src string, port int, id uint16, name string) Decision {
		t.Helper()
		p := pkt(t, "udp "+src+":"+strconv.Itoa(port)+" -> 10.77.0.1:53")
		p.Payload = dnsMsg(t, id, name, 0, false)
		p.PayloadLen = len(p.Payload)
		return w.Judge(p, now.UnixNano(), NoMeta)
	}
	for i, tc := range []struct {
		name   string
		q      string
		reason Reason
	}{
		{"allowed", "devs.tplinkcloud.com", ReasonAppIdentified},
		{"not on the list", "evil.example.net", ReasonAppDenied},
		{"too long", "a-very-long-label-that-goes-on-and-on-and-on.and-more.tplinkcloud.com", ReasonAppDenied},
		{"a tunnel", "mfrggzdfmztwq2lk.nnwg23tpobyxe43u.tplinkcloud.com", ReasonAppDenied},
	} {
		// One socket: every query of the flow is judged, not only the first.
		d := query("10.77.0.5", 40000, uint16(i), tc.q)
		if d.Reason != tc.reason || (d.Verdict == Drop) != (tc.reason != ReasonAppIdentified) {
			t.Errorf("%s: %v %v, want %v", tc.name, d.Verdict, d.Reason, tc.reason)
		}
	}
	// The plug's one allowed query so far counts; two more fit in the rate.
	for i := 0; i < 2; i++ {
		if d := query("10.77.0.5", 40001+i, 10, "devs.tplinkcloud.com"); d.Verdict == Drop {
			t.Fatalf("query %d within the rate: %v", i+2, d.Reason)
		}
	}
	if d := query("10.77.0.5", 40010, 11, "devs.tplinkcloud.com"); d.Verdict != Drop || d.Reason != ReasonDNSQueryRate || !d.PacketOnly {
		t.Errorf("a fourth query within a minute: %+v", d)
	}
	if d := query("10.77.0.6", 40000, 12, "bridge.meethue.com"); d.Verdict == Drop {
		t.Errorf("another device's query: %v", d.Reason)
	}
	now = now.Add(21 * time.Second)
	if d := query("10.77.0.5", 40011, 13, "devs.tplinkcloud.com"); d.Verdict == Drop {
		t.Errorf("a query once the rate has a token again: %v", d.Reason)
	}
}
