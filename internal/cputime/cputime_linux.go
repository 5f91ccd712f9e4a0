package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

func thread() time.Duration  { return rusage(unix.RUSAGE_THREAD) }
func process() time.Duration { return rusage(unix.RUSAGE_SELF) }

func rusage(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
