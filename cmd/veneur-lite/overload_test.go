package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/listener"
)

// TestBinaryOverload floods the built binary's UDP port with more than one
// reader on a small buffer can take. /healthcheck keeps answering
// promptly, and nothing goes unaccounted: what was flushed plus what the
// kernel dropped (counted by the daemon, SO_RXQ_OVFL) is what was sent.
func TestBinaryOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood")
	}
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1h
hostname: overload-host
num_readers: 1
read_buffer_size_bytes: 65536
`, udp, httpAddr))
	waitHealthy(t, httpAddr)

	const perDatagram = 20
	datagram := []byte(strings.Repeat("load:1|c|#k:v\n", perDatagram))
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	probes := make(chan time.Duration, 1000)
	done := make(chan struct{})
	go func() {
		defer close(probes)
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			began := time.Now()
			resp, err := client.Get("http://" + httpAddr + "/healthcheck")
			if err != nil {
				probes <- math.MaxInt64
				continue
			}
			resp.Body.Close()
			probes <- time.Since(began)
		}
	}()
	var sent int64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		for range 256 {
			if _, err := conn.Write(datagram); err == nil {
				sent++
			}
		}
	}
	close(done)
	var latencies []time.Duration
	for d := range probes {
		latencies = append(latencies, d)
	}
	// Once the reader has worked off the backlog (the socket's receive
	// queue is empty), markers are sent: the kernel reports its drop count
	// with the next datagram a reader gets, so the markers carry the final
	// count.
	await.Until(t, 10*time.Second, func() (bool, string) {
		q := udpQueued(t, udp)
		return q == 0, fmt.Sprintf("%d bytes still queued", q)
	})
	const markers = 20
	for range markers {
		if _, err := conn.Write([]byte("marker:1|c\n")); err != nil {
			t.Fatal(err)
		}
	}
	await.Until(t, 10*time.Second, func() (bool, string) {
		st := debugSeries(t, httpAddr)
		for _, n := range st.Names {
			if n.Name == "marker" {
				return n.Samples == markers, fmt.Sprint(n.Samples)
			}
		}
		return false, "no marker yet"
	})
	m := scrape(t, httpAddr)
	kernelDrops := int64(m[`veneur_listener_packets_dropped_total{protocol=udp}`])
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var flushedF float64
	if _, err := fmt.Sscanf(lastField(p.waitLine(t, "load rate", 15*time.Second)), "count=%g", &flushedF); err != nil {
		t.Fatal(err)
	}
	flushed := int64(math.Round(flushedF))
	t.Logf("sent %d datagrams (%d metrics): flushed %d metrics, kernel dropped %d datagrams", sent, sent*perDatagram, flushed, kernelDrops)
	if kernelDrops == 0 {
		t.Log("no kernel drops: the flood did not overload this run")
	}
	if flushed+kernelDrops*perDatagram != sent*perDatagram {
		t.Errorf("flushed %d + dropped %d×%d = %d, want every one of the %d metrics sent accounted for",
			flushed, kernelDrops, perDatagram, flushed+kernelDrops*perDatagram, sent*perDatagram)
	}

	slices.Sort(latencies)
	t.Logf("/healthcheck under load: %d probes, median %v, max %v", len(latencies), latencies[len(latencies)/2], latencies[len(latencies)-1])
	if len(latencies) < 10 {
		t.Fatalf("only %d health probes ran", len(latencies))
	}
	if p95 := latencies[len(latencies)*95/100]; p95 > 100*time.Millisecond {
		t.Errorf("/healthcheck p95 %v under load, want within 100ms", p95)
	}
}

// lastField returns a line's last space-separated field.
func lastField(line string) string {
	fields := strings.Fields(line)
	return fields[len(fields)-1]
}

// debugSeries reads the daemon's /debug/series.
func debugSeries(t *testing.T, httpAddr string) aggregate.SeriesStats {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/debug/series?n=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st aggregate.SeriesStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// udpQueued is the receive queue, in bytes, of the UDP sockets bound to
// addr's port.
func udpQueued(t *testing.T, addr string) int64 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := listener.Backlog(p)
	if err != nil {
		t.Fatal(err)
	}
	return queued
}
