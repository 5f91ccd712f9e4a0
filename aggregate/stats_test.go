package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

// TestStats: series and samples per metric name in the interval under
// way, sorted as asked, with the tag keys that multiply a name's series
// and the samples shed; a flush starts the count over.
func TestStats(t *testing.T) {
	a := newTestAggregator(t, Config{MaxSeries: 1000, MaxSeriesPerName: 300})
	w := a.NewWriter()
	var batch []metric.Sample
	for i := range 400 { // 300 admitted, 100 shed
		batch = append(batch, parseTestLine(t, fmt.Sprintf("req.by_id:1|c|#env:prod,request_id:%d", i)))
	}
	for i := range 50 {
		for range 10 {
			batch = append(batch, parseTestLine(t, fmt.Sprintf("lat:%d|h|#route:r%d", i, i%5)))
		}
	}
	w.Push(batch)
	began := time.Unix(0, a.intervalStart.Load())

	st := a.Stats(began.Add(2*time.Second), 10, BySeries)
	if st.LiveSeries != 305 || st.Samples != 800 || st.TotalNames != 2 || st.ShedSamples["max_series_per_name"] != 100 {
		t.Fatalf("stats %+v", st)
	}
	if st.SamplesPerSecond != 400 {
		t.Errorf("samples/s %v, want 800 samples over 2 s", st.SamplesPerSecond)
	}
	if len(st.Names) != 2 || st.Names[0].Name != "req.by_id" || st.Names[0].Series != 300 || st.Names[0].ShedSamples != 100 {
		t.Fatalf("by series: %+v", st.Names)
	}
	if keys := st.Names[0].TopTagKeys; len(keys) != 2 || keys[0] != (TagKeyStats{"request_id", 300}) || keys[1] != (TagKeyStats{"env", 1}) {
		t.Errorf("top tag keys %+v, want request_id 300 then env 1", keys)
	}
	if lat := st.Names[1]; lat.Name != "lat" || lat.Series != 5 || lat.Samples != 500 {
		t.Errorf("lat: %+v", lat)
	}
	if bySamples := a.Stats(began.Add(time.Second), 1, BySamples); len(bySamples.Names) != 1 || bySamples.Names[0].Name != "lat" {
		t.Errorf("by samples, top 1: %+v", bySamples.Names)
	}

	a.Flush(began.Add(10*time.Second), 10*time.Second)
	w.Push(parseTestLines(t, "lat:1|h|#route:r0"))
	after := a.Stats(began.Add(11*time.Second), 10, BySeries)
	if after.LiveSeries != 1 || after.Samples != 1 || len(after.ShedSamples) != 0 {
		t.Errorf("after a flush: %+v", after)
	}
}
