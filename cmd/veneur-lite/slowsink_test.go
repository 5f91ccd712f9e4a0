package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// TestBinaryHangingSinkStopsNothing: with a Datadog sink whose intake
// accepts requests and never answers, the built binary goes on ingesting
// and the console sink gets every interval; each hanging flush ends at
// its deadline (counted as a sink error), so nothing piles up and memory
// stays bounded.
func TestBinaryHangingSinkStopsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("several intervals")
	}
	intake, _ := hangingIntake(t)

	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: slow-host
metric_sinks:
  - kind: console
  - kind: datadog
    name: hanging
    config: {api_key: k, api_hostname: %s}
`, udp, httpAddr, intake))
	waitHealthy(t, httpAddr)
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Five intervals of traffic: each shows on the console while the
	// other sink hangs.
	seen := 0
	for i := range 5 {
		if _, err := fmt.Fprintf(conn, "tick%d:1|c\n", i); err != nil {
			t.Fatal(err)
		}
		p.waitLine(t, fmt.Sprintf("tick%d rate", i), 5*time.Second)
		seen++
	}
	await.Until(t, 10*time.Second, func() (bool, string) {
		m := scrape(t, httpAddr)
		errs := m[`veneur_flush_errors_total{output=sink:hanging}`]
		return errs >= 3, fmt.Sprintf("hanging sink errors %v", errs)
	})
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("%d intervals on the console while the other sink hung; peak RSS %d MiB", seen, rss>>20)
	if rss > 150<<20 {
		t.Errorf("peak RSS %d MiB with a hanging sink, want under 150", rss>>20)
	}
	for _, l := range p.output() {
		if strings.HasPrefix(l, "veneur.flush.skipped") && strings.Contains(l, "output:sink:console") {
			t.Errorf("the console sink skipped an interval: %s", l)
		}
	}
}
