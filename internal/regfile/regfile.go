// Package regfile opens files that must be regular files: alert logs,
// the DHCP leases file, the device inventory. A FIFO, a device or a socket
// put at such a path (by mistake, or by whoever can write to its
// directory) must neither hang the daemon on open nor receive what was
// meant for a file.
package regfile

import (
	"fmt"
	"io/fs"
	"os"
)

// Open opens path as os.OpenFile does, with flag and perm, and returns the
// file only if it is a regular file. The open itself never blocks: it adds
// O_NONBLOCK, so a FIFO without a writer (or reader) cannot hang it (the
// flag means nothing to a regular file). The type is checked on the opened
// file, so a path swapped between a check and the open is still caught.
//
// Add NoFollow to flag to refuse a symbolic link as the last element of
// path.
func Open(path string, flag int, perm fs.FileMode) (*os.File, error) {
	stat, sysFlag := os.Stat, flag&^NoFollow|nonBlock
	if flag&NoFollow != 0 {
		stat, sysFlag = os.Lstat, sysFlag|sysNoFollow
	}
	// Refused before opening where it can be: opening a device can have
	// effects of its own.
	if fi, err := stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	f, err := os.OpenFile(path, sysFlag, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

func notRegular(path string, m fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: %s", ErrNotRegular, typeName(m))}
}

// ErrNotRegular is wrapped by Open's error for a path that is not a
// regular file.
var ErrNotRegular = fmt.Errorf("not a regular file")

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link, not followed"
	}
	return m.Type().String()
}
