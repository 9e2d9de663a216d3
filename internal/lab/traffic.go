package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The helpers below open sockets inside a host's namespace (see Host.Do), so
// the kernel sees ordinary traffic from that host. Their errors wrap the
// socket errors: a connection refused by a RST or an ICMP unreachable
// satisfies errors.Is(err, syscall.ECONNREFUSED), and a silently dropped one
// is a timeout (errors.Is(err, os.ErrDeadlineExceeded)), so a test can tell a
// firewall's reject from its drop.

// Dial connects to address from h, like net.Dialer.DialContext.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	return c, nil
}

// Listen listens on address in h's namespace, like net.Listen.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	return ln, nil
}

// ListenPacket listens on address in h's namespace, like net.ListenPacket.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	return pc, nil
}

// TCPConnect succeeds iff h establishes a TCP connection to dst within
// timeout. It closes the connection at once.
func (h *Host) TCPConnect(ctx context.Context, dst netip.AddrPort, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := h.Do(func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", dst.String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return fmt.Errorf("lab: %s: tcp connect %v: %w", h.Name, dst, asTimeout(err))
	}
	return nil
}

// asTimeout makes every timeout satisfy errors.Is(err, os.ErrDeadlineExceeded):
// the net package reports a context deadline differently from a socket one.
func asTimeout(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	return fmt.Errorf("%w (%v)", os.ErrDeadlineExceeded, err)
}

// Server is a TCP or UDP echo server started by ServeTCP or ServeUDP. It
// stops on Close, when its context is done, or when the lab closes.
type Server struct {
	// Port is the port it listens on (all addresses of its host).
	Port int

	host     *Host
	ln       net.Listener   // TCP
	pc       net.PacketConn // UDP
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

var _ stopper = (*Server)(nil)

// Accepted returns the number of TCP connections accepted, or of UDP
// datagrams received.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Close stops the server and closes its connections. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.pc != nil {
			s.pc.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.host.lab.untrack(s)
	})
	return nil
}

func (s *Server) stop() error { return s.Close() }

// ServeTCP starts a TCP echo server on port (0: any free port) of every
// address of h, IPv4 and IPv6.
func (h *Host) ServeTCP(ctx context.Context, port int) (*Server, error) {
	ln, err := h.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &Server{host: h, ln: ln, Port: ln.Addr().(*net.TCPAddr).Port, conns: map[net.Conn]struct{}{}}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				io.Copy(c, c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	return s, nil
}

// ServeUDP starts a UDP echo server on port (0: any free port) of every
// address of h, IPv4 and IPv6.
func (h *Host) ServeUDP(ctx context.Context, port int) (*Server, error) {
	pc, err := h.ListenPacket("udp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &Server{host: h, pc: pc, Port: pc.LocalAddr().(*net.UDPAddr).Port}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.accepted.Add(1)
			pc.WriteTo(buf[:n], from)
		}
	}()
	return s, nil
}

// start registers the server with its lab and ties it to ctx.
func (s *Server) start(ctx context.Context) error {
	if err := s.host.lab.track(s); err != nil {
		s.Close()
		return err
	}
	context.AfterFunc(ctx, func() { s.Close() })
	return nil
}

// UDPProbe sends payload from h to dst and succeeds iff an answer (such as
// ServeUDP's echo) arrives within timeout. It returns the answer.
func (h *Host) UDPProbe(ctx context.Context, dst netip.AddrPort, payload []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := h.Dial(ctx, "udp", dst.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write(payload); err != nil {
		return nil, fmt.Errorf("lab: %s: udp probe %v: %w", h.Name, dst, err)
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: udp probe %v: %w", h.Name, dst, asTimeout(err))
	}
	return buf[:n], nil
}

// Ping sends count ICMP (or ICMPv6) echo requests from h to dst, 100 ms
// apart, and succeeds, like ping(8), iff at least one is answered within a
// second of the last request. It returns as soon as all are answered.
func (h *Host) Ping(ctx context.Context, dst netip.Addr, count int) error {
	if count < 1 {
		count = 1
	}
	network, address, request, reply := "ip4:icmp", "0.0.0.0", byte(8), byte(0)
	if dst.Is6() && !dst.Is4In6() {
		network, address, request, reply = "ip6:ipv6-icmp", "::", 128, 129
	}
	dst = dst.Unmap()
	pc, err := h.ListenPacket(network, address)
	if err != nil {
		return err
	}
	defer pc.Close()
	// A raw socket sees every echo reply in the namespace; the random ID
	// picks out ours.
	id := uint16(rand.Uint32())
	ctx, cancel := context.WithTimeout(ctx, time.Duration(count-1)*100*time.Millisecond+time.Second)
	defer cancel()
	stopRead := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stopRead()

	answers := make(chan int, count)
	go func() {
		defer close(answers)
		seen := map[uint16]bool{}
		buf := make([]byte, 1500)
		for len(seen) < count {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			ip, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			m := buf[:n]
			if ip.Unmap() != dst || len(m) < 8 || m[0] != reply || binary.BigEndian.Uint16(m[4:]) != id {
				continue
			}
			if seq := binary.BigEndian.Uint16(m[6:]); int(seq) < count && !seen[seq] {
				seen[seq] = true
				answers <- int(seq)
			}
		}
	}()
	for seq := range count {
		msg := make([]byte, 8+32)
		msg[0] = request
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		copy(msg[8:], "picoseg lab ping picoseg lab pin")
		if request == 8 { // the kernel computes ICMPv6 checksums itself
			binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		}
		if _, err := pc.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("lab: %s: ping %v: %w", h.Name, dst, err)
		}
		if seq < count-1 {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	got := 0
	for range answers {
		got++
	}
	if got == 0 {
		return fmt.Errorf("lab: %s: ping %v: no answer to %d echo requests: %w", h.Name, dst, count, os.ErrDeadlineExceeded)
	}
	return nil
}

// checksum is the Internet checksum of b (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// StartIperf3Server starts `iperf3 -s -p port` in h and returns once it
// listens (or fails). Stop it with Process.Stop; the lab's Close stops it too.
func (h *Host) StartIperf3Server(ctx context.Context, port int) (*Process, error) {
	p, err := h.Start(ctx, "iperf3", "-s", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	// Poll the socket table rather than connect: iperf3 takes a probing
	// connection for a client.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		listening, err := h.listeningTCP(port)
		if err != nil {
			p.Stop()
			return nil, err
		}
		if listening {
			return p, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("lab: %s: iperf3 server exited: %w", h.Name, p.Wait())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-deadline:
			p.Stop()
			return nil, fmt.Errorf("lab: %s: iperf3 server not listening on port %d after 5s%s", h.Name, port, tail(p.Output()))
		case <-tick.C:
		}
	}
}

// listeningTCP reports whether a TCP socket listens on port in h.
func (h *Host) listeningTCP(port int) (bool, error) {
	var found bool
	err := h.Do(func() error {
		// thread-self, not self: the namespace is this thread's alone.
		for _, file := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			f, err := os.Open(file)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			found = found || hasListener(f, port)
			f.Close()
		}
		return nil
	})
	return found, err
}

// hasListener scans a /proc/net/tcp table for a listening socket on port.
func hasListener(r io.Reader, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 0A is LISTEN.
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// Iperf3Result is the summary of one iperf3 client run.
type Iperf3Result struct {
	// BitsPerSecond is the rate the receiver saw.
	BitsPerSecond float64
	// Retransmits counts TCP retransmissions (TCP only).
	Retransmits int
	// LostPercent is the share of datagrams lost (UDP only).
	LostPercent float64
}

// Iperf3 runs an iperf3 client in h against server for seconds seconds (0:
// iperf3's default, or what extra says, e.g. "-n", "10M") with extra client
// flags such as "-u", "-b", "10M", "-R", and returns the rate the receiver saw.
func (h *Host) Iperf3(ctx context.Context, server netip.AddrPort, seconds int, extra ...string) (Iperf3Result, error) {
	args := []string{"-c", server.Addr().String(), "-p", strconv.Itoa(int(server.Port())), "-J"}
	if seconds > 0 {
		args = append(args, "-t", strconv.Itoa(seconds))
	}
	args = append(args, extra...)
	out, runErr := h.Command(ctx, "iperf3", args...).Output()
	res, err := parseIperf3(out)
	if err != nil {
		return Iperf3Result{}, fmt.Errorf("lab: %s: iperf3 %s: %w", h.Name, strings.Join(args, " "), errors.Join(err, runErr))
	}
	return res, nil
}

// parseIperf3 reads the summary of `iperf3 -c ... -J` output.
func parseIperf3(out []byte) (Iperf3Result, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumReceived *struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent *struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			Sum *struct { // UDP
				BitsPerSecond float64 `json:"bits_per_second"`
				LostPercent   float64 `json:"lost_percent"`
			} `json:"sum"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Iperf3Result{}, fmt.Errorf("unreadable output: %w%s", err, tail(string(out)))
	}
	if doc.Error != "" {
		return Iperf3Result{}, errors.New(doc.Error)
	}
	var res Iperf3Result
	switch {
	case doc.End.SumReceived != nil:
		res.BitsPerSecond = doc.End.SumReceived.BitsPerSecond
	case doc.End.Sum != nil:
		res.BitsPerSecond = doc.End.Sum.BitsPerSecond
	default:
		return Iperf3Result{}, errors.New("no summary in output")
	}
	if doc.End.SumSent != nil {
		res.Retransmits = doc.End.SumSent.Retransmits
	}
	if doc.End.Sum != nil {
		res.LostPercent = doc.End.Sum.LostPercent
	}
	return res, nil
}
