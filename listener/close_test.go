package listener

import (
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// Close releases a listener that never ran: its port can be bound again
// at once, a unixgram socket's file is gone, and a second Close is no
// error.
func TestCloseReleasesAListenerThatNeverRan(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dsd.sock")
	for _, tc := range []struct{ network, addr string }{
		{"udp", "127.0.0.1:0"},
		{"tcp", "127.0.0.1:0"},
		{"unixgram", sock},
	} {
		t.Run(tc.network, func(t *testing.T) {
			opts := Options{Parser: NewParser(4096, nil), Pusher: &countingPusher{sums: map[string]float64{}},
				NumReaders: 2, Log: slog.New(slog.DiscardHandler)}
			l, err := New(tc.network, tc.addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr()
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			switch tc.network {
			case "udp":
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					t.Fatalf("%s still bound after Close: %v", addr, err)
				}
				pc.Close()
			case "tcp":
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("%s still bound after Close: %v", addr, err)
				}
				ln.Close()
			case "unixgram":
				if _, err := os.Lstat(addr); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("socket file after Close: %v, want it gone", err)
				}
			}
		})
	}
}

// Close after Run is a no-op: it does not remove a socket file that
// another listener has since created at the same path.
func TestCloseAfterRunLeavesTheNextOwnersFile(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dsd.sock")
	p := &countingPusher{sums: map[string]float64{}}
	first, cancel, done := startListener(t, "unixgram", sock, Options{Pusher: p})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second, err := New("unixgram", sock, Options{Parser: NewParser(4096, nil), Pusher: p, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := first.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the second listener's socket file: %v", err)
	}
}
