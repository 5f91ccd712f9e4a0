//go:build !linux

package journal

import "os"

// datasync makes f's data durable; where fdatasync is missing, with fsync.
func datasync(f *os.File) error { return f.Sync() }
