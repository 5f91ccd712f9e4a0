package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// tcpReadBufferSize is the per-connection read buffer. It must hold at least
// one maximal line; lines longer than the parser's limit are discarded up to
// their newline without growing it.
const tcpReadBufferSize = 64 * 1024

// tcpListener accepts newline-delimited DogStatsD over TCP. Backpressure
// policy: block — a connection's next read waits until its previous batch is
// aggregated, so a fast TCP sender is slowed by the kernel's flow control
// rather than losing data.
type tcpListener struct {
	ln   net.Listener
	opts Options
	c    counters
	// refused counts connections closed at once because
	// TCPMaxConnections were open.
	refused *telemetry.Counter
	// handshakeFailed counts TLS connections that did not complete a
	// handshake (no or an untrusted client certificate, not TLS at all);
	// panics counts connections a panic ended.
	handshakeFailed *telemetry.Counter
	panics          *telemetry.Counter
	handshakeLog    logthrottle.Throttle
}

// tlsHandshakeTimeout bounds a client's handshake, which holds a
// connection slot.
const tlsHandshakeTimeout = 10 * time.Second

func newTCP(network, address string, opts Options) (*tcpListener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", address, err)
	}
	if opts.TCPIdleTimeout <= 0 {
		opts.TCPIdleTimeout = 5 * time.Minute
	}
	if opts.TCPMaxConnections <= 0 {
		opts.TCPMaxConnections = defaultTCPMaxConnections
	}
	return &tcpListener{
		ln: ln, opts: opts, c: newCounters(opts.Stats, "tcp"),
		refused:         opts.Stats.Counter("listener.connections_refused", "protocol:tcp"),
		handshakeFailed: opts.Stats.Counter("listener.tls_handshake_errors", "protocol:tcp"),
		panics:          opts.Stats.Counter("listener.panics", "protocol:tcp"),
	}, nil
}

func (l *tcpListener) Addr() string { return l.ln.Addr().String() }

func (l *tcpListener) Close() error { return closeConn(l.ln) }

// Run accepts until ctx ends, then keeps accepting connections already
// queued in the backlog (they may hold data sent before the shutdown) until
// none arrives for drainQuiet, and lets every open connection drain what it
// already has before returning.
func (l *tcpListener) Run(ctx context.Context) error {
	defer l.Close()
	d := newDrainer(ctx, deadlineListener{l.ln})
	defer d.stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	// slots holds a token per open connection. A connection over the cap
	// is accepted and closed rather than left in the backlog, so that its
	// client learns at once instead of writing into a socket nobody reads.
	slots := make(chan struct{}, l.opts.TCPMaxConnections)
	var refusalLog, acceptErrLog logthrottle.Throttle
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if done, _ := d.readError(err); done {
				return nil
			}
			// EMFILE and friends: wait a little instead of spinning.
			l.c.errors.Inc()
			if ok, n := acceptErrLog.Allow(); ok {
				l.opts.Log.Warn("tcp accept failed", "address", l.Addr(), "error", err, "suppressed_since_last", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		d.gotData()
		select {
		case slots <- struct{}{}:
		default:
			conn.Close()
			l.refused.Inc()
			if ok, n := refusalLog.Allow(); ok {
				l.opts.Log.Warn("tcp connection refused: too many open", "address", l.Addr(),
					"max_connections", l.opts.TCPMaxConnections, "refused_total", l.refused.Load(),
					"suppressed_since_last", n)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			l.serve(ctx, conn)
		}()
	}
}

// serve reads one connection: it parses every complete line of each read,
// keeps a partial last line for the next read, and at EOF parses a final
// line that has no newline.
func (l *tcpListener) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	defer func() {
		// A panic on one connection's data ends that connection, counted
		// and logged, never the process.
		if p := recover(); p != nil {
			l.panics.Inc()
			l.opts.Log.Error("tcp connection handler panicked; connection closed", "remote", conn.RemoteAddr().String(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if l.opts.TLS != nil {
		tc := tls.Server(conn, l.opts.TLS)
		conn = tc
		hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			l.handshakeFailed.Inc()
			if ok, n := l.handshakeLog.Allow(); ok {
				l.opts.Log.Warn("tcp TLS handshake failed", "address", l.Addr(), "remote", conn.RemoteAddr().String(),
					"error", err, "suppressed_since_last", n)
			}
			return
		}
	}
	d := newDrainer(ctx, conn)
	defer d.stop()

	buf := make([]byte, tcpReadBufferSize)
	var batch metric.Batch
	push := l.opts.pusher()
	filled := 0         // bytes of buf holding unparsed input
	discarding := false // inside an overlong line, skipping to its newline
	for {
		if ctx.Err() == nil {
			_ = conn.SetReadDeadline(time.Now().Add(l.opts.TCPIdleTimeout))
			if ctx.Err() != nil {
				// Shutdown began between the check and the call, and the
				// idle deadline just replaced the drainer's short one.
				_ = conn.SetReadDeadline(time.Now().Add(drainQuiet))
			}
		}
		n, err := conn.Read(buf[filled:])
		if n > 0 {
			l.c.bytes.Add(uint64(n))
			l.c.packets.Inc()
			chunk := buf[:filled+n]
			if discarding {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					chunk = nil
				} else {
					chunk = chunk[i+1:]
					discarding = false
				}
			}
			end := bytes.LastIndexByte(chunk, '\n')
			if end >= 0 {
				l.opts.Parser.Parse(chunk[:end+1], &batch)
				flushBatch(&batch, push, &l.c)
				chunk = chunk[end+1:]
			}
			if len(chunk) == len(buf) {
				// A whole buffer without a newline can only be an overlong line.
				l.opts.Parser.countLineTooLong()
				discarding = true
				chunk = nil
			}
			filled = copy(buf, chunk)
			d.gotData()
		}
		if err != nil {
			if errors.Is(err, io.EOF) && filled > 0 && !discarding {
				l.opts.Parser.Parse(buf[:filled], &batch)
				flushBatch(&batch, push, &l.c)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				l.c.errors.Inc()
				l.opts.Log.Debug("tcp connection read failed", "remote", conn.RemoteAddr().String(), "error", err)
			}
			return
		}
	}
}

// deadlineListener lets the drainer bound Accept the way it bounds Read.
type deadlineListener struct{ net.Listener }

func (l deadlineListener) SetReadDeadline(t time.Time) error {
	if tl, ok := l.Listener.(*net.TCPListener); ok {
		return tl.SetDeadline(t)
	}
	return nil
}
