package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// TestLiveSeriesDescribesTheIntervalItIsFlushedWith: 100 new series sent
// in one interval; the flush that carries them reports them in
// veneur.cardinality.live_series{scope:local}, with every other series of
// that interval (the self-metrics, the gauge itself): exactly the series
// that flush holds, not those of the interval before.
func TestLiveSeriesDescribesTheIntervalItIsFlushedWith(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, "new.series:1|c|#id:%d\n", i)
	}
	c, err := net.Dial("tcp", td.tcpAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(lines.String())); err != nil {
		t.Fatal(err)
	}
	c.Close()
	received := td.reg.Counter("listener.metrics_received", "protocol:tcp")
	await.Until(t, 10*time.Second, func() (bool, string) {
		return received.Load() == 100, fmt.Sprintf("received %d of 100", received.Load())
	})
	td.stop(t) // the one flush: the interval is an hour

	// Counters and gauges only: one point per series.
	live, found := 0.0, false
	series := 0
	for _, p := range td.sink.points {
		series++
		if p.Name == "veneur.cardinality.live_series" && slices.Contains(p.Tags, "scope:local") {
			live, found = p.Value, true
		}
	}
	if !found {
		t.Fatalf("no veneur.cardinality.live_series{scope:local} in the flush that carries the 100 series")
	}
	if live != float64(series) || series < 100 {
		t.Errorf("live_series = %v, want the %d series of the flush that carries them (100 sent)", live, series)
	}
}
