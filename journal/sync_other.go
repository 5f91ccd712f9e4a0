//go:build !linux

package journal

import "os"

// datasync makes f's data durable; where fdatasync is missing, with fsync.
func datasync(f *os.File) error { return f.Sync() }

// writeAll writes bufs to f in order.
func writeAll(f *os.File, bufs [][]byte) (int64, error) {
	var total int64
	for _, b := range bufs {
		n, err := f.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// mapFile reads the file at path.
func mapFile(path string) ([]byte, func(), error) {
	b, err := os.ReadFile(path)
	return b, func() {}, err
}
