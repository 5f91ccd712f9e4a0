package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Pusher is where parsed batches go: the aggregator.
type Pusher interface {
	Push(samples []metric.Sample)
	PushEvents(events []metric.Event, checks []metric.ServiceCheck)
}

// Options are what every listener needs besides its address.
type Options struct {
	Parser *Parser
	// Pusher receives the parsed batches. When NewPusher is set, each
	// reader goroutine and TCP connection calls it once for a Pusher of
	// its own instead: the aggregator's Writers remember what each series
	// resolves to, and one reader's needs no lock against another's.
	Pusher    Pusher
	NewPusher func() Pusher
	// NumReaders is how many goroutines (and, for UDP, SO_REUSEPORT sockets)
	// read concurrently.
	NumReaders int
	// ReadBufferBytes is the SO_RCVBUF requested for datagram sockets.
	ReadBufferBytes int
	// TCPIdleTimeout closes a TCP connection that sent nothing for this long.
	TCPIdleTimeout time.Duration
	// TCPMaxConnections bounds the open TCP connections (each holds a
	// goroutine and a 64 KiB buffer); one more is closed at once and
	// counted. Zero means 1024 (defaultTCPMaxConnections).
	TCPMaxConnections int
	// SocketMode is the permissions of a unixgram socket file. Zero means
	// 0722, as the Datadog Agent creates it: every local user may send
	// (connecting needs write permission), only the owner may do more.
	// Only permission bits are allowed.
	SocketMode os.FileMode
	// TLS, when set, makes tcp:// listeners speak TLS with it (a server
	// configuration; with client CAs, mTLS).
	TLS   *tls.Config
	Stats *telemetry.Registry
	Log   *slog.Logger
}

// Listener is a bound socket set that reads until its context ends.
type Listener interface {
	// Run reads and pushes until ctx is done, then drains what the kernel
	// already holds (bounded by drainTimeout), pushes it, releases the
	// sockets as Close does and returns.
	Run(ctx context.Context) error
	// Close releases the sockets (and a unixgram socket's file) of a
	// listener that is not running: one that will never Run, when a later
	// part of the startup failed. After Run it does nothing.
	Close() error
	// Addr is the bound address (useful with port 0).
	Addr() string
}

// closeConn closes c; a conn already closed is no error, so that Close
// may follow Run.
func closeConn(c io.Closer) error {
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Drain bounds: after shutdown starts, a reader keeps reading while data is
// still queued, but gives up after a quiet drainQuiet or a total drainTimeout
// so that a sender that never stops cannot hold the process open.
const (
	drainQuiet   = 50 * time.Millisecond
	drainTimeout = 2 * time.Second
)

// maxDatagramSize is the largest UDP or Unix datagram accepted.
const maxDatagramSize = 64 * 1024

// defaultSocketMode is Options.SocketMode's default.
const defaultSocketMode os.FileMode = 0o722

// defaultTCPMaxConnections is far more than the clients of one host open,
// and caps the buffers a connection leak can pin at 64 MiB.
const defaultTCPMaxConnections = 1024

// New binds the listener for one statsd_listen_addresses entry.
func New(network, address string, opts Options) (Listener, error) {
	if opts.NumReaders < 1 {
		opts.NumReaders = 1
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	switch network {
	case "udp", "udp4", "udp6":
		return newUDP(network, address, opts)
	case "tcp", "tcp4", "tcp6":
		return newTCP(network, address, opts)
	case "unixgram":
		return newUnixgram(address, opts)
	default:
		return nil, fmt.Errorf("listen %s://%s: unsupported network", network, address)
	}
}

// counters are the per-listener self-metrics, bumped once per batch.
type counters struct {
	packets *telemetry.Counter
	bytes   *telemetry.Counter
	metrics *telemetry.Counter
	events  *telemetry.Counter
	errors  *telemetry.Counter
	dropped *telemetry.Counter // datagrams the kernel dropped (UDP), or over maxDatagramSize (unixgram)
}

func newCounters(reg *telemetry.Registry, protocol string) counters {
	tag := "protocol:" + protocol
	return counters{
		packets: reg.Counter("listener.packets_received", tag),
		bytes:   reg.Counter("listener.received_bytes", tag),
		metrics: reg.Counter("listener.metrics_received", tag),
		events:  reg.Counter("listener.events_received", tag),
		errors:  reg.Counter("listener.read_errors", tag),
		dropped: reg.Counter("listener.packets_dropped", tag),
	}
}

// pusher returns the Pusher for one reader goroutine or connection.
func (o *Options) pusher() Pusher {
	if o.NewPusher != nil {
		return o.NewPusher()
	}
	return o.Pusher
}

// flushBatch hands a non-empty batch to the pusher, counts it and resets it.
func flushBatch(b *metric.Batch, p Pusher, c *counters) {
	if len(b.Samples) > 0 {
		p.Push(b.Samples)
		c.metrics.Add(uint64(len(b.Samples)))
	}
	if len(b.Events) > 0 || len(b.Checks) > 0 {
		p.PushEvents(b.Events, b.Checks)
		c.events.Add(uint64(len(b.Events) + len(b.Checks)))
	}
	b.Reset()
}
