//go:build linux

package queue

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Network namespace helpers for kernel tests. Every namespace gets a random
// suffix so parallel runs do not collide, and is deleted with the test even
// when it fails.

// needRoot skips the test unless it runs as root with the given tools.
func needRoot(t *testing.T, tools ...string) {
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

type netns struct {
	name string
	fd   int
}

// newNetNS creates a namespace named prefix-<random> with lo up.
func newNetNS(t *testing.T, prefix string) netns {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := prefix + "-" + hex.EncodeToString(b[:])
	run(t, "ip", "netns", "add", name)
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
	ns := netns{name: name, fd: fd}
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// run runs a command in the namespace and returns its output.
func (ns netns) run(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// link connects a and b with a veth pair named ifA (in a) and ifB (in b),
// addressed with the given prefixes, and brings both ends up.
func link(t *testing.T, a netns, ifA, addrA string, b netns, ifB, addrB string) {
	t.Helper()
	run(t, "ip", "link", "add", ifA, "netns", a.name, "type", "veth", "peer", "name", ifB, "netns", b.name)
	a.run(t, "ip", "addr", "add", addrA, "dev", ifA)
	b.run(t, "ip", "addr", "add", addrB, "dev", ifB)
	a.run(t, "ip", "link", "set", ifA, "up")
	b.run(t, "ip", "link", "set", ifB, "up")
}

// do runs fn on an OS thread switched into the namespace. Sockets created by
// fn belong to the namespace for their whole life, whichever thread later
// uses them.
func (ns netns) do(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		// Only a thread back in its own namespace may serve other
		// goroutines; otherwise it dies with this goroutine, still locked.
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("enter netns %s: %v", ns.name, err)
	}
}
