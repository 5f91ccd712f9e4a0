package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the user + system CPU time of the calling OS thread. The
// caller must hold its thread (runtime.LockOSThread) for two readings to be
// comparable.
func threadCPU() time.Duration { return rusageCPU(unix.RUSAGE_THREAD) }

// processCPU is the user + system CPU time of the whole process so far.
func processCPU() time.Duration { return rusageCPU(unix.RUSAGE_SELF) }

func rusageCPU(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
