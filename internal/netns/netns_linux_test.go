//go:build linux

package netns

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// inode names the network namespace of the calling thread.
func inode(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoRunsInTheNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if err := Do(-1, func() error { t.Error("fn ran"); return nil }); err == nil {
		t.Fatal("Do entered a namespace through a bad handle")
	}
	// A namespace of our own, held by an open handle while the test runs.
	var fd int
	ready := make(chan error, 1)
	go lockAndUnshare(ready, &fd)
	if err := <-ready; err != nil {
		t.Skipf("unshare: %v", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	here := inode(t)
	var inside uint64
	if err := Do(fd, func() error { inside = inode(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != st.Ino || inside == here {
		t.Errorf("fn ran in namespace %d, want %d (the caller's is %d)", inside, st.Ino, here)
	}
	if now := inode(t); now != here {
		t.Errorf("the caller moved to namespace %d", now)
	}
	want := errors.New("fn's own error")
	if err := Do(fd, func() error { return want }); err != want {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

// lockAndUnshare makes a new network namespace on a thread that is never
// given back, and opens a handle on it.
func lockAndUnshare(ready chan<- error, fd *int) {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		ready <- err
		return
	}
	var err error
	*fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	ready <- err
}
