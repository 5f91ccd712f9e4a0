package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
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
	sendTCP(t, td, lines.String(), 100)
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
