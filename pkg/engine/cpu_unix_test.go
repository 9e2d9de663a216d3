//go:build unix

package engine

import "syscall"

// processCPU is the CPU time the process has used (user and system), in
// nanoseconds: benchmarks report it per op beside the wall time, which a
// busy machine inflates.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
