package listener

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"golang.org/x/sys/unix"
)

// recordingHandler counts the log records by message.
type recordingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}

func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// Real UDP read errors: with IP_RECVERR, the ICMP "port unreachable"
// answering a datagram the listener's socket sent makes its next read fail
// with ECONNREFUSED. Every failure is counted in read_errors, one line is
// logged per period, and the reader keeps reading.
func TestUDPReadErrorsThrottled(t *testing.T) {
	reg := telemetry.NewRegistry()
	h := &recordingHandler{msgs: map[string]int{}}
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "udp", "127.0.0.1:0", Options{
		Pusher: p, Stats: reg, NumReaders: 1, Log: slog.New(h),
	})
	pc := l.(*udpListener).conns[0].(*net.UDPConn)
	rc, err := pc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	}); err != nil || sockErr != nil {
		t.Fatalf("set IP_RECVERR: %v, %v", err, sockErr)
	}
	// A port nothing listens on: bound, then released.
	tmp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := tmp.LocalAddr()
	tmp.Close()

	readErrors := reg.Counter("listener.read_errors", "protocol:udp")
	const failures = 5
	for i := range failures {
		// One at a time: errors queued before a read would be reported as one.
		if _, err := pc.WriteTo([]byte("x"), closed); err != nil {
			t.Fatal(err)
		}
		await.Until(t, 5*time.Second, func() (bool, string) {
			n := readErrors.Load()
			return n == uint64(i+1), fmt.Sprintf("read_errors = %d, want %d", n, i+1)
		})
	}
	if got := h.count("udp read failed"); got != 1 {
		t.Errorf("logged %d read failures in %d, want 1 per %v", got, failures, logthrottle.DefaultEvery)
	}

	conn, err := net.Dial("udp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("after:1|c")); err != nil {
		t.Fatal(err)
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		return p.sum("after") == 1, "the reader stopped after its read errors"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
