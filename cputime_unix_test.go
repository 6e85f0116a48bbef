//go:build unix

package exactly_test

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time the process has used so far,
// all its threads together (getrusage RUSAGE_SELF).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
