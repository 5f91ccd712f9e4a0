package listener

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"golang.org/x/sys/unix"
)

// A second listener on a UDP port that one already serves must not start:
// with SO_REUSEPORT it would silently take part of the traffic. The error
// names the port and the process holding it (this test process here). The
// first listener keeps all the traffic.
func TestUDPSecondListenerOnServedPortRefused(t *testing.T) {
	p := &countingPusher{sums: map[string]float64{}}
	first, cancel, done := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: p, NumReaders: 2})
	_, port, _ := net.SplitHostPort(first.Addr())

	for _, addr := range []string{
		first.Addr(),      // the same address
		"0.0.0.0:" + port, // a wildcard that covers it ("udp" binds it as [::])
		"[::ffff:127.0.0.1]:" + port,
	} {
		for _, readers := range []int{1, 3} {
			l, err := New("udp", addr, Options{Parser: NewParser(0, nil), Pusher: p, NumReaders: readers})
			if err == nil {
				_ = l.Close()
				t.Fatalf("second listener on %s (%d readers) started beside %s", addr, readers, first.Addr())
			}
			msg := err.Error()
			if !errors.Is(err, unix.EADDRINUSE) || !strings.Contains(msg, "port "+port) ||
				!strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())+" (") {
				t.Errorf("second listener on %s: error %q; want EADDRINUSE naming port %s and pid %d", addr, msg, port, os.Getpid())
			}
		}
	}

	// Every datagram still goes to the first listener.
	conn, err := net.Dial("udp", first.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 50 // one client: all go to one socket, whose buffer must hold them
	for range sent {
		if _, err := conn.Write([]byte("one:1|c")); err != nil {
			t.Fatal(err)
		}
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		got := p.sum("one")
		return got == sent, fmt.Sprintf("first listener got %v of %d", got, sent)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A listener's own readers share its port: datagrams from many source
// ports, which SO_REUSEPORT spreads across the sockets, all arrive.
func TestUDPManyReadersShareThePort(t *testing.T) {
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: p, NumReaders: 4})
	const clients, each = 16, 10
	for range clients {
		conn, err := net.Dial("udp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		for range each {
			if _, err := conn.Write([]byte("many:1|c")); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close()
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		got := p.sum("many")
		return got == clients*each, fmt.Sprintf("got %v of %d", got, clients*each)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Port 0 keeps working, for several listeners at once, and a listener on
// another address of the same port (which receives none of the first's
// traffic) is not refused.
func TestUDPPortZeroAndDisjointAddresses(t *testing.T) {
	a, _, _ := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: &countingPusher{sums: map[string]float64{}}, NumReaders: 2})
	b, _, _ := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: &countingPusher{sums: map[string]float64{}}, NumReaders: 2})
	if a.Addr() == b.Addr() {
		t.Fatalf("two port-0 listeners share %s", a.Addr())
	}
	_, port, _ := net.SplitHostPort(a.Addr())
	startListener(t, "udp", "127.0.0.2:"+port, Options{Pusher: &countingPusher{sums: map[string]float64{}}, NumReaders: 2})
}

func TestParseProcAddr(t *testing.T) {
	// As /proc/net/udp{,6} print them on a little-endian host.
	if !littleEndian() {
		t.Skip("the samples are little-endian")
	}
	for h, want := range map[string]string{
		"0100007F":                         "127.0.0.1",
		"00000000":                         "0.0.0.0",
		"0A01A8C0":                         "192.168.1.10",
		"00000000000000000000000000000000": "::",
		"00000000000000000000000001000000": "::1",
		"0000000000000000FFFF00000100007F": "::ffff:127.0.0.1",
		"B80D0120000000000000000001000000": "2001:db8::1",
	} {
		got, ok := parseProcAddr(h)
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", h, got, ok, want)
		}
	}
	for _, h := range []string{"", "0100007", "0100007G", "010000"} {
		if _, ok := parseProcAddr(h); ok {
			t.Errorf("parseProcAddr(%q) accepted", h)
		}
	}
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestAddrsOverlap(t *testing.T) {
	f := func(a, b string, want bool) {
		t.Helper()
		x, y := netip.MustParseAddr(a), netip.MustParseAddr(b)
		if got := addrsOverlap(x, y); got != want {
			t.Errorf("addrsOverlap(%s, %s) = %v, want %v", a, b, got, want)
		}
		if got := addrsOverlap(y, x); got != want {
			t.Errorf("addrsOverlap(%s, %s) = %v, want %v", b, a, got, want)
		}
	}
	f("127.0.0.1", "127.0.0.1", true)
	f("127.0.0.1", "127.0.0.2", false)
	f("127.0.0.1", "0.0.0.0", true)
	f("127.0.0.1", "::", true) // dual-stack [::] receives IPv4
	f("127.0.0.1", "::ffff:127.0.0.1", true)
	f("127.0.0.1", "::1", false)
	f("0.0.0.0", "::", true)
	f("0.0.0.0", "::1", false) // the IPv4 wildcard covers no IPv6 address
	f("::1", "::", true)
	f("::1", "::2", false)
	f("::", "::", true)
}
