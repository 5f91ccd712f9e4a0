package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// TestShedAccountingIsExactThroughTheDaemon: histograms flooding a root of
// the tier past max_series, for several caps, are either flushed (their
// aggregates) or shed, sample for sample, summing the local and the
// global scopes: the local admits no more than the fleet windows (same
// cap) take, so no sample is counted both as kept and as shed.
func TestShedAccountingIsExactThroughTheDaemon(t *testing.T) {
	for _, limit := range []int{1, 7, 64} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MaxSeries = limit
			cfg.MaxSeriesPerName = 0
			td := startDaemon(t, cfg)
			sent := limit + 25
			var lines strings.Builder
			for i := range sent {
				fmt.Fprintf(&lines, "flood:1|h|#id:%d\n", i)
			}
			sendTCP(t, td, lines.String(), sent)
			td.stop(t)
			var flushed, fleet, shed float64
			for _, p := range td.sink.points {
				switch p.Name {
				case "flood.count":
					flushed += p.Value * p.Interval.Seconds()
				case "flood.50percentile":
					fleet++
				case "veneur.cardinality.samples_shed":
					shed += p.Value * p.Interval.Seconds()
				}
			}
			if flushed+shed != float64(sent) {
				t.Errorf("flushed %v + shed %v = %v, want exactly the %d sent", flushed, shed, flushed+shed, sent)
			}
			if fleet != flushed {
				t.Errorf("%v fleet series for %v flushed series: the global shed what the local kept", fleet, flushed)
			}
		})
	}
}

// sendTCP writes lines to td's TCP listener and waits until it has
// accepted the samples in them, want in all.
func sendTCP(t *testing.T, td *testDaemon, lines string, want int) {
	t.Helper()
	c, err := net.Dial("tcp", td.tcpAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(lines)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	received := td.reg.Counter("listener.metrics_received", "protocol:tcp")
	await.Until(t, 10*time.Second, func() (bool, string) {
		return received.Load() == uint64(want), fmt.Sprintf("received %d of %d", received.Load(), want)
	})
}
