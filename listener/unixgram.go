package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/metric"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// unixgramListener is DogStatsD over a Unix datagram socket, the transport
// datadog-go uses for unix:// and unixgram:// addresses. Readers share one
// socket. Like UDP, a full socket buffer is the kernel's to handle: the
// sender blocks or gets EAGAIN depending on its own mode, we never stall.
type unixgramListener struct {
	conn *net.UnixConn
	path string
	opts Options
	c    counters
	// readErrLog throttles the read-failure warning of all readers.
	readErrLog logthrottle.Throttle
	closed     atomic.Bool
}

func newUnixgram(path string, opts Options) (*unixgramListener, error) {
	mode := opts.SocketMode
	if mode == 0 {
		mode = defaultSocketMode
	}
	if mode&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("listen unixgram %s: socket mode %v has bits other than permissions", path, mode)
	}
	// A socket file left by a previous run that died would make bind fail;
	// remove it, but never a file that is not a socket.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen unixgram %s: file exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	conn, err := bindUnixgram(path, mode)
	if err != nil {
		return nil, fmt.Errorf("listen unixgram %s: %w", path, err)
	}
	// bind created the file with mode minus the umask, which may lack bits
	// that were asked for (with umask 022, 0722 becomes 0700). The Lstat
	// makes sure the chmod, which follows symlinks, changes a socket: a
	// directory that others may write to is the operator's to avoid.
	if fi, err := os.Lstat(path); err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen unixgram %s: socket file gone after bind: %w", path, err)
	} else if fi.Mode().Type() != fs.ModeSocket {
		conn.Close()
		return nil, fmt.Errorf("listen unixgram %s: socket file replaced by a %v after bind", path, fi.Mode().Type())
	}
	if err := os.Chmod(path, mode); err != nil {
		conn.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("listen unixgram %s: set socket mode %v: %w", path, mode, err)
	}
	if opts.ReadBufferBytes > 0 {
		if err := conn.SetReadBuffer(opts.ReadBufferBytes); err != nil {
			conn.Close()
			return nil, fmt.Errorf("set SO_RCVBUF on unixgram %s: %w", path, err)
		}
	}
	return &unixgramListener{conn: conn, path: path, opts: opts, c: newCounters(opts.Stats, "unixgram")}, nil
}

// bindUnixgram binds a Unix datagram socket at path whose file is created
// with at most the permissions in mode. bind(2) gives the new file the
// socket inode's mode minus the umask, so setting that mode (fchmod on the
// socket) before bind means the file never exists with more permissions
// than asked for, even under umask 0. That would not hold of a chmod after
// bind, and changing the umask instead would race with every other
// goroutine that creates files.
func bindUnixgram(path string, mode fs.FileMode) (*net.UnixConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var chmodErr error
		if err := rc.Control(func(fd uintptr) {
			chmodErr = unix.Fchmod(int(fd), uint32(mode.Perm()))
		}); err != nil {
			return err
		}
		if chmodErr != nil {
			return fmt.Errorf("fchmod socket before bind: %w", chmodErr)
		}
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), "unixgram", path)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UnixConn), nil
}

func (l *unixgramListener) Addr() string { return l.path }

// Close closes the socket and removes its file (a datagram conn, unlike a
// stream listener, does not unlink on close), once: a later file at the
// path is not this listener's.
func (l *unixgramListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	err := closeConn(l.conn)
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("remove unixgram socket file: %w", rerr))
	}
	return err
}

// Run reads until ctx ends, then closes the socket and removes its file.
func (l *unixgramListener) Run(ctx context.Context) error {
	defer func() {
		if err := l.Close(); err != nil {
			l.opts.Log.Warn("close unixgram socket", "path", l.path, "error", err)
		}
	}()
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("unixgram %s: %w", l.path, err)
	}
	g := new(errgroup.Group)
	for range l.opts.NumReaders {
		g.Go(func() error { return l.read(ctx, rc) })
	}
	return g.Wait()
}

// read drains every datagram the socket holds per wake-up (non-blocking
// recvfrom until EAGAIN, at most readBatchSize) so a batch, not a datagram,
// is pushed; x/net's recvmmsg wrapper only speaks IP sockets.
func (l *unixgramListener) read(ctx context.Context, rc syscall.RawConn) error {
	bufs := make([][]byte, readBatchSize)
	sizes := make([]int, readBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, maxDatagramSize)
	}
	var batch metric.Batch
	push := l.opts.pusher()
	d := newDrainer(ctx, l.conn)
	defer d.stop()
	for {
		n := 0
		var recvErr error
		err := rc.Read(func(fd uintptr) bool {
			for n < len(bufs) {
				// MSG_TRUNC returns a datagram's full size: a Unix datagram
				// can outgrow the buffer, and its cut-off last line would
				// otherwise parse as a different series.
				size, _, err := unix.Recvfrom(int(fd), bufs[n], unix.MSG_DONTWAIT|unix.MSG_TRUNC)
				if err != nil {
					if !errors.Is(err, unix.EAGAIN) {
						recvErr = err
					}
					break
				}
				if size > len(bufs[n]) {
					l.c.dropped.Inc()
					continue
				}
				sizes[n] = size
				n++
			}
			// false asks the runtime poller to wait for readability.
			return n > 0 || recvErr != nil
		})
		if n > 0 {
			var total int
			for i := range n {
				total += sizes[i]
				l.opts.Parser.Parse(bufs[i][:sizes[i]], &batch)
			}
			l.c.packets.Add(uint64(n))
			l.c.bytes.Add(uint64(total))
			flushBatch(&batch, push, &l.c)
			d.gotData()
		}
		if err == nil {
			err = recvErr
		}
		if err != nil {
			if done, rerr := d.readError(err); done {
				return rerr
			}
			l.c.errors.Inc()
			if ok, n := l.readErrLog.Allow(); ok {
				l.opts.Log.Warn("unixgram read failed", "path", l.path, "error", err,
					"suppressed_since_last", n)
			}
		}
	}
}
