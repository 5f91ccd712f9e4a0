// Command nullrecv is the do-nothing baseline of `make bench-compare`: a
// UDP receiver that reads DogStatsD datagrams exactly the way veneur-lite's
// listener does and then throws them away, so that what veneur-lite loses
// or spends beyond it is the cost of parsing, aggregating and flushing, not
// of getting datagrams out of the kernel.
//
// Like listener/udp.go it binds -readers sockets to one address with
// SO_REUSEPORT (the kernel spreads datagrams across them), asks for
// SO_RXQ_OVFL (the kernel's per-socket drop count rides along with every
// datagram), requests a -read-buffer SO_RCVBUF, and reads with recvmmsg
// (golang.org/x/net/ipv4 ReadBatch) in batches of 32 into 64 KiB buffers.
// Per datagram it only counts the '\n'-separated non-empty lines: cheap,
// and the same figure veneur-lite's parser would see as metrics.
//
// Protocol with the harness, one JSON object per stdout line:
//
//	{"event":"ready","addr":"127.0.0.1:8125","readers":2,"rcvbuf_bytes":4194304}
//	{"event":"done","datagrams":…,"lines":…,"bytes":…,"kernel_drops":…,"reads":…,"read_errors":…}
//
// "ready" is printed once every socket is bound; "done" after SIGTERM or
// SIGINT, once what the kernel still queued has been read (the same drain
// as the listener's: stop after 50 ms without data, or 2 s in all).
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// These mirror listener/udp.go and listener/listener.go (readBatchSize,
// MaxDatagramSize, drainQuiet, drainTimeout); a test in this package reads
// them from the listener's source so that the two cannot drift apart.
const (
	readBatchSize   = 32
	maxDatagramSize = 64 * 1024
	drainQuiet      = 50 * time.Millisecond
	drainTimeout    = 2 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Counts is what the receiver saw; the "done" line carries it.
type Counts struct {
	Datagrams uint64 `json:"datagrams"`
	Lines     uint64 `json:"lines"`
	Bytes     uint64 `json:"bytes"`
	// KernelDrops is the sum over sockets of the last SO_RXQ_OVFL count
	// each saw: datagrams dropped because that socket's buffer was full.
	KernelDrops uint64 `json:"kernel_drops"`
	// Reads is the recvmmsg calls that returned data: Datagrams/Reads is
	// the batch a wake-up brought, which is what the CPU per datagram
	// mostly depends on when the reader keeps up.
	Reads      uint64 `json:"reads"`
	ReadErrors uint64 `json:"read_errors"`
}

func (c *Counts) add(o Counts) {
	c.Datagrams += o.Datagrams
	c.Lines += o.Lines
	c.Bytes += o.Bytes
	c.KernelDrops += o.KernelDrops
	c.Reads += o.Reads
	c.ReadErrors += o.ReadErrors
}

type readyLine struct {
	Event       string `json:"event"`
	Addr        string `json:"addr"`
	Readers     int    `json:"readers"`
	RcvbufBytes int    `json:"rcvbuf_bytes"`
}

type doneLine struct {
	Event string `json:"event"`
	Counts
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nullrecv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8125", "UDP address to bind (port 0 picks one)")
	readers := fs.Int("readers", runtime.NumCPU(), "SO_REUSEPORT sockets, one reader goroutine each (veneur-lite's num_readers)")
	readBuffer := fs.Int("read-buffer", 2<<20, "SO_RCVBUF to request per socket (veneur-lite's read_buffer_size_bytes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *readers < 1 || *readers > 256 || *readBuffer < 0 {
		fmt.Fprintln(stderr, "nullrecv: want -readers 1..256, -read-buffer ≥ 0 and no arguments")
		return 2
	}
	conns, err := listen(*addr, *readers, *readBuffer)
	if err != nil {
		fmt.Fprintf(stderr, "nullrecv: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(readyLine{"ready", conns[0].LocalAddr().String(), len(conns), rcvbuf(conns[0])}); err != nil {
		closeAll(conns)
		fmt.Fprintf(stderr, "nullrecv: write ready line: %v\n", err)
		return 1
	}
	total := receive(ctx, conns)
	if err := enc.Encode(doneLine{"done", total}); err != nil {
		fmt.Fprintf(stderr, "nullrecv: write counts: %v\n", err)
		return 1
	}
	return 0
}

// listen binds n SO_REUSEPORT sockets to addr, as listener.newUDP does.
func listen(addr string, n, readBuffer int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var sockErr error
		err := rc.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// Best effort, as in the listener.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	var conns []*net.UDPConn
	for i := range n {
		a := addr
		if i > 0 {
			a = conns[0].LocalAddr().String() // same port when the first bound :0
		}
		pc, err := lc.ListenPacket(context.Background(), "udp", a)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		if readBuffer > 0 {
			if err := c.SetReadBuffer(readBuffer); err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("set SO_RCVBUF on udp %s: %w", addr, err)
			}
		}
	}
	return conns, nil
}

func closeAll(conns []*net.UDPConn) {
	for _, c := range conns {
		c.Close()
	}
}

// rcvbuf is the SO_RCVBUF the kernel granted (twice the request, capped by
// net.core.rmem_max), for the harness to record.
func rcvbuf(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	size := 0
	_ = rc.Control(func(fd uintptr) {
		size, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return size
}

// receive runs one reader per socket until ctx ends and they have drained,
// and returns their counts added up.
func receive(ctx context.Context, conns []*net.UDPConn) Counts {
	defer closeAll(conns)
	counts := make([]Counts, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { counts[i] = read(ctx, c) })
	}
	wg.Wait()
	var total Counts
	for _, c := range counts {
		total.add(c)
	}
	return total
}

// read is one reader: recvmmsg into reused buffers, as the listener's read
// loop, with the parse and push replaced by counting lines.
func read(ctx context.Context, c *net.UDPConn) Counts {
	bc := ipv4.NewPacketConn(c) // ReadBatch uses recvmmsg
	msgs := make([]ipv4.Message, readBatchSize)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagramSize)}
		msgs[i].OOB = make([]byte, unix.CmsgSpace(4))
	}
	var n Counts
	// Shutdown is "read what is queued, then stop", as in the listener: a
	// short deadline, pushed on while data keeps coming, at most
	// drainTimeout in all.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now().Add(drainQuiet)) })
	defer stop()
	var drainEnd time.Time
	// The loop ends on a read error once ctx is done, which the deadline
	// guarantees within drainTimeout, or when the socket is closed.
	for {
		got, err := bc.ReadBatch(msgs, 0)
		if got > 0 {
			for i := range msgs[:got] {
				b := msgs[i].Buffers[0][:msgs[i].N]
				n.Bytes += uint64(len(b))
				n.Lines += uint64(countLines(b))
			}
			n.Datagrams += uint64(got)
			n.Reads++
			last := &msgs[got-1]
			if total, ok := kernelDrops(last.OOB[:last.NN]); ok {
				// The socket's running count; the last one seen is the total.
				n.KernelDrops = uint64(total)
			}
			if ctx.Err() != nil {
				now := time.Now()
				if drainEnd.IsZero() {
					drainEnd = now.Add(drainTimeout)
				}
				if now.Before(drainEnd) {
					_ = c.SetReadDeadline(now.Add(drainQuiet))
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return n
			}
			n.ReadErrors++
		}
	}
}

// countLines counts the non-empty '\n'-separated lines of a datagram: the
// metrics a DogStatsD parser would look at.
func countLines(b []byte) int {
	n := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n + 1
		}
		if i > 0 {
			n++
		}
		b = b[i+1:]
	}
	return n
}

// kernelDrops reads the SO_RXQ_OVFL control message, parsed by hand as the
// listener does (unix.ParseSocketControlMessage allocates).
func kernelDrops(oob []byte) (uint32, bool) {
	if len(oob) < unix.CmsgLen(4) {
		return 0, false
	}
	const h = unix.SizeofCmsghdr
	level := int32(binary.NativeEndian.Uint32(oob[h-8 : h-4]))
	typ := int32(binary.NativeEndian.Uint32(oob[h-4 : h]))
	if level != unix.SOL_SOCKET || typ != unix.SO_RXQ_OVFL {
		return 0, false
	}
	return binary.NativeEndian.Uint32(oob[h:]), true
}
