package listener

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/metric"
	"golang.org/x/net/ipv4"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// readBatchSize is how many datagrams one recvmmsg call may return. With
// 64 KiB buffers that is 2 MiB per reader; more buys little because a
// datadog-go datagram already carries ~20 metrics.
const readBatchSize = 32

// udpListener is num_readers UDP sockets bound to one port with
// SO_REUSEPORT, so the kernel spreads datagrams across readers without any
// user-space hand-off. Only they may share the port: a listener refuses to
// start when another process's socket is on it (see checkPortNotShared).
// Backpressure policy: none — when readers fall behind the kernel drops
// datagrams (its RcvbufErrors), which is the DogStatsD contract; the
// sender is never blocked.
type udpListener struct {
	conns []net.PacketConn
	opts  Options
	c     counters
	// readErrLog throttles the read-failure warning of all readers.
	readErrLog logthrottle.Throttle
}

func newUDP(network, address string, opts Options) (*udpListener, error) {
	// For port 0 the kernel picks a port its rules let this socket bind,
	// which with SO_REUSEPORT includes one that another socket of this
	// user already holds; another pick is then tried rather than failing.
	attempts := 1
	if _, port, err := net.SplitHostPort(address); err == nil && port == "0" {
		attempts = 3
	}
	for attempt := 1; ; attempt++ {
		l, err := bindUDP(network, address, opts)
		if err != nil {
			return nil, err
		}
		err = checkPortNotShared(l.conns)
		switch {
		case err == nil:
		case errors.Is(err, errPortShared):
			_ = l.Close()
			if attempt < attempts {
				continue
			}
			return nil, fmt.Errorf("listen udp %s: %w", address, err)
		default:
			opts.Log.Warn("cannot check that no other process shares the UDP port; if one does, each gets part of the traffic",
				"address", l.Addr(), "error", err)
		}
		if got := socketReadBuffer(l.conns[0]); got > 0 && got/2 < opts.ReadBufferBytes {
			// Linux doubles the request and caps it at net.core.rmem_max.
			opts.Log.Warn("kernel capped the UDP receive buffer; raise net.core.rmem_max to avoid drops",
				"address", address, "requested_bytes", opts.ReadBufferBytes, "granted_bytes", got/2)
		}
		return l, nil
	}
}

// bindUDP binds opts.NumReaders sockets to one port with SO_REUSEPORT.
func bindUDP(network, address string, opts Options) (*udpListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var sockErr error
		err := rc.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// Ask the kernel to report, with each datagram, how many it
			// dropped on this socket for want of buffer: the loss an
			// operator most needs to see. Best effort.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	l := &udpListener{opts: opts, c: newCounters(opts.Stats, "udp")}
	for i := range opts.NumReaders {
		addr := address
		if i > 0 {
			addr = l.conns[0].LocalAddr().String() // same port when the first bound :0
		}
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("listen udp %s: %w", address, err)
		}
		l.conns = append(l.conns, pc)
		if opts.ReadBufferBytes > 0 {
			if err := pc.(*net.UDPConn).SetReadBuffer(opts.ReadBufferBytes); err != nil {
				_ = l.Close()
				return nil, fmt.Errorf("set SO_RCVBUF on udp %s: %w", address, err)
			}
		}
	}
	return l, nil
}

func socketReadBuffer(pc net.PacketConn) int {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	size := 0
	_ = rc.Control(func(fd uintptr) {
		size, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return size
}

func (l *udpListener) Close() error {
	var errs []error
	for _, c := range l.conns {
		errs = append(errs, closeConn(c))
	}
	return errors.Join(errs...)
}

func (l *udpListener) Addr() string { return l.conns[0].LocalAddr().String() }

func (l *udpListener) Run(ctx context.Context) error {
	defer l.Close()
	g := new(errgroup.Group)
	for _, pc := range l.conns {
		g.Go(func() error { return l.read(ctx, pc) })
	}
	return g.Wait()
}

// read is one reader: recvmmsg into reusable buffers, parse every datagram
// into the reader's own batch, push the batch once per read.
func (l *udpListener) read(ctx context.Context, pc net.PacketConn) error {
	bc := ipv4.NewPacketConn(pc) // ReadBatch uses recvmmsg for IPv6 sockets too
	msgs := make([]ipv4.Message, readBatchSize)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagramSize)}
		msgs[i].OOB = make([]byte, unix.CmsgSpace(4))
	}
	var droppedSoFar uint32
	var batch metric.Batch
	push := l.opts.pusher()
	d := newDrainer(ctx, pc)
	defer d.stop()
	for {
		n, err := bc.ReadBatch(msgs, 0)
		if n > 0 {
			var size int
			for i := range msgs[:n] {
				size += msgs[i].N
				l.opts.Parser.Parse(msgs[i].Buffers[0][:msgs[i].N], &batch)
			}
			l.c.packets.Add(uint64(n))
			l.c.bytes.Add(uint64(size))
			if total, ok := kernelDrops(msgs[n-1].OOB[:msgs[n-1].NN]); ok && total != droppedSoFar {
				l.c.dropped.Add(uint64(total - droppedSoFar)) // wraps correctly at 2^32
				droppedSoFar = total
			}
			flushBatch(&batch, push, &l.c)
			d.gotData()
		}
		if err != nil {
			if done, rerr := d.readError(err); done {
				return rerr
			}
			l.c.errors.Inc()
			if ok, n := l.readErrLog.Allow(); ok {
				l.opts.Log.Warn("udp read failed", "address", l.Addr(), "error", err,
					"suppressed_since_last", n)
			}
		}
	}
}

// kernelDrops reads the SO_RXQ_OVFL control message: the socket's running
// count of datagrams the kernel dropped because the receive buffer was
// full. Parsed by hand because unix.ParseSocketControlMessage allocates.
func kernelDrops(oob []byte) (uint32, bool) {
	if len(oob) < unix.CmsgLen(4) {
		return 0, false
	}
	// struct cmsghdr: a size_t length, then int level and int type.
	const h = unix.SizeofCmsghdr
	level := int32(binary.NativeEndian.Uint32(oob[h-8 : h-4]))
	typ := int32(binary.NativeEndian.Uint32(oob[h-4 : h]))
	if level != unix.SOL_SOCKET || typ != unix.SO_RXQ_OVFL {
		return 0, false
	}
	return binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]), true
}

// drainer turns context cancellation into "read what is queued, then stop":
// instead of closing the socket (which loses datagrams the kernel already
// accepted) it sets a short read deadline and extends it while data keeps
// arriving, up to drainTimeout.
type drainer struct {
	ctx      context.Context
	conn     interface{ SetReadDeadline(time.Time) error }
	stopFunc func() bool
	deadline time.Time // set once shutdown begins
}

func newDrainer(ctx context.Context, conn interface{ SetReadDeadline(time.Time) error }) *drainer {
	d := &drainer{ctx: ctx, conn: conn}
	d.stopFunc = context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now().Add(drainQuiet)) })
	return d
}

func (d *drainer) stop() { d.stopFunc() }

// gotData extends the quiet window during a drain.
func (d *drainer) gotData() {
	if d.ctx.Err() == nil {
		return
	}
	now := time.Now()
	if d.deadline.IsZero() {
		d.deadline = now.Add(drainTimeout)
	}
	if now.Before(d.deadline) {
		_ = d.conn.SetReadDeadline(now.Add(drainQuiet))
	}
}

// readError classifies a read error: done is true when the reader should
// return (with rerr as its result).
func (d *drainer) readError(err error) (done bool, rerr error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && d.ctx.Err() != nil:
		return true, nil // drained
	case errors.Is(err, net.ErrClosed):
		return true, nil
	case d.ctx.Err() != nil:
		return true, nil // failing while shutting down: stop rather than spin
	}
	return false, nil
}
