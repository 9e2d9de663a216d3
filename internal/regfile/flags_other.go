//go:build !unix

package regfile

// NoFollow, added to Open's flag, refuses a symbolic link as the last
// element of the path. This system has no such open flag: Open's Lstat
// check alone refuses the link.
const NoFollow = 1 << 30

const (
	sysNoFollow = 0
	nonBlock    = 0
)
