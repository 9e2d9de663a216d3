//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning is returned by Run when another daemon holds the lock.
var ErrAlreadyRunning = errors.New("another picoseg is running")

// lockPath is the lock file of this run: the option, else the policy's,
// else the default. The table the lock guards belongs to a network
// namespace, so the default does too: a daemon in another namespace (the
// demo's lab) takes a lock of its own, named after the namespace.
func (d *Daemon) lockPath() string {
	switch {
	case d.opts.Lock != "":
		return d.opts.Lock
	case d.cfg.Lock != "":
		return d.cfg.Lock
	}
	own, err1 := netnsID("/proc/self/ns/net")
	first, err2 := netnsID("/proc/1/ns/net")
	if err1 != nil || err2 != nil || own == first {
		return config.DefaultLock
	}
	return strings.TrimSuffix(config.DefaultLock, ".lock") + ".net" + strconv.FormatUint(own, 10) + ".lock"
}

// netnsID is the inode number that identifies a network namespace.
func netnsID(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// takeLock holds an exclusive lock on the lock file for the life of the
// process. Without it, a second `picoseg run` would install its table over
// the running one, clear every picoseg conntrack mark (un-dropping dropped
// flows) and delete the table on its way out, while the first went on
// reporting healthy. The kernel drops the lock when the process dies,
// however it dies, so a stale file never blocks a restart.
func (d *Daemon) takeLock() error {
	path := d.lockPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// No O_TRUNC: the holder's PID stays readable until the lock is ours.
	// O_NOFOLLOW: a link planted in a shared directory cannot redirect
	// the open to another file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w (%s is locked%s): this one changes nothing and exits", ErrAlreadyRunning, path, holder)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.lock = f
	// The lock goes last of all: closing the file releases it.
	d.undo = append([]func(){func() { f.Close() }}, d.undo...)
	return nil
}

// readHolder says which process holds the lock, as far as its file tells.
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return " by pid " + strconv.Itoa(pid)
	}
	return ""
}
