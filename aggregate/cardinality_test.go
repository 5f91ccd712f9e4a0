package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// TestCardinalityLimitShedsNewSeriesOnly: past MaxSeries, new series are
// shed and every one of their samples counted, while the series admitted
// before the flood keep aggregating exactly, in this interval and the
// next ones.
func TestCardinalityLimitShedsNewSeriesOnly(t *testing.T) {
	reg := telemetry.NewRegistry()
	a := newTestAggregator(t, Config{MaxSeries: 100, Stats: reg})
	w := a.NewWriter()
	steady := parseTestLines(t, "good:1|c|#svc:api", "good:2|c|#svc:api")
	w.Push(steady)
	flood := func(round int) {
		var batch []metric.Sample
		for i := range 500 {
			batch = append(batch, parseTestLine(t, fmt.Sprintf("flood:1|c|#req:%d-%d", round, i)))
		}
		w.Push(batch)
		w.Push(steady) // the well-behaved series, amid the flood
	}
	flood(0)
	first := a.Flush(testNow, time.Second).Points
	if len(first) != 100 {
		t.Fatalf("first interval flushed %d series, want the 100 admitted", len(first))
	}
	var good float64
	for _, p := range first {
		if p.Name == "good" {
			good = p.Value
		}
	}
	if good != 6 {
		t.Errorf("good = %v, want 6 (every sample, flood or not)", good)
	}
	shed := reg.Counter("cardinality.samples_shed", "scope:local", "reason:max_series")
	if n := shed.Load(); n != 500-99 {
		t.Errorf("shed %d samples, want %d: all sent beyond the cap", n, 500-99)
	}

	// Next interval: the limit is on the interval's live series. The
	// first flood's series get no sample, so the second flood (sent
	// before good's samples) takes their room: 100 admitted, 400 shed;
	// good, held over, still counts in full.
	flood(1)
	second := a.Flush(testNow, time.Second).Points
	if len(second) != 101 {
		t.Errorf("second interval flushed %d series, want 100 admitted and good", len(second))
	}
	for _, p := range second {
		if p.Name == "good" && p.Value != 3 {
			t.Errorf("second interval: good = %v, want 3", p.Value)
		}
	}
	if n := shed.Load(); n != 401+400 {
		t.Errorf("shed %d samples after two floods, want %d", n, 401+400)
	}
}

// TestCardinalityLimitPerName: one runaway name cannot starve the others.
func TestCardinalityLimitPerName(t *testing.T) {
	reg := telemetry.NewRegistry()
	a := newTestAggregator(t, Config{MaxSeries: 1000, MaxSeriesPerName: 10, Stats: reg})
	var batch []metric.Sample
	for i := range 50 {
		batch = append(batch, parseTestLine(t, fmt.Sprintf("runaway:1|c|#id:%d", i)))
		batch = append(batch, parseTestLine(t, fmt.Sprintf("other%d:1|c", i%5)))
	}
	a.NewWriter().Push(batch) // a reader's Writer: Push is for self-metrics
	byName := map[string]int{}
	for _, p := range a.Flush(testNow, time.Second).Points {
		byName[p.Name]++
	}
	if byName["runaway"] != 10 || len(byName) != 6 {
		t.Errorf("series per name %v, want runaway 10 and other0..4 one each", byName)
	}
	if n := reg.Counter("cardinality.samples_shed", "scope:local", "reason:max_series_per_name").Load(); n != 40 {
		t.Errorf("shed %d samples, want 40", n)
	}
	if n := reg.Counter("cardinality.samples_shed_by_name", "scope:local", "reason:max_series_per_name", "metric:runaway").Load(); n != 40 {
		t.Errorf("shed_by_name{metric:runaway} = %d, want 40", n)
	}
}

// TestSelfMetricsAreNeverShed: the process's own measurements (Push, the
// shared Writer) get through a full interval.
func TestSelfMetricsAreNeverShed(t *testing.T) {
	a := newTestAggregator(t, Config{MaxSeries: 1})
	a.NewWriter().Push(parseTestLines(t, "client:1|c"))
	a.Push(parseTestLines(t, "veneur.x:1|c|#veneur_internal_metric:true", "veneur.y:1|c|#veneur_internal_metric:true"))
	if points := a.Flush(testNow, time.Second).Points; len(points) != 3 {
		t.Errorf("flushed %d series, want the client's and both self-metrics", len(points))
	}
}

// TestShedAccountingIsExactAtTheBound: new series flood in while intervals
// end, for many caps. Every sample is either flushed or shed (flushed +
// shed == sent, exactly), and no interval flushes more series than the
// cap: a sample that arrives while a flush is taking the shards belongs
// to one interval, and is counted against that interval's limits only.
func TestShedAccountingIsExactAtTheBound(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 5, 8, 13, 64, 100, 257} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			reg := telemetry.NewRegistry()
			a := newTestAggregator(t, Config{MaxSeries: limit, Stats: reg, Shards: 4})
			const writers, batches, perBatch = 4, 200, 8
			done := make(chan struct{})
			for wi := range writers {
				go func() {
					defer func() { done <- struct{}{} }()
					w := a.NewWriter()
					batch := make([]metric.Sample, 0, perBatch)
					for b := range batches {
						batch = batch[:0]
						for i := range perBatch {
							batch = append(batch, metric.Sample{Name: []byte("flood"), Tags: []byte(fmt.Sprintf("id:%d-%d-%d", wi, b, i)), Value: 1, Rate: 1, Kind: metric.Counter})
						}
						w.Push(batch)
					}
				}()
			}
			var flushed float64
			flush := func() {
				n := 0
				for _, p := range a.Flush(testNow, time.Second).Points {
					if p.Name == "flood" {
						flushed += p.Value
						n++
					}
				}
				if n > limit {
					t.Errorf("an interval flushed %d series, over the cap of %d", n, limit)
				}
			}
			for finished := 0; finished < writers; {
				select {
				case <-done:
					finished++
				default:
					flush()
				}
			}
			flush()
			shed := float64(reg.Counter("cardinality.samples_shed", "scope:local", "reason:max_series").Load())
			if sent := float64(writers * batches * perBatch); flushed+shed != sent {
				t.Errorf("flushed %v + shed %v = %v, want exactly the %v sent", flushed, shed, flushed+shed, sent)
			}
		})
	}
}
