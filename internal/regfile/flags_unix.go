//go:build unix

package regfile

import "syscall"

// NoFollow, added to Open's flag, refuses a symbolic link as the last
// element of the path.
const NoFollow = syscall.O_NOFOLLOW

const (
	sysNoFollow = syscall.O_NOFOLLOW
	nonBlock    = syscall.O_NONBLOCK
)
