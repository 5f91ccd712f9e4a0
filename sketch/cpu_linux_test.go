//go:build linux

package sketch

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time of the calling OS thread: unlike wall time it
// leaves out the time other processes held the core, which on a shared
// machine is most of the noise in ns/op.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU runs f with the goroutine locked to its thread and reports its
// thread CPU time per op, divided by per (samples or digests per op), as
// "cpu-ns/<unit>".
func measureCPU(b *testing.B, per int, unit string, f func()) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start := threadCPU()
	f()
	cpu := threadCPU() - start
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(per), "ns/"+unit)
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(per), "cpu-ns/"+unit)
	}
}
