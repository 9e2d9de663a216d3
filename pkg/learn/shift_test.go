package learn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// outcomeOf replays capture against pol and returns the outcome of the
// flow opened from src to dst:dport.
func outcomesOf(t *testing.T, pol *policy.Policy, capture string) map[string]Outcome {
	t.Helper()
	pass, err := runPass(pol, []string{capture})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Outcome{}
	for _, f := range pass.flows {
		out[fmt.Sprintf("%s %s>%s:%d", packetProto(f.ends.proto), f.ends.opener, f.ends.responder, f.ends.rport)] = f.out
	}
	return out
}

// TestLearnShiftedTraffic learns from ten minutes of a home's traffic,
// then replays traffic the devices never sent: a port the plug never used,
// a peer it never used, an NTP packet far larger than any it sent, the
// camera reaching a plug. Each is dropped at micro or pico, while the
// same device's usual traffic in the same capture still passes.
func TestLearnShiftedTraffic(t *testing.T) {
	dir := t.TempDir()
	normal := filepath.Join(dir, "home.pcap")
	writeCapture(t, normal, homeTraffic())
	p, text := learnFrom(t, basePolicy, Options{}, normal)
	pol, _ := loadProposal(t, text)
	if len(p.Groups) != 1 || !strings.Contains(string(text), `groups = ["like-dev-020000000021"]`) {
		t.Errorf("the two plugs that did the same things are not one group:\n%s", text)
	}

	if n := explainRules(t, p, pol); n != len(p.Rules) {
		t.Errorf("explain asked about %d of %d rules", n, len(p.Rules))
	}

	shifted := filepath.Join(dir, "shifted.pcap")
	var frames []frame
	frames = append(frames, tcpConn(0, plugAMAC, routerMAC, plugA, cloud, 41000, 8883, 300, 500)...)       // usual
	frames = append(frames, tcpConn(time.Second, plugAMAC, routerMAC, plugA, cloud, 41001, 23, 10, 10)...) // new port
	frames = append(frames, tcpConn(2*time.Second, plugAMAC, routerMAC, plugA, "198.51.100.7", 41002, 8883, 300, 500)...)
	frames = append(frames, udpExchange(3*time.Second, plugAMAC, routerMAC, plugA, ntp, 41003, 123, 200)...) // larger than any
	frames = append(frames, tcpConn(4*time.Second, camMAC, plugAMAC, cam, plugA, 41004, 554, 200, 200)...)
	writeCapture(t, shifted, frames)
	got := outcomesOf(t, pol, shifted)
	for flow, want := range map[string]string{
		"tcp 10.77.0.21>203.0.113.5:8883":  "accept",
		"tcp 10.77.0.21>203.0.113.5:23":    "micro",
		"tcp 10.77.0.21>198.51.100.7:8883": "micro",
		"udp 10.77.0.21>203.0.113.9:123":   "pico",
		"tcp 10.77.0.31>10.77.0.21:554":    "micro",
	} {
		o, ok := got[flow]
		switch {
		case !ok:
			t.Errorf("%s: not in the replay (%v)", flow, got)
		case want == "accept" && !o.Accepted:
			t.Errorf("%s: %s, want accepted", flow, o)
		case want != "accept" && (o.Accepted || !strings.HasPrefix(want, o.Layer) || !strings.Contains(o.Layer+": "+o.Reason, want)):
			t.Errorf("%s: %s, want dropped at %s", flow, o, want)
		}
	}
}

// TestLearnFlagsScans: a device that opened flows to 150 ports of one
// peer is flagged as a scan and gets no rule, while the others are
// learned; replayed against the proposal, its probes are dropped.
func TestLearnFlagsScans(t *testing.T) {
	dir := t.TempDir()
	frames := homeTraffic()
	for port := uint16(1); port <= 150; port++ {
		frames = append(frames, frame{at: time.Duration(port) * 100 * time.Millisecond, srcMAC: scanMAC, dstMAC: nvrMAC, src: scanner, dst: nvr,
			proto: layers.IPProtocolTCP, sport: 60000, dport: port, syn: true})
	}
	capture := filepath.Join(dir, "scan.pcap")
	writeCapture(t, capture, frames)
	p, text := learnFrom(t, basePolicy, Options{}, capture)
	pol, _ := loadProposal(t, text)
	if len(p.Scans) != 1 || p.Scans[0] != "dev-020000000066" {
		t.Fatalf("scans %v, want the scanner:\n%s", p.Scans, text)
	}
	for _, r := range p.Rules {
		if r.Allow.From.Name == "dev-020000000066" {
			t.Errorf("the scanner got rule %s", r.Allow.Name)
		}
	}
	if !strings.Contains(string(text), "FLAGGED AS A SCAN") || !strings.Contains(string(text), "is flagged as a scan") {
		t.Errorf("the proposal does not say it left the scanner out:\n%s", text)
	}
	dropped := 0
	for flow, o := range outcomesOf(t, pol, capture) {
		if strings.HasPrefix(flow, "tcp 10.77.0.66>") && !o.Accepted {
			dropped++
		}
	}
	if dropped != 150 {
		t.Errorf("%d of the scanner's 150 probes dropped by the proposal", dropped)
	}
}

// TestLearnNeverWidensAnExistingRule: the base policy already has a rule
// for the plug's cloud traffic, with a packet size bound its SYNs break.
// The proposal says so in a comment, adds no rule that would let those
// flows through, and a diff of the two policies shows none newly allowed.
func TestLearnNeverWidensAnExistingRule(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "home.pcap")
	writeCapture(t, capture, homeTraffic())
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, []byte(`
[[device]]
name = "plug-a"
mac = "02:00:00:00:00:21"
ip = ["10.77.0.21"]

[[allow]]
name = "plug-a-cloud"
from = "device:plug-a"
to = "net:203.0.113.5/32"
services = ["tcp/8883"]
packet_size = "100-1500"
`)...)
	base := filepath.Join(dir, "base.toml")
	if err := os.WriteFile(base, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p, out := learnFrom(t, base, Options{}, capture)
	if !strings.Contains(string(out), "outside existing rule plug-a-cloud: packet size outside the rule's bounds") {
		t.Errorf("the proposal does not say the plug's flows break plug-a-cloud:\n%s", out)
	}
	for _, r := range p.Rules {
		if r.Allow.From.Name == "plug-a" && r.Allow.To.String() == "net:203.0.113.5/32" {
			t.Errorf("rule %s widens plug-a-cloud", r.Allow.Name)
		}
	}
	pol, _ := loadProposal(t, out)
	d, err := Diff(loadBase(t, base), pol, []string{capture})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.NewlyAllowed {
		if c.Src == plugA && c.Dst == cloud {
			t.Errorf("newly allowed: %+v", c)
		}
	}
	if len(d.NewlyAllowed) == 0 {
		t.Errorf("the proposal allows nothing new (the NTP flows and the other devices should be)")
	}
}

// TestLearnTimeBounds: captures that cover a whole day give the rules
// active hours and an hourly device budget; the day's traffic replays
// through them.
func TestLearnTimeBounds(t *testing.T) {
	dir := t.TempDir()
	var frames []frame
	for h := 0; h < 26; h++ {
		at := time.Duration(h) * time.Hour
		// The plug talks to the cloud from 14:00 to 18:00 only.
		if hour := (14 + h) % 24; hour >= 14 && hour < 18 {
			frames = append(frames, tcpConn(at, plugAMAC, routerMAC, plugA, cloud, uint16(42000+h), 8883, 300, 500)...)
		}
		frames = append(frames, udpExchange(at+time.Minute, plugAMAC, routerMAC, plugA, ntp, uint16(43000+h), 123, 48)...)
	}
	capture := filepath.Join(dir, "day.pcap")
	writeCapture(t, capture, frames)
	p, text := learnFrom(t, basePolicy, Options{}, capture)
	pol, _ := loadProposal(t, text)
	var cloudRule *config.Allow
	for i := range p.Rules {
		if p.Rules[i].Allow.To.String() == "net:203.0.113.5/32" {
			cloudRule = &p.Rules[i].Allow
		}
	}
	if cloudRule == nil || len(cloudRule.Hours) != 1 || config.FormatTimeRange(cloudRule.Hours[0]) != "13:00-19:00" || cloudRule.MaxDeviceBytes == nil {
		t.Fatalf("cloud rule %+v, want hours 13:00-19:00 (14-18 and an hour each side) and a device budget:\n%s", cloudRule, text)
	}
	for flow, o := range outcomesOf(t, pol, capture) {
		if !o.Accepted {
			t.Errorf("%s: %s", flow, o)
		}
	}
}

// TestLearnHueShifted does the shifted-traffic check on the Hue bridge's
// real setup capture: its portal (learned by name: the bridge resolves
// bridge.meethue.com first) on another port, and another portal address,
// are dropped at micro.
func TestLearnHueShifted(t *testing.T) {
	hue := filepath.Join(testpcaps.Dir(t), "iot/iotsentinel_hue-bridge_setup.pcap")
	if _, err := os.Stat(hue); err != nil {
		t.Skip(err)
	}
	_, text := learnFrom(t, basePolicy, Options{}, hue)
	pol, _ := loadProposal(t, text)
	const hueMAC, hueIP, hueRouter = "00:17:88:24:76:ff", "10.10.10.6", "00:b5:6d:06:08:ba"
	shifted := filepath.Join(t.TempDir(), "hue-shifted.pcap")
	frames := resolve(0, resolver{hueMAC, hueIP, hueRouter, "10.10.10.1"}, 45000, 1, "bridge.meethue.com", 300, "130.211.93.93")
	frames = append(frames, tcpConn(10*time.Millisecond, hueMAC, hueRouter, hueIP, "130.211.93.93", 50000, 80, 300, 500)...)
	frames = append(frames, tcpConn(time.Second, hueMAC, hueRouter, hueIP, "130.211.93.93", 50001, 8080, 300, 500)...)
	frames = append(frames, tcpConn(2*time.Second, hueMAC, hueRouter, hueIP, "130.211.93.94", 50002, 80, 300, 500)...)
	writeCapture(t, shifted, frames)
	got := outcomesOf(t, pol, shifted)
	if o := got["tcp 10.10.10.6>130.211.93.93:80"]; !o.Accepted {
		t.Errorf("the portal as learned: %s", o)
	}
	for _, flow := range []string{"tcp 10.10.10.6>130.211.93.93:8080", "tcp 10.10.10.6>130.211.93.94:80"} {
		if o, ok := got[flow]; !ok || o.Accepted || o.Layer != "micro" && o.Layer != "pico" {
			t.Errorf("%s: %s, want dropped at micro or pico", flow, o)
		}
	}
}

// TestDiff compares two policies over the home capture: the flows one
// allows and the other denies, in capture order, and nothing for a policy
// against itself.
func TestDiff(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "home.pcap")
	writeCapture(t, capture, homeTraffic())
	base, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, rules string) *policy.Policy {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, append(bytes.Clone(base), rules...), 0o600); err != nil {
			t.Fatal(err)
		}
		return loadBase(t, path)
	}
	old := write("old.toml", "\n[[allow]]\nname = \"cloud\"\nfrom = \"zone:iot\"\nto = \"net:203.0.113.5/32\"\nservices = [\"tcp/8883\"]\n")
	new := write("new.toml", "\n[[allow]]\nname = \"ntp\"\nfrom = \"zone:iot\"\nto = \"net:203.0.113.9/32\"\nservices = [\"udp/123\"]\n")
	d, err := Diff(old, new, []string{capture})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.NewlyAllowed) != 20 || len(d.NewlyDenied) != 20 || !d.Changed() {
		t.Fatalf("%d newly allowed, %d newly denied; want 20 and 20", len(d.NewlyAllowed), len(d.NewlyDenied))
	}
	for i, c := range d.NewlyAllowed {
		if c.Proto != "udp" || c.Dst != ntp || c.DPort != 123 || c.New.Rule != "ntp" || c.Old.Layer != "micro" {
			t.Errorf("newly allowed %d: %+v", i, c)
		}
		if i > 0 && c.First.Before(d.NewlyAllowed[i-1].First) {
			t.Errorf("newly allowed out of order at %d", i)
		}
	}
	for _, c := range d.NewlyDenied {
		if c.Proto != "tcp" || c.Dst != cloud || c.Old.Rule != "cloud" || c.New.Accepted {
			t.Errorf("newly denied: %+v", c)
		}
	}
	var a, b bytes.Buffer
	d.WriteText(&a)
	again, _ := Diff(old, new, []string{capture})
	again.WriteText(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two diffs differ:\n%s\n----\n%s", a.String(), b.String())
	}
	if same, _ := Diff(old, old, []string{capture}); same.Changed() {
		t.Errorf("a policy differs from itself: %+v", same)
	}
}

// TestLearnNamesDevicesByHostname: devices are named by the hostname
// they gave DHCP (a dnsmasq leases file), made unique, and a hostname
// that is no policy name is made one.
func TestLearnNamesDevicesByHostname(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "home.pcap")
	writeCapture(t, capture, homeTraffic())
	leases := filepath.Join(dir, "dhcp.leases")
	if err := os.WriteFile(leases, []byte("1740830400 02:00:00:00:00:21 10.77.0.21 kitchen-plug *\n"+
		"1740830400 02:00:00:00:00:22 10.77.0.22 kitchen-plug *\n1740830400 02:00:00:00:00:31 10.77.0.31 _cam *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, text := learnFrom(t, basePolicy, Options{Leases: leases}, capture)
	loadProposal(t, text)
	var names []string
	for _, d := range p.Devices {
		names = append(names, d.Device.Name)
	}
	want := []string{"kitchen-plug", "kitchen-plug-2", "cam", "dev-020000000040"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("devices %v, want %v", names, want)
	}
	if !strings.Contains(string(text), "DHCP hostname kitchen-plug") || len(p.Groups) != 1 || p.Groups[0].Group.Name != "like-kitchen-plug" {
		t.Errorf("hostnames or group missing:\n%s", text)
	}
}

// TestLearnStateIsBounded learns with tiny bounds: no more devices, live
// flows or (device, peer) pairs are kept than the options allow, and the
// proposal says what it did not follow.
func TestLearnStateIsBounded(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "home.pcap")
	writeCapture(t, capture, homeTraffic())
	l, _, err := policy.Load(basePolicy, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := New(l.Policy, l.Config, Options{MaxDevices: 2, MaxFlows: 4, MaxEdges: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := lr.File(capture); err != nil {
		t.Fatal(err)
	}
	if len(lr.devices) > 2 || lr.flows.Len() > 4 || lr.edges > 3 {
		t.Errorf("%d devices, %d live flows, %d pairs kept; bounds 2, 4, 3", len(lr.devices), lr.flows.Len(), lr.edges)
	}
	p := lr.Propose()
	summary := strings.Join(p.Summary, "\n")
	if lr.notFollowed == 0 || lr.flowsEvicted == 0 || !strings.Contains(summary, "learning bounds:") {
		t.Errorf("not followed %d, evicted %d; summary:\n%s", lr.notFollowed, lr.flowsEvicted, summary)
	}
	var b bytes.Buffer
	if err := p.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLearnPickupAlreadyAllowed: a capture that begins in the middle of
// a connection the base policy already allows (its first packet is the
// server's) adds no rule for it; one the base does not allow is learned
// for its client, not for the server.
func TestLearnPickupAlreadyAllowed(t *testing.T) {
	dir := t.TempDir()
	mid := func(at time.Duration, server string, sport uint16) []frame {
		return []frame{
			{at: at, srcMAC: routerMAC, dstMAC: plugAMAC, src: server, dst: plugA, proto: layers.IPProtocolTCP, sport: 8883, dport: sport, ack: true, payload: 100},
			{at: at + time.Millisecond, srcMAC: plugAMAC, dstMAC: routerMAC, src: plugA, dst: server, proto: layers.IPProtocolTCP, sport: sport, dport: 8883, ack: true},
		}
	}
	capture := filepath.Join(dir, "mid.pcap")
	writeCapture(t, capture, append(mid(0, cloud, 45000), mid(time.Second, "198.51.100.7", 45001)...))
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, "\n[[allow]]\nname = \"cloud\"\nfrom = \"zone:iot\"\nto = \"net:203.0.113.5/32\"\nservices = [\"tcp/8883\"]\n"...)
	base := filepath.Join(dir, "base.toml")
	if err := os.WriteFile(base, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p, out := learnFrom(t, base, Options{}, capture)
	var to []string
	for _, r := range p.Rules {
		to = append(to, r.Allow.From.String()+" "+r.Allow.To.String()+" "+config.FormatService(r.Allow.Services[0]))
	}
	if want := "device:dev-020000000021 net:198.51.100.7/32 tcp/8883"; len(to) != 1 || to[0] != want {
		t.Errorf("rules %v, want only %q:\n%s", to, want, out)
	}
	if !strings.Contains(string(out), "1 flows already allowed by cloud") {
		t.Errorf("the allowed pickup is not reported:\n%s", out)
	}
	pol, _ := loadProposal(t, out)
	for flow, o := range outcomesOf(t, pol, capture) {
		if !o.Accepted {
			t.Errorf("%s: %s", flow, o)
		}
	}
}

// TestLearnFitsMarkMask learns under a mark_mask with room for four pico
// classes: the rules learned from the most flows keep their kernel
// checks, the others lose their rate and then their kernel bounds, say
// so, and the proposal is one `check` accepts.
func TestLearnFitsMarkMask(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "home.pcap")
	frames := homeTraffic()
	// The camera and the NVR have three more peers between them: six
	// rules with a rate each, for four classes.
	frames = append(frames, udpExchange(time.Second, camMAC, routerMAC, cam, ntp, 1000, 123, 48)...)
	frames = append(frames, tcpConn(2*time.Second, nvrMAC, routerMAC, nvr, cloud, 1001, 443, 100, 100)...)
	frames = append(frames, udpExchange(3*time.Second, nvrMAC, routerMAC, nvr, ntp, 1002, 123, 48)...)
	writeCapture(t, capture, frames)
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte(`timezone = "UTC"`), []byte("timezone = \"UTC\"\nmark_mask = 0x38"), 1)
	base := filepath.Join(dir, "base.toml")
	if err := os.WriteFile(base, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p, out := learnFrom(t, base, Options{}, capture)
	pol, _ := loadProposal(t, out)
	if len(pol.Classes) != 4 {
		t.Errorf("%d classes, want the 4 mark_mask 0x38 holds", len(pol.Classes))
	}
	if !strings.Contains(string(out), "left out: max_new_flows (mark_mask 0x38 holds 4 pico classes") {
		t.Errorf("no rule says it lost its rate:\n%s", out)
	}
	kept := 0
	for _, r := range p.Rules {
		// Three rules keep their rate, the three learned from ten flows
		// or more; the three learned from one lose it.
		if r.Allow.MaxNewFlows.Count > 0 {
			kept++
		} else if r.Flows >= 10 {
			t.Errorf("rule %s learned from %d flows lost its rate", r.Allow.Name, r.Flows)
		}
	}
	if len(p.Rules) != 6 || kept != 3 {
		t.Errorf("%d of %d rules kept their rate, want 3 of 6", kept, len(p.Rules))
	}
	if learnedAccepted(t, loadBase(t, base), pol, p, capture) == 0 {
		t.Errorf("nothing learned")
	}
}
