package sketch

import (
	"runtime"
	"testing"

	"github.com/veneur-lite/veneur-lite/internal/cputime"
)

// measureCPU runs f with the goroutine locked to its thread and reports its
// thread CPU time per op, divided by per (samples or digests per op), as
// "cpu-ns/<unit>": unlike wall time it leaves out the time other processes
// held the core, which on a shared machine is most of the noise in ns/op.
func measureCPU(b *testing.B, per int, unit string, f func()) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start := cputime.Thread()
	f()
	cpu := cputime.Thread() - start
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(per), "ns/"+unit)
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(per), "cpu-ns/"+unit)
	}
}
