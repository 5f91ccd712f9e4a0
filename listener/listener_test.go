package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

// countingPusher sums counter values by name and keeps the events and
// service checks; gate, when set, blocks every Push until it is closed (a
// stalled aggregator).
type countingPusher struct {
	gate   chan struct{}
	mu     sync.Mutex
	sums   map[string]float64
	evts   int
	events []metric.Event
	checks []metric.ServiceCheck
}

func (p *countingPusher) Push(samples []metric.Sample) {
	if p.gate != nil {
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range samples {
		p.sums[string(s.Name)] += s.Value
	}
}

func (p *countingPusher) PushEvents(e []metric.Event, c []metric.ServiceCheck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evts += len(e) + len(c)
	p.events = append(p.events, e...)
	p.checks = append(p.checks, c...)
}

func (p *countingPusher) sum(name string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sums[name]
}

func startListener(t *testing.T, network, addr string, opts Options) (Listener, context.CancelFunc, chan error) {
	t.Helper()
	if opts.Parser == nil {
		opts.Parser = NewParser(4096, opts.Stats)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	l, err := New(network, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(cancel)
	return l, cancel, done
}

// When the aggregator stalls, UDP does not block the sender: the kernel
// drops what does not fit, and the drop is counted, not hidden. Nothing is
// lost unaccounted: received + dropped == sent.
func TestUDPKernelDropsAreCounted(t *testing.T) {
	reg := telemetry.NewRegistry()
	p := &countingPusher{gate: make(chan struct{}), sums: map[string]float64{}}
	l, cancel, done := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: p, NumReaders: 1, ReadBufferBytes: 4096, Stats: reg})
	conn, err := net.Dial("udp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 2000
	payload := []byte("drop.test:1|c|#" + strings.Repeat("x", 200))
	for range sent {
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	close(p.gate)
	// One more datagram after the stall carries the final drop count.
	dropped := reg.Counter("listener.packets_dropped", "protocol:udp")
	received := reg.Counter("listener.packets_received", "protocol:udp")
	await.Until(t, 5*time.Second, func() (bool, string) {
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		return received.Load()+dropped.Load() >= sent+1,
			fmt.Sprintf("received %d + dropped %d of %d sent (+ probes)", received.Load(), dropped.Load(), sent)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if dropped.Load() == 0 {
		t.Fatalf("no drops counted with a 4 KiB buffer and a stalled aggregator (received %d)", received.Load())
	}
	// Every datagram is either received or counted as dropped.
	extra := received.Load() + dropped.Load() - sent
	if got := p.sum("drop.test"); got != float64(received.Load()) {
		t.Errorf("aggregated %v, received %d", got, received.Load())
	}
	if extra < 1 || extra > 600 {
		t.Errorf("received %d + dropped %d does not account for %d sent (+ probes)", received.Load(), dropped.Load(), sent)
	}
	t.Logf("sent %d (+probes), received %d, dropped %d", sent, received.Load(), dropped.Load())
}

// A unixgram listener removes a stale socket file at start, refuses to
// remove a regular file, and removes its own file at exit.
func TestUnixgramSocketFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dsd.sock")
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close() // leaves the file behind, as a crashed process would
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	p := &countingPusher{sums: map[string]float64{}}
	_, cancel, done := startListener(t, "unixgram", path, Options{Pusher: p, NumReaders: 2})
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fmt.Fprintf(c, "uds.count:%d|c\n_sc|check|0", i)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := p.sum("uds.count"); got != 49*50/2 {
		t.Errorf("uds.count = %v, want %d", got, 49*50/2)
	}
	if p.evts != 50 {
		t.Errorf("%d service checks, want 50", p.evts)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still present after exit: %v", err)
	}

	regular := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New("unixgram", regular, Options{Parser: NewParser(4096, nil), Pusher: p}); err == nil ||
		!strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listening over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Error("regular file was touched")
	}
}

// A TCP line longer than the read buffer is dropped and counted; the
// connection stays open and the lines after it count.
func TestTCPOverlongLineKeepsConnection(t *testing.T) {
	p := &countingPusher{sums: map[string]float64{}}
	parser := NewParser(4096, nil)
	l, cancel, done := startListener(t, "tcp", "127.0.0.1:0", Options{Pusher: p, Parser: parser})
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	huge := "huge:1|c|#" + strings.Repeat("t", 3*tcpReadBufferSize) + "\n"
	if _, err := io.WriteString(c, "before:1|c\nlong:1|c|#"+strings.Repeat("y", 5000)+"\n"+huge+"after:1|c\n"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.sum("before") != 1 || p.sum("after") != 1 || p.sum("huge") != 0 || p.sum("long") != 0 {
		t.Errorf("sums = %v", p.sums)
	}
	if n := parser.errorCount(reasonLineTooLong); n != 2 {
		t.Errorf("line_too_long = %d, want 2", n)
	}
}

// A Unix datagram larger than maxDatagramSize is dropped and counted
// whole, never cut into a different last line; the datagrams around it
// count.
func TestUnixgramOversizedDatagramDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsd.sock")
	reg := telemetry.NewRegistry()
	p := &countingPusher{sums: map[string]float64{}}
	_, cancel, done := startListener(t, "unixgram", path, Options{Pusher: p, Stats: reg, NumReaders: 1})
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var big strings.Builder
	for big.Len() < maxDatagramSize-20 {
		big.WriteString("filler:1|c\n")
	}
	// Cut at maxDatagramSize, this line would read as "cut:1|c|#tag:lo…".
	big.WriteString("cut:1|c|#tag:longvalue_past_the_end\n")
	for _, msg := range []string{"before:1|c", big.String(), "after:1|c"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("write %d bytes: %v", len(msg), err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.sum("before") != 1 || p.sum("after") != 1 || p.sum("cut") != 0 || p.sum("filler") != 0 {
		t.Errorf("before %v after %v cut %v filler %v; want 1, 1 and nothing of the oversized datagram",
			p.sum("before"), p.sum("after"), p.sum("cut"), p.sum("filler"))
	}
	if n := reg.Counter("listener.packets_dropped", "protocol:unixgram").Load(); n != 1 {
		t.Errorf("listener.packets_dropped{protocol:unixgram} = %d, want 1", n)
	}
}

// Past TCPMaxConnections a new connection is closed at once and counted;
// the open ones keep working, and a slot freed by a close is reused.
func TestTCPConnectionCap(t *testing.T) {
	reg := telemetry.NewRegistry()
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "tcp", "127.0.0.1:0", Options{Pusher: p, Stats: reg, TCPMaxConnections: 2})
	awaitSum := func(name string, want float64) {
		t.Helper()
		await.Until(t, 5*time.Second, func() (bool, string) {
			got := p.sum(name)
			return got == want, fmt.Sprintf("%s = %v, want %v", name, got, want)
		})
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := []net.Conn{dial(), dial()}
	for _, c := range open {
		if _, err := c.Write([]byte("held:1|c\n")); err != nil {
			t.Fatal(err)
		}
	}
	awaitSum("held", 2) // both are being served

	extra := dial()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection: read %d, %v; want it closed by the listener", n, err)
	}
	if r := reg.Counter("listener.connections_refused", "protocol:tcp").Load(); r != 1 {
		t.Errorf("connections_refused = %d, want 1", r)
	}
	if _, err := open[1].Write([]byte("held:1|c\n")); err != nil {
		t.Fatal(err)
	}
	awaitSum("held", 3)

	// Once a connection closes, its slot takes a new one; until the
	// listener has seen the close, a dial may still be refused.
	open[0].Close()
	await.Until(t, 5*time.Second, func() (bool, string) {
		c := dial()
		_, _ = c.Write([]byte("freed:1|c\n"))
		c.Close()
		return p.sum("freed") > 0, "no connection accepted after one of the two closed"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
