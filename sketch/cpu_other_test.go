//go:build !linux

package sketch

import "testing"

// measureCPU reports wall time only: thread CPU time is read on Linux.
func measureCPU(b *testing.B, per int, unit string, f func()) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	f()
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(per), "ns/"+unit)
}
