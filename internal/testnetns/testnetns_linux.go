//go:build linux

// Package testnetns gives kernel tests network namespaces of their own:
// each gets a random name, so parallel runs do not collide, and is deleted
// with the test even when it fails.
package testnetns

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/netns"
)

// NeedRoot skips the test unless it runs as root with ip, nft and tools.
func NeedRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces")
	}
	for _, tool := range append([]string{"ip", "nft"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("kernel test: %s not installed", tool)
		}
	}
}

// NS is one network namespace.
type NS struct {
	Name string
	FD   int // an open handle on the namespace, for netlink sockets in it
}

// New creates a namespace named prefix-<random> with lo up.
func New(t testing.TB, prefix string) NS {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := prefix + "-" + hex.EncodeToString(b[:])
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ns := NS{Name: name, FD: fd}
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command in the namespace and returns its output; a failure
// fails the test.
func (ns NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Run runs a command and returns its output; a failure fails the test.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Link connects a and b with a veth pair named ifA (in a) and ifB (in b),
// addressed with the given prefixes, and brings both ends up.
func Link(t testing.TB, a NS, ifA, addrA string, b NS, ifB, addrB string) {
	t.Helper()
	Run(t, "ip", "link", "add", ifA, "netns", a.Name, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	a.Run(t, "ip", "addr", "add", addrA, "dev", ifA)
	b.Run(t, "ip", "addr", "add", addrB, "dev", ifB)
	a.Run(t, "ip", "link", "set", ifA, "up")
	b.Run(t, "ip", "link", "set", ifB, "up")
}

// Do runs fn on an OS thread switched into the namespace. Sockets created
// by fn belong to the namespace for their whole life, whichever thread
// later uses them.
func (ns NS) Do(t testing.TB, fn func()) {
	t.Helper()
	if err := netns.Do(ns.FD, func() error { fn(); return nil }); err != nil {
		t.Fatalf("enter netns %s: %v", ns.Name, err)
	}
}

// Listen opens a listener in the namespace, closed with the test; a
// failure fails the test.
func (ns NS) Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	ns.Do(t, func() { ln, err = net.Listen(network, addr) })
	if err != nil {
		t.Fatalf("listen in netns %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Dial connects from the namespace, giving up after three seconds; the
// connection is closed with the test, and a failure fails it.
func (ns NS) Dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	ns.Do(t, func() { c, err = net.DialTimeout(network, addr, 3*time.Second) })
	if err != nil {
		t.Fatalf("dial from netns %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
