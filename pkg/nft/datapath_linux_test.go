//go:build linux

package nft

// Kernel tests of the ruleset's data path without a daemon: a client, a
// gateway running the ruleset with its queue bypassed (nobody listens, so
// queued packets pass without a verdict), and a server. What they check
// happens in the kernel alone: marks, conntrack states, spoofing.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testnetns"
	"golang.org/x/sys/unix"
)

const (
	dpClient  = "192.0.2.1"
	dpGwIn    = "192.0.2.254"
	dpServer  = "198.51.100.1"
	dpGwOut   = "198.51.100.254"
	dpMask    = 0x00ff0000 // a field another program also uses, in the foreign-mark test
	dpEchoTCP = 7
)

type dataPath struct {
	client, gw, server testnetns.NS
	conn               *Conn
	rs                 *Ruleset
}

// newDataPath builds the three namespaces and installs opts (Queues 1 from
// queue 300 unless set) in the gateway.
func newDataPath(t *testing.T, opts Options) *dataPath {
	t.Helper()
	testnetns.NeedRoot(t, "conntrack")
	d := &dataPath{client: testnetns.New(t, "picoseg-dc"), gw: testnetns.New(t, "picoseg-dg"), server: testnetns.New(t, "picoseg-ds")}
	testnetns.Link(t, d.client, "c0", dpClient+"/24", d.gw, "g0", dpGwIn+"/24")
	testnetns.Link(t, d.gw, "g1", dpGwOut+"/24", d.server, "s0", dpServer+"/24")
	d.client.Run(t, "ip", "route", "add", "default", "via", dpGwIn)
	d.server.Run(t, "ip", "route", "add", "default", "via", dpGwOut)
	d.gw.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.conf.g0.rp_filter=0", "net.ipv4.conf.g1.rp_filter=0", "net.netfilter.nf_conntrack_acct=1")
	conn, err := Dial(d.gw.FD)
	if err != nil {
		t.Fatal(err)
	}
	method, err := Probe(conn)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Queues == 0 {
		opts.QueueBase, opts.Queues = 300, 1
	}
	if d.rs, err = Install(conn, opts, method); err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	return d
}

// nftFile loads an nft script into ns.
func nftFile(t *testing.T, ns testnetns.NS, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\n%s", err, out, script)
	}
}

// echoServer echoes TCP on port in ns until the test ends.
func echoServer(t *testing.T, ns testnetns.NS, port int) {
	t.Helper()
	var ln net.Listener
	ns.Do(t, func() {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

func dialFrom(t *testing.T, ns testnetns.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	ns.Do(t, func() {
		var err error
		if c, err = net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, n int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, n)
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
}

var ctMarkRE = regexp.MustCompile(`mark=(\d+)`)

// ctMarkOf returns the conntrack mark of the TCP flow to dport in the
// gateway (conntrack -L prints it in decimal).
func (d *dataPath) ctMarkOf(t *testing.T, dport int) uint32 {
	t.Helper()
	out := d.gw.Run(t, "conntrack", "-L", "-p", "tcp", "--dport", strconv.Itoa(dport))
	m := ctMarkRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no conntrack entry for tcp dport %d:\n%s", dport, out)
	}
	v, _ := strconv.ParseUint(m[1], 10, 32)
	return uint32(v)
}

// markFlows gives TCP flows to dport the conntrack mark a verdict of
// picoseg's would, as a rule of another table (ctnetlink updates of the
// mark are refused by some kernels): once, while the field is empty.
func (d *dataPath) markFlows(t *testing.T, dport int, mark uint32) {
	t.Helper()
	nftFile(t, d.gw, fmt.Sprintf(`table inet verdicts {
	chain pre {
		type filter hook prerouting priority filter;
		tcp dport %d ct mark & %#x == 0 ct mark set ct mark | %#x
	}
}
`, dport, dpMask, mark))
}

func (d *dataPath) counters(t *testing.T) Counters {
	t.Helper()
	c, err := d.rs.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKernelForeignMarkIsNotAVerdict: another program sets bits inside
// picoseg's field of the packet mark (a mask shared by mistake; Tailscale
// and pbr use 0xff0000). While the queue is bypassed, the old ruleset
// copied those bits into the flow's conntrack mark, which then fast-pathed
// the flow as accepted without a verdict.
func TestKernelForeignMarkIsNotAVerdict(t *testing.T) {
	m := Marks{Mask: dpMask}
	d := newDataPath(t, Options{Marks: m})
	nftFile(t, d.gw, fmt.Sprintf(`table inet foreign {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		meta mark set meta mark | %#x
	}
}
`, m.Accepted(0)))
	echoServer(t, d.server, dpEchoTCP)
	c := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dpEchoTCP))
	roundTrip(t, c, 64)
	if st, _ := m.Decode(d.ctMarkOf(t, dpEchoTCP)); st != StateUnjudged {
		t.Fatalf("a mark set by another program became the flow's verdict: conntrack says %v", st)
	}
	if cs := d.counters(t); cs.FastPath.Packets != 0 {
		t.Errorf("%d packets of an unjudged flow were fast-pathed", cs.FastPath.Packets)
	}
}

// TestKernelTrippedNeverReachesCtMark: a fast-pathed flow of a class with a
// byte bound goes over it while nobody answers the queue (bypass, or a
// full queue with fail-open). The packet passes, but the flow must keep
// its class mark so that its next packet is checked again; the old ruleset
// stored Tripped (above every class) and fast-pathed the flow unchecked.
func TestKernelTrippedNeverReachesCtMark(t *testing.T) {
	m := Marks{Mask: dpMask}
	d := newDataPath(t, Options{Marks: m, Classes: []Class{{}, {Bytes: 1000}}})
	echoServer(t, d.server, dpEchoTCP)
	d.markFlows(t, dpEchoTCP, m.Accepted(1))
	c := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dpEchoTCP))
	for range 5 {
		roundTrip(t, c, 1000)
	}
	st, class := m.Decode(d.ctMarkOf(t, dpEchoTCP))
	cs := d.counters(t)
	t.Logf("after 10 kB: conntrack mark says %v class %d; tripped %d packets", st, class, cs.Tripped.Packets)
	if cs.Tripped.Packets == 0 {
		t.Fatal("the class check never tripped")
	}
	if st != StateAccepted || class != 1 {
		t.Fatalf("the flow's conntrack mark says %v class %d, want accepted class 1 (checked again)", st, class)
	}
	before := cs.Tripped.Packets
	roundTrip(t, c, 100)
	if after := d.counters(t).Tripped.Packets; after <= before {
		t.Errorf("the next packet over the bound was not checked again (tripped %d -> %d)", before, after)
	}
}

// TestKernelExpectedConnectionIsJudged: an FTP control connection has an
// accepted mark; the passive-mode reply makes conntrack expect a data
// connection, which it creates with the control connection's mark. The
// data connection must not keep that inherited accept: it is queued and
// judged by its own tuple (here nobody answers, so it stays unjudged).
func TestKernelExpectedConnectionIsJudged(t *testing.T) {
	m := Marks{Mask: dpMask}
	d := newDataPath(t, Options{Marks: m})
	nftFile(t, d.gw, `table inet helpers {
	ct helper ftp-std {
		type "ftp" protocol tcp
	}
	chain pre {
		type filter hook prerouting priority filter;
		tcp dport 21 ct helper set "ftp-std"
	}
}
`)
	const dataPort = 40123
	echoServer(t, d.server, dataPort)
	var ln net.Listener
	d.server.Do(t, func() {
		var err error
		if ln, err = net.Listen("tcp", ":21"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// The helper reads a line only where the previous one ended: a
		// server greets first.
		io.WriteString(c, "220 ready\r\n")
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil { // PASV
			return
		}
		fmt.Fprintf(c, "227 Entering Passive Mode (198,51,100,1,%d,%d).\r\n", dataPort>>8, dataPort&0xff)
		io.Copy(io.Discard, r)
	}()
	d.markFlows(t, 21, m.Accepted(0))
	ctl := dialFrom(t, d.client, dpServer+":21")
	ctl.SetDeadline(time.Now().Add(2 * time.Second))
	cr := bufio.NewReader(ctl)
	if greeting, err := cr.ReadString('\n'); err != nil {
		t.Fatalf("greeting %q: %v", greeting, err)
	}
	if _, err := io.WriteString(ctl, "PASV\r\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := cr.ReadString('\n')
	if err != nil || !strings.HasPrefix(reply, "227 ") {
		t.Fatalf("PASV reply %q: %v", reply, err)
	}
	exp := d.gw.Run(t, "conntrack", "-L", "expect")
	if !strings.Contains(exp, strconv.Itoa(dataPort)) {
		t.Fatalf("conntrack expects no data connection; the FTP helper did not run:\n%s\n%s", exp, d.gw.Run(t, "conntrack", "-L"))
	}
	data := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dataPort))
	roundTrip(t, data, 64)
	out := d.gw.Run(t, "conntrack", "-L", "-p", "tcp", "--dport", strconv.Itoa(dataPort))
	if !strings.Contains(out, "helper=") && !strings.Contains(out, "ASSURED") {
		t.Logf("data connection:\n%s", out)
	}
	if st, _ := m.Decode(d.ctMarkOf(t, dataPort)); st != StateUnjudged {
		t.Fatalf("the expected data connection kept its master's mark (%v) instead of being judged", st)
	}
}

// TestKernelInvalidDropped: a TCP packet conntrack finds invalid (SYN, FIN
// and RST at once) is dropped before the queue and counted; the old
// ruleset queued it, past the new-flow guard.
func TestKernelInvalidDropped(t *testing.T) {
	d := newDataPath(t, Options{NewFlowRate: 10})
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	nftFile(t, d.server, `table inet seen {
	counter probes { }
	chain in {
		type filter hook prerouting priority raw;
		tcp dport 4444 counter name "probes"
	}
}
`)
	// Control: a well-formed SYN reaches the server (queue bypassed).
	hping(t, d.client, "-c", "3", "-i", "u20000", "-S", "-p", "4444", dpServer)
	control := serverProbes(t, d.server)
	hping(t, d.client, "-c", "20", "-i", "u2000", "-S", "-F", "-R", "-p", "4444", dpServer)
	got := serverProbes(t, d.server) - control
	cs := d.counters(t)
	t.Logf("control: %d well-formed SYNs arrived; invalid: %d arrived, %d dropped as invalid", control, got, cs.InvalidDropped.Packets)
	if control == 0 {
		t.Fatal("control: no SYN reached the server")
	}
	if got != 0 || cs.InvalidDropped.Packets < 20 {
		t.Errorf("invalid packets: %d reached the server, %d counted as dropped; want 0 and 20", got, cs.InvalidDropped.Packets)
	}
}

// hping runs hping3 in ns; it exits non-zero when nothing answers, which
// is what these tests want.
func hping(t *testing.T, ns testnetns.NS, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name, "hping3"}, args...)...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "hping statistic") {
		t.Fatalf("hping3 %v: %v\n%s", args, err, out)
	}
}

func serverProbes(t *testing.T, ns testnetns.NS) uint64 {
	t.Helper()
	out := ns.Run(t, "nft", "list", "counter", "inet", "seen", "probes")
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter:\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// TestKernelReversePath: a client on g0 sends from an address of the
// server's network (routed through g1): dropped before the queue, counted.
// The control from its own address passes.
func TestKernelReversePath(t *testing.T) {
	d := newDataPath(t, Options{ReversePathInterfaces: []string{"g0"}})
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	nftFile(t, d.server, `table inet seen {
	counter probes { }
	chain in {
		type filter hook prerouting priority raw;
		udp dport 4444 counter name "probes"
	}
}
`)
	hping(t, d.client, "-2", "-c", "3", "-i", "u20000", "-p", "4444", dpServer)
	control := serverProbes(t, d.server)
	hping(t, d.client, "-2", "-c", "10", "-i", "u20000", "-a", "198.51.100.77", "-p", "4444", dpServer)
	got := serverProbes(t, d.server) - control
	cs := d.counters(t)
	t.Logf("control: %d arrived; spoofed: %d arrived, %d dropped by the reverse-path check", control, got, cs.ReversePathDropped.Packets)
	if control != 3 {
		t.Fatalf("control: %d of 3 packets from the client's own address arrived", control)
	}
	if got != 0 || cs.ReversePathDropped.Packets != 10 {
		t.Errorf("spoofed source: %d arrived, %d counted; want 0 and 10", got, cs.ReversePathDropped.Packets)
	}
}

// udpFrame is an Ethernet frame carrying a UDP datagram (no UDP checksum).
func udpFrame(dst, src net.HardwareAddr, saddr, daddr netip.Addr, sport, dport uint16) []byte {
	b := append(append(append([]byte{}, dst...), src...), 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0}
	ip = append(append(ip, saddr.AsSlice()...), daddr.AsSlice()...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = append(udp, 0, 8, 0, 0)
	return append(append(b, ip...), udp...)
}

// TestKernelGuardFullStillLimits: a device forging a new source MAC for
// every new flow fills the per-device guard set. The devices outside the
// full set then share one budget: the flows beyond it are dropped and
// counted, not let through unlimited (the old guard's behaviour once its
// set was full).
func TestKernelGuardFullStillLimits(t *testing.T) {
	const rate, burst = 10, 10
	d := newDataPath(t, Options{NewFlowRate: rate, NewFlowBurst: burst})
	gwMAC, err := net.ParseMAC(strings.Fields(d.gw.Run(t, "cat", "/sys/class/net/g0/address"))[0])
	if err != nil {
		t.Fatal(err)
	}
	const flows = guardSize + 2000
	frames := make([][]byte, 0, flows)
	for i := 0; i < flows; i++ {
		mac := net.HardwareAddr{0x02, 0x66, byte(i >> 16), byte(i >> 8), byte(i), 0x01}
		frames = append(frames, udpFrame(gwMAC, mac, netip.MustParseAddr(dpClient), netip.MustParseAddr(dpServer), uint16(10000+i), 5000))
	}
	d.client.Do(t, func() {
		ifi, err := net.InterfaceByName("c0")
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], gwMAC)
		for _, fr := range frames {
			if err := unix.Sendto(fd, fr, 0, to); err != nil {
				t.Fatal(err)
			}
		}
	})
	time.Sleep(200 * time.Millisecond)
	cs := d.counters(t)
	t.Logf("%d new flows from as many forged MACs: %d queued, %d dropped outside the full guard set, %d by the per-device guard", flows, cs.Queued.Packets, cs.GuardFull.Packets, cs.GuardDropped.Packets)
	// Every MAC in the set has its own burst; the rest share one.
	if limit := uint64(guardSize + burst + 2*rate + 10); cs.Queued.Packets > limit {
		t.Errorf("%d new flows reached the queue, want at most %d", cs.Queued.Packets, limit)
	}
	if cs.GuardFull.Packets < flows-guardSize-burst-2*rate-10 {
		t.Errorf("only %d flows were dropped outside the full set", cs.GuardFull.Packets)
	}
}
