//go:build linux

package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testnetns"
	"github.com/picoseg/picoseg/pkg/nft"
	"golang.org/x/sys/unix"
)

// The lab: client (192.0.2.1) and client B (192.0.3.1), each on a link of
// its own -- gw -- server (198.51.100.1). The new-flow guard is per device
// (interface and MAC), so the second client is a second device. All
// addresses are documentation prefixes that exist only inside the test's
// namespaces.
const (
	clientA    = "192.0.2.1"
	clientB    = "192.0.3.1"
	serverAddr = "198.51.100.1"

	portBulk    = 8080 // accepted: the server counts what it receives
	portEcho    = 8081 // accepted: the server echoes, for long-lived flows
	portBlocked = 9090 // dropped by the handler
	bulkSrcPort = 40001
	bulkBytes   = 8 << 20
	udpFlood    = 10000 // first UDP port of the flood; accepted
	// udpRandFlood is the port of the random-source flood; accepted.
	udpRandFlood = 60000

	guardRate  = 20
	guardBurst = 20
)

type lab struct {
	client, clientB, gw, server testnetns.NS
}

func newLab(t *testing.T) lab {
	t.Helper()
	l := lab{testnetns.New(t, "picoseg-cl"), testnetns.New(t, "picoseg-cb"), testnetns.New(t, "picoseg-gw"), testnetns.New(t, "picoseg-sv")}
	testnetns.Link(t, l.client, "c0", clientA+"/24", l.gw, "g0", "192.0.2.254/24")
	testnetns.Link(t, l.clientB, "c0", clientB+"/24", l.gw, "g2", "192.0.3.254/24")
	testnetns.Link(t, l.gw, "g1", "198.51.100.254/24", l.server, "s0", serverAddr+"/24")
	l.client.Run(t, "ip", "route", "add", "default", "via", "192.0.2.254")
	l.clientB.Run(t, "ip", "route", "add", "default", "via", "192.0.3.254")
	l.server.Run(t, "ip", "route", "add", "default", "via", "198.51.100.254")
	l.gw.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return l
}

// install connects to nftables in the gateway, probes its kernel for a
// queue method and installs picoseg's ruleset with opts there, removed
// with the test.
func (l lab) install(t *testing.T, opts nft.Options) (*nft.Ruleset, *nft.Conn, nft.QueueMethod) {
	t.Helper()
	nc, err := nft.Dial(l.gw.FD)
	if err != nil {
		t.Fatal(err)
	}
	method, err := nft.Probe(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("queue method: %v", method)
	rs, err := nft.Install(nc, opts, method)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Remove() })
	return rs, nc, method
}

// judge is the test's engine: TCP to the bulk and echo ports and UDP to
// the flood ports are accepted into class 0, everything else is dropped.
type judge struct {
	marks nft.Marks

	mu       sync.Mutex
	byDst    map[uint16]int // packets judged, by destination port
	bulk     int            // packets of the bulk flow, either direction
	fromA    map[uint8]int  // packets from client A, by protocol
	fromB    int
	received int
	noMAC    int // packets that came without the sender's hardware address
	untimed  int // packets whose Time is not a reading of the test's clock
}

// testEpoch is what the test's clock reads, give or take the reads counted
// in its nanoseconds.
var testEpoch = time.Unix(1_700_000_000, 0)

func newJudge() *judge {
	return &judge{marks: nft.DefaultMarks(), byDst: map[uint16]int{}, fromA: map[uint8]int{}}
}

func (j *judge) Judge(pkt *Packet) (bool, uint32) {
	p := pkt.Payload
	j.mu.Lock()
	if len(pkt.HwAddr) != 6 {
		j.noMAC++
	}
	if pkt.Time.Truncate(time.Second) != testEpoch || pkt.Time.Equal(testEpoch) {
		j.untimed++
	}
	j.mu.Unlock()
	if len(p) < 20 || p[0]>>4 != 4 {
		return false, 0
	}
	ihl := int(p[0]&0x0f) * 4
	if len(p) < ihl+4 {
		return false, 0
	}
	proto := p[9]
	src := netip.AddrFrom4([4]byte(p[12:16]))
	sport := binary.BigEndian.Uint16(p[ihl:])
	dport := binary.BigEndian.Uint16(p[ihl+2:])

	j.mu.Lock()
	j.received++
	j.byDst[dport]++
	if sport == bulkSrcPort || dport == bulkSrcPort {
		j.bulk++
	}
	switch src.String() {
	case clientA:
		j.fromA[proto]++
	case clientB:
		j.fromB++
	}
	j.mu.Unlock()

	switch {
	case proto == unix.IPPROTO_TCP && (dport == portBulk || dport == portEcho):
		return true, j.marks.Accepted(0)
	case proto == unix.IPPROTO_UDP && dport >= udpFlood:
		return true, j.marks.Accepted(0)
	}
	return false, 0
}

func (j *judge) snapshot() (byDst map[uint16]int, bulk, udpFromA, fromB int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	byDst = map[uint16]int{}
	for k, v := range j.byDst {
		byDst[k] = v
	}
	return byDst, j.bulk, j.fromA[unix.IPPROTO_UDP], j.fromB
}

// serve runs the server's listeners: bulk replies with the number of bytes
// it read, echo echoes, blocked would answer if anything got through.
func serve(t *testing.T, server testnetns.NS) {
	t.Helper()
	var lns []net.Listener
	server.Do(t, func() {
		for _, port := range []int{portBulk, portEcho, portBlocked} {
			ln, err := net.Listen("tcp4", net.JoinHostPort(serverAddr, strconv.Itoa(port)))
			if err != nil {
				t.Error(err)
				return
			}
			lns = append(lns, ln)
		}
	})
	if len(lns) != 3 {
		t.FailNow()
	}
	for i, ln := range lns {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(30 * time.Second))
					if i == 1 {
						io.Copy(c, c)
						return
					}
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "%d", n)
				}()
			}
		}()
	}
}

// dial connects from src (port 0: any) to the server, inside ns.
func dial(t *testing.T, ns testnetns.NS, src string, srcPort, dstPort int, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	ns.Do(t, func() {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src), Port: srcPort}}
		c, err = d.Dial("tcp4", net.JoinHostPort(serverAddr, strconv.Itoa(dstPort)))
	})
	return c, err
}

// echo checks that a long-lived connection still carries data.
func echo(c net.Conn) error {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := []byte("still flowing")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err
}

func TestKernelDataPath(t *testing.T) {
	testnetns.NeedRoot(t)
	l := newLab(t)
	serve(t, l.server)

	nftOpts := nft.Options{QueueBase: 4200, Queues: 2, NewFlowRate: guardRate, NewFlowBurst: guardBurst}
	rs, nc, method := l.install(t, nftOpts)

	j := newJudge()
	var reads atomic.Int64
	clock := func() time.Time { return testEpoch.Add(time.Duration(reads.Add(1))) }
	a, err := New(Options{QueueBase: 4200, Queues: 2, MarkMask: nft.DefaultMarkMask, NetNS: l.gw.FD, Now: clock}, j)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-runErr:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("queues not bound after 5s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)

	t.Run("accepted bulk flow is fast-pathed", func(t *testing.T) {
		c, err := dial(t, l.client, clientA, bulkSrcPort, portBulk, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		if _, err := c.Write(make([]byte, bulkBytes)); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		reply, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(reply) != strconv.Itoa(bulkBytes) {
			t.Fatalf("server got %q bytes, want %d", reply, bulkBytes)
		}
		_, bulk, _, _ := j.snapshot()
		cs, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d MiB in %v; packets of the flow judged in userspace: %d; fast-path packets: %d",
			bulkBytes>>20, time.Since(start).Round(time.Millisecond), bulk, cs.FastPath.Packets)
		if bulk < 1 || bulk > 3 {
			t.Errorf("%d packets of the bulk flow reached userspace, want 1..3", bulk)
		}
		if cs.FastPath.Packets < 100 {
			t.Errorf("fast path counted %d packets, want the bulk of the flow", cs.FastPath.Packets)
		}
		// Forwarded Ethernet frames come with their sender's MAC, which
		// identity and spoof checks need.
		j.mu.Lock()
		noMAC, untimed, got := j.noMAC, j.untimed, j.received
		j.mu.Unlock()
		if noMAC > 0 {
			t.Errorf("%d of %d queued packets came without a hardware address", noMAC, got)
		}
		// Every packet carries the time of the read that brought it, from
		// the adapter's clock.
		if untimed > 0 || reads.Load() == 0 {
			t.Errorf("%d of %d queued packets without a time from the adapter's clock (read %d times)", untimed, got, reads.Load())
		}
	})

	t.Run("dropped flow is blocked", func(t *testing.T) {
		c, err := dial(t, l.client, clientA, 0, portBlocked, 1500*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatal("connection to the blocked port succeeded")
		}
		if byDst, _, _, _ := j.snapshot(); byDst[portBlocked] == 0 {
			t.Fatalf("handler never saw the blocked SYN (%v)", err)
		}
	})

	t.Run("guard stops a new-flow flood from one device only", func(t *testing.T) {
		before, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		_, _, udpBefore, _ := j.snapshot()
		var sent int
		var floodErr error
		flooding := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.client.Do(t, func() {
				pc, err := net.ListenPacket("udp4", net.JoinHostPort(clientA, "0"))
				if err != nil {
					floodErr = err
					close(flooding)
					return
				}
				defer pc.Close()
				close(flooding)
				dst := &net.UDPAddr{IP: net.ParseIP(serverAddr)}
				end := time.Now().Add(time.Second)
				for time.Now().Before(end) {
					dst.Port = udpFlood + sent%50000
					if _, err := pc.WriteTo([]byte("flood"), dst); err == nil {
						sent++
					}
				}
			})
		}()
		<-flooding
		time.Sleep(300 * time.Millisecond)
		// Another source opens a flow in the middle of the flood.
		c, err := dial(t, l.clientB, clientB, 0, portEcho, 3*time.Second)
		if err != nil {
			t.Errorf("client B could not connect during client A's flood: %v", err)
		} else {
			if err := echo(c); err != nil {
				t.Errorf("client B's flow during the flood: %v", err)
			}
			c.Close()
		}
		<-done
		if floodErr != nil {
			t.Fatal(floodErr)
		}
		after, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		_, _, udpAfter, _ := j.snapshot()
		guarded := after.GuardDropped.Packets - before.GuardDropped.Packets
		judged := udpAfter - udpBefore
		t.Logf("flood: %d UDP new flows sent in 1s, %d dropped by the guard, %d reached userspace", sent, guarded, judged)
		if guarded == 0 {
			t.Error("guard dropped nothing")
		}
		// burst + rate * duration, with slack for timing.
		if limit := guardBurst + 2*guardRate + 10; judged > limit {
			t.Errorf("%d flood packets reached userspace, want at most %d", judged, limit)
		}
	})

	// A device that forges a new source address for every packet gets no
	// new budget for each: the guard keys on the interface and the MAC.
	// (Keyed on the source address, as it was, every forged address had a
	// fresh burst and the whole flood reached userspace.)
	t.Run("guard keys on the device, not the claimed address", func(t *testing.T) {
		if _, err := exec.LookPath("hping3"); err != nil {
			t.Skip("hping3 is not installed")
		}
		l.gw.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.g0.rp_filter=0")
		time.Sleep(time.Second) // the previous subtest's burst refills
		before, _, _, _ := j.snapshot()
		cs0, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		flood := exec.Command("ip", "netns", "exec", l.client.Name, "timeout", "1", "hping3", "--flood", "--rand-source", "-2", "-p", strconv.Itoa(udpRandFlood), serverAddr)
		out, _ := flood.CombinedOutput() // timeout ends it with a non-zero status
		after, _, _, _ := j.snapshot()
		cs1, err := rs.Counters()
		if err != nil {
			t.Fatal(err)
		}
		judged := after[udpRandFlood] - before[udpRandFlood]
		guarded := cs1.GuardDropped.Packets - cs0.GuardDropped.Packets
		t.Logf("random-source flood for 1s: %d dropped by the guard, %d reached userspace (hping3: %s)", guarded, judged, lastLine(string(out)))
		if guarded == 0 {
			t.Error("the guard dropped none of a random-source flood")
		}
		if limit := guardBurst + 2*guardRate + 10; judged > limit {
			t.Errorf("%d packets of a random-source flood reached userspace, want at most %d (one device's budget)", judged, limit)
		}
	})

	// A long-lived accepted flow, opened while the daemon runs.
	long, err := dial(t, l.client, clientA, 0, portEcho, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if err := echo(long); err != nil {
		t.Fatal(err)
	}

	st := a.Stats()
	t.Logf("queue stats: %+v", st)
	var received uint64
	for _, s := range st {
		received += s.Received
		if s.Reopens != 0 || s.VerdictErrors != 0 {
			t.Errorf("queue %d: %+v", s.Queue, s.Stats)
		}
	}
	if received == 0 {
		t.Error("no packet counted in Stats")
	}

	stop()
	if bound := l.gw.Run(t, "cat", "/proc/net/netfilter/nfnetlink_queue"); bound != "" {
		t.Errorf("queues still bound after Run returned:\n%s", bound)
	}

	t.Run("daemon down, fail open: new flows bypass the queue", func(t *testing.T) {
		for _, port := range []int{portEcho, portBlocked} {
			c, err := dial(t, l.client, clientA, 0, port, 3*time.Second)
			if err != nil {
				t.Fatalf("port %d: %v", port, err)
			}
			c.Close()
		}
		if err := echo(long); err != nil {
			t.Fatalf("established flow: %v", err)
		}
	})

	t.Run("daemon down, fail closed: new flows drop, accepted flows keep flowing", func(t *testing.T) {
		closed := nftOpts
		closed.FailClosed = true
		if _, err := nft.Install(nc, closed, method); err != nil {
			t.Fatal(err)
		}
		c, err := dial(t, l.client, clientA, 0, portEcho, 1500*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatal("new flow passed with no daemon and fail-closed")
		}
		if err := echo(long); err != nil {
			t.Fatalf("established accepted flow stopped: %v", err)
		}
	})
}

// TestKernelQueueFull fills a short queue with a slow handler. Without
// fail-open the kernel drops what does not fit and counts it (KernelDrops);
// with fail-open it lets it through.
func TestKernelQueueFull(t *testing.T) {
	testnetns.NeedRoot(t)
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail-open=%v", failOpen), func(t *testing.T) {
			l := newLab(t)
			const base, port, sent = 4300, 7000, 300
			var pc net.PacketConn
			l.server.Do(t, func() {
				var err error
				if pc, err = net.ListenPacket("udp4", net.JoinHostPort(serverAddr, strconv.Itoa(port))); err != nil {
					t.Fatal(err)
				}
			})
			defer pc.Close()
			// Room for the whole burst, so that a reader the scheduler
			// leaves waiting does not count the server's drops as the
			// gateway's.
			forceReadBuffer(t, pc, 4<<20)

			l.install(t, nft.Options{QueueBase: base, Queues: 1, FailClosed: true})
			marks := nft.DefaultMarks()
			slow := HandlerFunc(func(*Packet) (bool, uint32) {
				time.Sleep(20 * time.Millisecond)
				return true, marks.Accepted(0)
			})
			a, err := New(Options{QueueBase: base, Queues: 1, MaxQueueLen: 2, FailOpen: failOpen, MarkMask: marks.Mask, NetNS: l.gw.FD}, slow)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-a.Ready()

			// One datagram first, so that neighbour resolution on the way
			// to the server is done before the burst.
			l.client.Do(t, func() {
				c, err := net.Dial("udp4", net.JoinHostPort(serverAddr, strconv.Itoa(port)))
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte("x"))
				c.Close()
			})
			buf := make([]byte, 16)
			pc.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				t.Fatalf("the first datagram did not arrive: %v", err)
			}
			// Count what arrives while the burst is sent.
			counted := make(chan int)
			go func() {
				n := 0
				b := make([]byte, 16)
				for {
					pc.SetReadDeadline(time.Now().Add(2 * time.Second))
					if _, _, err := pc.ReadFrom(b); err != nil {
						counted <- n
						return
					}
					n++
				}
			}()
			// Each datagram from its own socket: a new flow each, all queued.
			l.client.Do(t, func() {
				for i := 0; i < sent; i++ {
					c, err := net.Dial("udp4", net.JoinHostPort(serverAddr, strconv.Itoa(port)))
					if err != nil {
						t.Fatal(err)
					}
					c.Write([]byte("x"))
					c.Close()
				}
			})
			received := <-counted
			var drops Drops
			l.gw.Do(t, func() { drops, err = KernelDrops(base, 1) })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("fail-open=%v: %d of %d datagrams arrived; kernel drops %+v", failOpen, received, sent, drops)
			if failOpen {
				if received < sent*95/100 || drops.QueueFull != 0 {
					t.Errorf("fail-open: %d of %d arrived, %d dropped; want all through", received, sent, drops.QueueFull)
				}
			} else if drops.QueueFull == 0 || received >= sent {
				t.Errorf("queue full without fail-open: %d of %d arrived, kernel counted %d drops; want drops counted", received, sent, drops.QueueFull)
			}
		})
	}
}

// forceReadBuffer sets pc's receive buffer past net.core.rmem_max.
func forceReadBuffer(t *testing.T, pc net.PacketConn, n int) {
	t.Helper()
	rc, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v %v", err, serr)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
