package main

// Kernel test of single packet authorization with Debian's fwknop client:
// a service on the gateway is closed (dropped, not refused) until the
// client knocks from the device's namespace, then open to that device
// only, for the rule's window; the same SPA packet sent again opens
// nothing, before or after a restart.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/daemon"
)

// spaWindow is the rule's window in the kernel test: short, so that the
// test sees it close.
const spaWindow = 4 * time.Second

// spaKeys reads the fixture keys fwknop --key-gen wrote.
func spaKeys(t *testing.T) (cipher, hmac string) {
	t.Helper()
	data, err := os.ReadFile("../../pkg/spa/testdata/keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "KEY_BASE64: "); ok {
			cipher = v
		}
		if v, ok := strings.CutPrefix(line, "HMAC_KEY_BASE64: "); ok {
			hmac = v
		}
	}
	return cipher, hmac
}

// spaLabPolicy is the demo policy whose SSH rule to the gateway requires
// SPA with the fixture key, and is open to any device of the LAN and IoT
// zones that knocks: so that the hub is refused for want of a knock, not
// for want of a rule.
func spaLabPolicy(t *testing.T, dir string) string {
	cipher, hmac := spaKeys(t)
	return labPolicy(t, func(s string) string {
		s = strings.Replace(s, `from = "device:admin"
to = "gateway"
services = ["tcp/22"]`, `from = "any"
to = "gateway"
services = ["tcp/22"]
auth = "spa"
spa_keys = ["admin"]
spa_window = "`+spaWindow.String()+`"`, 1)
		return s + `
[spa]
replay_file = "` + filepath.Join(dir, "spa-replay") + `"

[[spa_key]]
name = "admin"
key_base64 = "` + cipher + `"
hmac_key_base64 = "` + hmac + `"
from = ["device:admin", "device:hub"]

[[segment]]
from = "iot"
to = "gateway"
action = "micro"
`
	})
}

// closed reports whether a TCP connection from host to dst times out: the
// SYN is dropped, not refused with a reset.
func (f *fixture) closed(host string, dst netip.AddrPort) bool {
	f.t.Helper()
	err := f.lab.Host(host).TCPConnect(f.ctx, dst, time.Second)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		f.t.Logf("%s -> %v: %v (want a timeout)", host, dst, err)
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// nmapState is the state nmap's TCP connect scan from host reports for
// dst's port ("open", "closed", "filtered"), "" when nmap is missing.
func (f *fixture) nmapState(host string, dst netip.AddrPort) string {
	f.t.Helper()
	if _, err := exec.LookPath("nmap"); err != nil {
		f.t.Log("nmap is not installed: no scan")
		return ""
	}
	port := strconv.Itoa(int(dst.Port()))
	out, err := f.lab.Host(host).Run(f.ctx, "nmap", "-Pn", "-n", "-sT", "-p", port, "--max-retries", "1", dst.Addr().String())
	if err != nil {
		f.t.Fatalf("nmap: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == port+"/tcp" {
			return fields[1]
		}
	}
	f.t.Fatalf("nmap named no state for %s:\n%s", port, out)
	return ""
}

// knock runs the fwknop client in host's namespace, which sends the SPA
// packet and also saves it in file.
func (f *fixture) knock(host, allow, server, file string) {
	f.t.Helper()
	cipher, hmac := spaKeys(f.t)
	cmd := f.lab.Host(host).Command(f.ctx, "fwknop", "--no-rc-file", "-A", "tcp/22", "-a", allow, "-D", server,
		"--key-base64-rijndael", cipher, "--key-base64-hmac", hmac, "--use-hmac", "-B", file)
	cmd.Env = append(os.Environ(), "HOME="+f.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("fwknop: %v\n%s", err, out)
	}
}

// spaAlerts returns the daemon's recent SPA alerts.
func (f *fixture) spaAlerts() []alert.Alert {
	f.t.Helper()
	var all, out []alert.Alert
	if err := daemon.Query(f.sock, "alerts", &all); err != nil {
		f.t.Fatal(err)
	}
	for _, a := range all {
		if a.Type == alert.TypeSPAGranted || a.Type == alert.TypeSPARejected {
			out = append(out, a)
		}
	}
	return out
}

func hasAlert(list []alert.Alert, ty alert.Type, reason string) bool {
	for _, a := range list {
		if a.Type == ty && strings.Contains(a.Reason, reason) {
			return true
		}
	}
	return false
}

func TestKernelSPAFwknopKnock(t *testing.T) {
	if _, err := exec.LookPath("fwknop"); err != nil {
		t.Skip("fwknop client not installed (apt-get install fwknop-client)")
	}
	f := newFixture(t)
	srv, err := f.lab.Gateway.ServeTCP(f.ctx, 22)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ssh := netip.AddrPortFrom(gatewayLAN, 22)
	hubSSH := netip.AddrPortFrom(gatewayIoT, 22)
	spaPort := netip.AddrPortFrom(gatewayLAN, 62201)
	f.spaControls(ssh, hubSSH, spaPort)

	f.start(spaLabPolicy(t, f.dir))
	if !f.closed("lan", ssh) {
		t.Fatal("the SPA service is reachable (or refused) before the knock: want it dropped")
	}
	if state := f.nmapState("lan", ssh); state != "filtered" && state != "" {
		t.Errorf("nmap from the LAN host sees port 22 %q before the knock, want filtered", state)
	}
	// A port scan learns nothing of the SPA port either: no answer, not
	// even a port unreachable.
	if _, err := f.lab.Host("lan").UDPProbe(f.ctx, spaPort, []byte("x"), time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("probe of the SPA port: %v, want no answer", err)
	}

	saved := filepath.Join(f.dir, "knock.spa")
	f.knock("lan", "10.88.0.10", gatewayLAN.String(), saved)
	knocked := time.Now()
	var opened time.Duration
	for deadline := knocked.Add(time.Second); ; {
		if f.lab.Host("lan").TCPConnect(f.ctx, ssh, 200*time.Millisecond) == nil {
			opened = time.Since(knocked)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not open within a second of the knock; alerts %+v", f.spaAlerts())
		}
	}
	t.Logf("the service opened %v after fwknop returned", opened.Round(time.Millisecond))
	if !hasAlert(f.spaAlerts(), alert.TypeSPAGranted, "") {
		t.Errorf("no spa_granted alert: %+v", f.spaAlerts())
	}
	var grants []daemon.GrantView
	if err := daemon.Query(f.sock, "grants", &grants); err != nil || len(grants) != 1 || grants[0].Src != "10.88.0.10" || grants[0].Service != "tcp/22" {
		t.Errorf("status grants: %+v, %v", grants, err)
	}
	// A connection made in the window lives on after it, and after a
	// reload that judges it again.
	ch := f.chat("lan", ssh)
	ch.waitEchoes(t, 5)
	if !f.closed("hub", hubSSH) {
		t.Error("another device reaches the service after the admin's knock")
	}
	time.Sleep(time.Until(knocked.Add(spaWindow + 500*time.Millisecond)))
	f.signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	ch.waitEchoes(t, 20)
	if !f.closed("lan", ssh) {
		t.Error("a new connection after the window reaches the service")
	}

	f.replayKnock(saved, ssh)
}

// replayKnock sends the SPA packet saved in file again, from the admin's
// address and port, through a raw socket: it must be refused as a replay
// and open nothing, before and after a restart of the daemon.
func (f *fixture) replayKnock(saved string, ssh netip.AddrPort) {
	t := f.t
	t.Helper()
	packet, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	replay := func() {
		lanHost, gwMAC := f.lab.Host("lan"), net.HardwareAddr{0x02, 0, 0, 0, 0x88, 0x01}
		f.sendFrame("lan", udpFrame(lanHost.MAC, gwMAC, lanHost.Addr, gatewayLAN, 40123, 62201, []byte(strings.TrimSpace(string(packet)))))
	}
	rejected := f.status().SPA["rejected"]
	replay()
	if !f.closed("lan", ssh) {
		t.Error("the replayed SPA packet opened the service")
	}
	// The replay reached the daemon and was judged (the alert itself may
	// be folded into the earlier spa_rejected of the probe).
	if !eventually(func() bool { return f.status().SPA["rejected"] > rejected }) {
		t.Errorf("the replay was not judged: spa counters %v", f.status().SPA)
	}
	// After a restart too: the replay cache is kept on disk.
	f.daemon.Stop()
	f.start(spaLabPolicy(t, f.dir))
	replay()
	if !f.closed("lan", ssh) {
		t.Error("the replayed SPA packet opened the service after a restart")
	}
	if !eventually(func() bool { return hasAlert(f.spaAlerts(), alert.TypeSPARejected, "replay") }) {
		t.Errorf("no spa_rejected replay alert after the restart: %+v", f.spaAlerts())
	}
}

// spaControls show, before the daemon starts, that the lab delivers both
// devices' connections to the gateway's port 22, and that the SPA port
// answers with a port unreachable (nothing listens).
func (f *fixture) spaControls(ssh, hubSSH, spaPort netip.AddrPort) {
	t := f.t
	t.Helper()
	if !f.reaches("lan", ssh) || !f.reaches("hub", hubSSH) {
		t.Fatal("control: the lab does not carry the connections to the gateway's port 22")
	}
	if _, err := f.lab.Host("lan").UDPProbe(f.ctx, spaPort, []byte("x"), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("control: probe of the SPA port without picoseg: %v, want refused", err)
	}
	if state := f.nmapState("lan", ssh); state != "open" && state != "" {
		t.Fatalf("control: nmap from the LAN host sees port 22 %q without picoseg", state)
	}
}

// TestKernelSPAJunkFlood: three IoT devices flood the gateway's SPA port
// with junk for floodSeconds, with the kernel's per-device guard raised
// out of the way so that the daemon takes all it can. It measures (and
// logs: the README reports it) how many junk SPA packets the daemon
// absorbed per second, while the camera's allowed connections keep being
// judged: at least 19 of 20 pass.
func TestKernelSPAJunkFlood(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	f := newFixture(t)
	f.echo("wan", 8443)
	f.start(strings.Replace(spaLabPolicy(t, f.dir), "[daemon]\n", "[daemon]\nnew_flow_rate = \"1000000/s\"\n", 1))
	before := f.status()
	var floods []interface{ Stop() error }
	for _, host := range []string{"plug1", "plug2", "hub"} {
		p, err := f.lab.Host(host).Start(f.ctx, "hping3", "--flood", "-2", "-p", "62201", "-d", "200", gatewayIoT.String())
		if err != nil {
			t.Skipf("hping3: %v", err)
		}
		floods = append(floods, p)
	}
	start := time.Now()
	time.Sleep(300 * time.Millisecond)
	ok, times := f.connects("cam", netip.MustParseAddrPort("198.51.100.2:8443"), 20, 150*time.Millisecond)
	time.Sleep(time.Until(start.Add(floodSeconds * time.Second)))
	for _, p := range floods {
		p.Stop()
	}
	elapsed := time.Since(start)
	after := f.status()
	junk := after.SPA["rejected"] + after.SPA["rate_limited"] - before.SPA["rejected"] - before.SPA["rate_limited"]
	var enobufs uint64
	for _, q := range after.Queues {
		enobufs += q.ENOBUFS
	}
	t.Logf("junk SPA flood from 3 devices for %v: the daemon judged %d junk SPA packets (%.0f/s; %d decoded and refused, %d refused undecoded by the limiter), %d packets reached the queues (ENOBUFS %d); camera connections %d/20 passed, median connect %v",
		elapsed.Round(time.Millisecond), junk, float64(junk)/elapsed.Seconds(), after.SPA["rejected"]-before.SPA["rejected"],
		after.SPA["rate_limited"]-before.SPA["rate_limited"], queued(after)-queued(before), enobufs, ok, median(times))
	if junk == 0 {
		t.Fatal("no junk SPA packet reached the daemon: the flood was not delivered")
	}
	if ok < 19 {
		t.Errorf("only %d of 20 camera connections passed during a junk SPA flood", ok)
	}
}
