package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// A daemon whose startup fails after its statsd sockets are bound (here:
// http_address is taken) releases them: the ports can be bound again and
// the unixgram socket file is gone, so a supervisor's restart does not
// find its own leftovers in the way.
func TestFailedStartReleasesTheSockets(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	udpAddr, tcpAddr := freePort(t, "udp"), freePort(t, "tcp")
	sock := t.TempDir() + "/dsd.sock"
	cfg := testConfig(t)
	cfg.StatsdListenAddresses = []config.ListenAddress{
		{Network: "udp", Address: udpAddr},
		{Network: "tcp", Address: tcpAddr},
		{Network: "unixgram", Address: sock},
	}
	cfg.HTTPAddress = taken.Addr().String()

	d, err := newDaemon(cfg, []sinks.Sink{&captureSink{}}, telemetry.NewRegistry(), slog.New(slog.DiscardHandler))
	if err == nil {
		d.release()
		t.Fatal("newDaemon succeeded on an http_address in use")
	}
	pc, err := net.ListenPacket("udp", udpAddr)
	if err != nil {
		t.Errorf("udp %s still bound: %v", udpAddr, err)
	} else {
		pc.Close()
	}
	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		t.Errorf("tcp %s still bound: %v", tcpAddr, err)
	} else {
		ln.Close()
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file %s after the failed start: %v, want it gone", sock, err)
	}
}
