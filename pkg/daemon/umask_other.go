//go:build !unix

package daemon

func umask(m int) int { return m }
