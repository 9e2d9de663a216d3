//go:build !linux

package queue

// KernelDrops needs Linux.
func KernelDrops(base uint16, n int) (Drops, error) { return Drops{}, ErrUnsupported }
