package journal

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data durable, and the metadata needed to read it
// back (its size), without the rest (times).
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// iovMax is Linux's bound on the buffers of one writev.
const iovMax = 1024

// writeAll writes bufs to f in order with writev, so that a group's
// records reach the file without being copied together first.
func writeAll(f *os.File, bufs [][]byte) (int64, error) {
	var total int64
	fd := int(f.Fd())
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), iovMax)]
		n, err := unix.Writev(fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
		total += int64(n)
		// Drop what was written, keeping the rest of a buffer cut short.
		for n > 0 && len(bufs) > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			bufs[0] = bufs[0][n:]
			n = 0
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return total, nil
}

// mapFile maps the file at path read-only: a segment is read once, and
// may be larger than what memory should hold at once.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b, func() { _ = unix.Munmap(b) }, nil
}
