package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/syncbuf"
)

// emit calls run as main would and returns the exit status and outputs.
func emit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncbuf.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// packetSink is a datagram socket (udp or unixgram) the test reads.
type packetSink struct {
	conn net.PacketConn
	url  string
}

func newUDPSink(t *testing.T) *packetSink {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &packetSink{conn: c, url: "udp://" + c.LocalAddr().String()}
}

func newUnixgramSink(t *testing.T) *packetSink {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "s.sock")
	c, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &packetSink{conn: c, url: "unixgram://" + path}
}

// recv returns the next datagram.
func (s *packetSink) recv(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 65536)
	_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := s.conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram on %s: %v", s.url, err)
	}
	return string(buf[:n])
}

// tcpSink accepts connections and hands over everything each one sent,
// once the client has closed its side.
type tcpSink struct {
	url   string
	conns chan string
}

func newTCPSink(t *testing.T, ln net.Listener) *tcpSink {
	t.Helper()
	s := &tcpSink{url: "tcp://" + ln.Addr().String(), conns: make(chan string, 8)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(c)
				if err != nil {
					s.conns <- "read error: " + err.Error()
					return
				}
				s.conns <- string(b)
			})
		}
	})
	return s
}

// recv returns what the next connection sent.
func (s *tcpSink) recv(t *testing.T) string {
	t.Helper()
	select {
	case got := <-s.conns:
		return got
	case <-time.After(5 * time.Second):
		t.Fatalf("no connection on %s", s.url)
		return ""
	}
}

// shortTempDir is a temporary directory with a short path: a Unix socket's
// path must fit in 108 bytes, which t.TempDir's may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// closedPort is a loopback TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustContain(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s = %q, want it to contain %q", what, s, want)
	}
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
