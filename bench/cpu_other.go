//go:build !linux

package bench

import "time"

// threadCPU and processCPU are measured on Linux only (RUSAGE_THREAD);
// elsewhere CPU figures read as 0, "not measured".
func threadCPU() time.Duration  { return 0 }
func processCPU() time.Duration { return 0 }
