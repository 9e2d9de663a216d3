package main

// Kernel tests of destinations by DNS name: Debian's dnsmasq answers in the
// lab (as the gateway's own resolver, and as a resolver on the WAN behind
// the gateway) with short TTLs, and a device resolves then connects.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/picoseg/picoseg/internal/lab"
)

// dnsTTL is the TTL dnsmasq gives its records, dnsGrace the policy's grace.
const (
	dnsTTL   = 2
	dnsGrace = 3 * time.Second
)

// dnsPolicy is the lab's policy with the cameras' cloud named by DNS, and
// every IoT device allowed to ask the WAN resolver.
func dnsPolicy(t *testing.T) string {
	return labPolicy(t, func(s string) string {
		s = strings.Replace(s, "[gateway]\n", "[dns]\ngrace = \""+dnsGrace.String()+"\"\n\n[gateway]\n", 1)
		s = strings.Replace(s, "name = \"cam-upload\"\nfrom = \"group:cameras\"\nto = \"zone:wan\"",
			"name = \"cam-upload\"\nfrom = \"zone:iot\"\nto = \"dns:*.cloud.example\"", 1)
		return s + `
[[allow]]
name = "wan-resolver"
from = "zone:iot"
to = "net:198.51.100.2/32"
services = ["udp/53"]
`
	})
}

// startDNSMasq runs dnsmasq in host's namespace on addr:53 with records
// "name,address" and TTL dnsTTL.
func startDNSMasq(t *testing.T, ctx context.Context, h *lab.Host, addr string, records ...string) {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq not installed (Debian: dnsmasq-base)")
	}
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=" + addr, "--port=53", "--local-ttl=" + strconv.Itoa(dnsTTL), "--user=root", "--group=root",
		"--pid-file=" + filepath.Join(t.TempDir(), "dnsmasq.pid"), "--log-facility=-"}
	for _, r := range records {
		args = append(args, "--host-record="+r)
	}
	p, err := h.Start(ctx, "dnsmasq", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("dnsmasq on %s:\n%s", addr, p.Output())
		}
	})
	// Ready when it answers (the gateway's policy is not running yet).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := h.Dial(ctx, "udp", addr+":53"); err == nil {
			c.Close()
			time.Sleep(200 * time.Millisecond)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resolve has host ask server (ADDR:53) for name's IPv4 addresses.
func (f *fixture) resolve(host, server, name string) ([]netip.Addr, error) {
	return f.resolveNet(host, server, name, "ip4")
}

// resolveNet has host ask server for name's addresses of network ("ip4":
// A, "ip6": AAAA).
func (f *fixture) resolveNet(host, server, name, network string) ([]netip.Addr, error) {
	h := f.lab.Host(host)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return h.Dial(ctx, "udp", server+":53")
	}}
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
	defer cancel()
	return r.LookupNetIP(ctx, network, name)
}

func (f *fixture) mustResolve(host, server, name, want string) {
	f.t.Helper()
	got, err := f.resolve(host, server, name)
	if err != nil || len(got) != 1 || got[0].String() != want {
		f.t.Fatalf("%s resolving %s at %s: %v %v, want %s", host, name, server, got, err, want)
	}
}

// dnsLab is a lab with the WAN host on three more addresses, echo servers
// on 8443 (the cameras' cloud) and 8883 (the plugs' broker), dnsmasq on
// the gateway (10.77.0.1) and on the WAN host, and picoseg running.
func dnsLab(t *testing.T) *fixture {
	f := newFixture(t)
	wan := f.lab.Host("wan")
	for _, a := range []string{"198.51.100.10", "198.51.100.11", "198.51.100.12"} {
		if out, err := wan.Run(f.ctx, "ip", "addr", "add", a+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
	}
	f.echo("wan", 8443)
	f.echo("wan", 8883)
	startDNSMasq(t, f.ctx, f.lab.Gateway, "10.77.0.1", "eu.cloud.example,198.51.100.10")
	startDNSMasq(t, f.ctx, wan, "198.51.100.2", "us.cloud.example,198.51.100.12")
	f.start(dnsPolicy(t))
	return f
}

// TestKernelDNSNameDestination: a camera reaches its cloud's address once
// the gateway's resolver gave it, and no other address on the same port;
// the address another device was given opens nothing for the camera; an
// answer of a resolver on the WAN, forwarded by the gateway, is seen too.
func TestKernelDNSNameDestination(t *testing.T) {
	f := dnsLab(t)
	// Control: the lab delivers to every WAN address (the plugs' rule
	// allows their broker port anywhere on the WAN).
	for _, a := range []string{"198.51.100.10", "198.51.100.11", "198.51.100.12"} {
		if !f.canAddr("plug1", a, 8883) {
			t.Fatalf("control: plug1 cannot reach %s:8883: the lab is broken", a)
		}
	}
	if f.canAddr("cam", "198.51.100.10", 8443) {
		t.Fatal("cam reaches its cloud before resolving it")
	}
	// Another device's answer is its own.
	f.mustResolve("hub", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	if !f.canAddr("hub", "198.51.100.10", 8443) {
		t.Error("hub cannot reach the address it was given")
	}
	if f.canAddr("cam", "198.51.100.10", 8443) {
		t.Error("cam reaches the address the hub was given")
	}
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	if !f.canAddr("cam", "198.51.100.10", 8443) {
		t.Error("cam cannot reach the address the gateway's resolver gave it")
	}
	if f.canAddr("cam", "198.51.100.11", 8443) {
		t.Error("cam reaches an address no answer gave it")
	}
	if n := f.status().DNSNames; n == nil || n.Devices != 2 || n.Addresses != 2 {
		t.Errorf("status dns_names %+v, want the hub's and the cam's one address each", n)
	}
	// A resolver behind the gateway: its answer is forwarded, and seen.
	if f.canAddr("cam", "198.51.100.12", 8443) {
		t.Fatal("cam reaches the WAN resolver's address before asking it")
	}
	f.mustResolve("cam", "198.51.100.2", "us.cloud.example", "198.51.100.12")
	if !f.canAddr("cam", "198.51.100.12", 8443) {
		t.Error("cam cannot reach the address the WAN resolver gave it")
	}
}

// TestKernelDNSExpiry: a flow opened within the answer's TTL lives on past
// TTL and grace; a new flow after them is refused until the device asks
// again.
func TestKernelDNSExpiry(t *testing.T) {
	f := dnsLab(t)
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	resolved := time.Now()
	ch := f.chat("cam", netip.MustParseAddrPort("198.51.100.10:8443"))
	ch.waitEchoes(t, 5)
	if !f.canAddr("cam", "198.51.100.10", 8443) {
		t.Fatal("a second flow within the TTL is refused")
	}
	time.Sleep(time.Until(resolved.Add(dnsTTL*time.Second + dnsGrace + time.Second)))
	ch.waitEchoes(t, 5)
	if f.canAddr("cam", "198.51.100.10", 8443) {
		t.Error("a new flow after TTL and grace was let through")
	}
	ch.waitEchoes(t, 5)
	// A reload judges the running flow again: opened under a valid
	// answer, it lives on (the policy changed, so every flow is judged).
	reloaded := dnsPolicy(t) + "\n# reloaded\n[[group]]\nname = \"spare\"\n"
	if err := os.WriteFile(f.policy, []byte(reloaded), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := f.status().Generation
	f.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(3 * time.Second); f.status().Generation == gen && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if f.status().Generation == gen {
		t.Fatal("the policy was not reloaded")
	}
	time.Sleep(500 * time.Millisecond)
	ch.waitEchoes(t, 5)
	if f.canAddr("cam", "198.51.100.10", 8443) {
		t.Error("a new flow after TTL and grace was let through after the reload")
	}
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	if !f.canAddr("cam", "198.51.100.10", 8443) {
		t.Error("a new answer does not open the address again")
	}
}

// TestKernelDNSChecks: under app = "dns" every query a device sends the
// gateway's resolver is judged: an allowed name is answered, another name
// is not (the hub, under a rule without a name list, gets its answer: the
// resolver would have answered), and past the rate a device's queries go
// unanswered while the hub's are still answered.
func TestKernelDNSChecks(t *testing.T) {
	f := newFixture(t)
	startDNSMasq(t, f.ctx, f.lab.Gateway, "10.77.0.1", "eu.cloud.example,198.51.100.10", "other.example,198.51.100.11")
	f.start(labPolicy(t, func(s string) string {
		s = strings.Replace(s, "[gateway]\n", "[gateway]\ndns = false\n", 1)
		return s + `
[[segment]]
from = "iot"
to = "gateway"
action = "micro"

[[allow]]
name = "hub-dns"
from = "device:hub"
to = "gateway"
services = ["udp/53"]
app = "dns"

[[allow]]
name = "iot-dns"
from = "zone:iot"
to = "gateway"
services = ["udp/53"]
app = "dns"
[allow.dns]
names = ["*.cloud.example"]
max_entropy = 4.2
rate = "3/min"
`
	}))
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	f.mustResolve("hub", "10.77.0.1", "other.example", "198.51.100.11") // control
	if got, err := f.resolve("cam", "10.77.0.1", "other.example"); err == nil {
		t.Errorf("cam resolved a name off its list: %v", got)
	}
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	f.mustResolve("cam", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
	if got, err := f.resolve("cam", "10.77.0.1", "eu.cloud.example"); err == nil {
		t.Errorf("cam's fourth query within a minute was answered: %v", got)
	}
	f.mustResolve("hub", "10.77.0.1", "eu.cloud.example", "198.51.100.10")
}

// TestKernelDNSAAAA: a name's AAAA record, asked over IPv4 from the
// gateway's resolver, opens its IPv6 address to the same device's IPv6
// flow (the device is listed with both addresses), and no other.
func TestKernelDNSAAAA(t *testing.T) {
	f := newFixtureIPv6(t, true)
	wan := f.lab.Host("wan")
	for _, a := range []string{"2001:db8:100::10", "2001:db8:100::11"} {
		if out, err := wan.Run(f.ctx, "ip", "-6", "addr", "add", a+"/64", "dev", "eth0", "nodad"); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
	}
	f.echo("wan", 8443)
	f.echo("wan", 8883)
	startDNSMasq(t, f.ctx, f.lab.Gateway, "10.77.0.1", "v6.cloud.example,2001:db8:100::10")
	f.start(strings.NewReplacer(
		`networks = ["0.0.0.0/0"]`, `networks = ["0.0.0.0/0", "::/0"]`,
		`networks = ["10.88.0.0/24"]`, `networks = ["10.88.0.0/24", "fd00:88::/64"]`,
		`networks = ["10.77.0.0/24"]`, `networks = ["10.77.0.0/24", "fd00:77::/64"]`,
		`ip = ["10.77.0.11"]`, `ip = ["10.77.0.11", "fd00:77::11"]`,
		`ip = ["10.77.0.21"]`, `ip = ["10.77.0.21", "fd00:77::21"]`,
	).Replace(dnsPolicy(t)))
	if !f.canAddr("plug1", "2001:db8:100::11", 8883) {
		t.Fatal("control: plug1 cannot reach the WAN over IPv6: the lab is broken")
	}
	if f.canAddr("cam", "2001:db8:100::10", 8443) {
		t.Fatal("cam reaches the AAAA address before resolving it")
	}
	got, err := f.resolveNet("cam", "10.77.0.1", "v6.cloud.example", "ip6")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8:100::10") {
		t.Fatalf("AAAA: %v %v", got, err)
	}
	if !f.canAddr("cam", "2001:db8:100::10", 8443) {
		t.Error("cam cannot reach the IPv6 address its AAAA answer gave")
	}
	if f.canAddr("cam", "2001:db8:100::11", 8443) {
		t.Error("cam reaches an IPv6 address no answer gave")
	}
}

// forger answers every query it gets on a WAN address as told: with
// another question name than asked, another identifier, or (the control)
// honestly; each answer gives forgedAddr.
type forger struct {
	conn net.PacketConn
	mode atomic.Value // "name", "id" or "honest"
}

const forgedAddr = "198.51.100.11"

func startForger(t *testing.T, h *lab.Host, addr string) *forger {
	t.Helper()
	var conn net.PacketConn
	if err := h.Do(func() error {
		var err error
		conn, err = net.ListenPacket("udp", addr+":53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fg := &forger{conn: conn}
	fg.mode.Store("honest")
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			switch fg.mode.Load() {
			case "name":
				q.Name = dnsmessage.MustNewName("x.cloud.example.")
			case "id":
				h.ID++
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: netip.MustParseAddr(forgedAddr).As4()})
			if msg, err := b.Finish(); err == nil {
				conn.WriteTo(msg, from)
			}
		}
	}()
	return fg
}

// TestKernelDNSForgedAnswers: a resolver on the WAN answers the camera's
// query for another name than asked, or with another identifier: the
// answer is dropped and the address it gives stays closed. The control:
// the same resolver answering honestly for a name the rule covers opens
// the address, so the lab delivers its answers.
func TestKernelDNSForgedAnswers(t *testing.T) {
	f := newFixture(t)
	wan := f.lab.Host("wan")
	for _, a := range []string{"198.51.100.11", "198.51.100.13"} {
		if out, err := wan.Run(f.ctx, "ip", "addr", "add", a+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
	}
	f.echo("wan", 8443)
	fg := startForger(t, wan, "198.51.100.13")
	f.start(strings.Replace(dnsPolicy(t), `to = "net:198.51.100.2/32"`, `to = "net:198.51.100.13/32"`, 1))
	for _, tc := range []struct{ mode, name string }{
		{"name", "innocent.example"},
		{"id", "z.cloud.example"},
	} {
		fg.mode.Store(tc.mode)
		if got, err := f.resolve("cam", "198.51.100.13", tc.name); err == nil {
			t.Errorf("forged answer (%s) reached the camera: %v", tc.mode, got)
		}
		if f.canAddr("cam", forgedAddr, 8443) {
			t.Errorf("forged answer (%s) opened %s", tc.mode, forgedAddr)
		}
	}
	fg.mode.Store("honest")
	f.mustResolve("cam", "198.51.100.13", "y.cloud.example", forgedAddr)
	if !f.canAddr("cam", forgedAddr, 8443) {
		t.Error("control: an honest answer from the same resolver did not open its address")
	}
}

// TestKernelDNSQueriesOnOneSocket: a resolver library that sends its
// queries on one socket (glibc: A and AAAA, retries) sends the second on
// a flow already accepted, which the fast path would take unseen; its
// answer must still open its address. The first query's address is the
// control.
func TestKernelDNSQueriesOnOneSocket(t *testing.T) {
	f := newFixture(t)
	wan := f.lab.Host("wan")
	for _, a := range []string{"198.51.100.10", "198.51.100.12"} {
		if out, err := wan.Run(f.ctx, "ip", "addr", "add", a+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
	}
	f.echo("wan", 8443)
	startDNSMasq(t, f.ctx, f.lab.Gateway, "10.77.0.1", "eu.cloud.example,198.51.100.10", "eu2.cloud.example,198.51.100.12")
	f.start(dnsPolicy(t))
	conn, err := f.lab.Host("cam").Dial(f.ctx, "udp", "10.77.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(id uint16, name string) {
		t.Helper()
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
		b.StartQuestions()
		b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
		msg, _ := b.Finish()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer for %s on the shared socket: %v", name, err)
		}
		var p dnsmessage.Parser
		if h, err := p.Start(buf[:n]); err != nil || h.ID != id {
			t.Fatalf("answer for %s: %v id %d", name, err, h.ID)
		}
	}
	ask(1, "eu.cloud.example")
	if !f.canAddr("cam", "198.51.100.10", 8443) {
		t.Fatal("control: the first query's answer does not open its address")
	}
	ask(2, "eu2.cloud.example")
	if !f.canAddr("cam", "198.51.100.12", 8443) {
		t.Error("the second query on the same socket: its answer does not open its address")
	}
}
