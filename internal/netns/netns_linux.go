//go:build linux

// Package netns runs code inside another network namespace.
//
// A network namespace belongs to a thread, not to a process: a socket is
// created in the namespace of the thread that opens it and stays there for
// its whole life, whichever thread uses it later. So entering a namespace
// means locking a goroutine to its thread, switching that thread, and never
// letting the runtime hand the thread to another goroutine.
package netns

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has entered the network namespace fd
// refers to, and returns fn's error; a failure to enter is an
// *os.SyscallError ("setns") and fn does not run. Sockets fn opens belong
// to that namespace for their whole life and may be used from any
// goroutine afterwards; goroutines fn starts do not run in the namespace.
// fn must not change other namespaces.
func Do(fd int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when this goroutine ends, the
		// runtime destroys the thread instead of reusing one left in
		// another namespace.
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- os.NewSyscallError("setns", err)
			return
		}
		done <- fn()
	}()
	return <-done
}
