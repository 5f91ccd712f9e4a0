package global

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/pointtest"
	"github.com/veneur-lite/veneur-lite/internal/syncbuf"
	"github.com/veneur-lite/veneur-lite/listener"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// g is the interval of the import tests, t0 an interval boundary.
const g = 10 * time.Second

var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is the clock Import reads; tests move it.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}
func (c *fakeClock) set(t time.Time)                        { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Now() time.Time                         { return time.Unix(0, c.ns.Load()) }
func at(d time.Duration) time.Time                          { return t0.Add(d) }
func counterOf(reg *telemetry.Registry, name string) uint64 { return reg.Counter(name).Load() }

// newGlobal returns windows of interval g reading clock.
func newGlobal(t testing.TB, clock *fakeClock, cfg Config) *Windows {
	t.Helper()
	cfg.Interval = g
	cfg.Now = clock.Now
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// newLocal returns a local instance's aggregator.
func newLocal(t testing.TB, host string) *aggregate.Aggregator {
	t.Helper()
	a, err := aggregate.New(aggregate.Config{Hostname: host, Aggregates: []aggregate.Aggregate{aggregate.AggCount}})
	if err != nil {
		t.Fatalf("aggregate.New: %v", err)
	}
	return a
}

// localFlush aggregates DogStatsD lines on a fresh local instance and
// returns what it forwards.
func localFlush(t testing.TB, host string, lines ...string) []metric.Series {
	t.Helper()
	a := newLocal(t, host)
	var batch metric.Batch
	p := listener.NewParser(0, nil)
	if rejected := p.Parse([]byte(strings.Join(lines, "\n")), &batch); rejected > 0 {
		t.Fatalf("%d of the lines %q rejected", rejected, lines)
	}
	a.Push(batch.Samples)
	return a.Flush(t0, g).Forward
}

func assertPoints(t *testing.T, got, want []metric.Point) {
	t.Helper()
	pointtest.Assert(t, got, want)
}

// flushPoints flushes and returns the points.
func flushPoints(w *Windows, now time.Time) []metric.Point {
	points, _ := w.Flush(now, g)
	return points
}

// flushForward flushes and returns the forwarded series.
func flushForward(w *Windows, now time.Time) []metric.Series {
	_, fwd := w.Flush(now, g)
	return fwd
}

// fleet returns a fleet-wide (host-less) gauge point flushed at ts.
func fleet(name string, value float64, ts time.Time, tags ...string) metric.Point {
	return metric.Point{Name: name, Tags: pointtest.NilIfEmpty(tags), Type: metric.GaugePoint, Value: value, Timestamp: ts.Unix()}
}

func fleetRate(name string, value float64, ts time.Time, tags ...string) metric.Point {
	return metric.Point{Name: name, Tags: pointtest.NilIfEmpty(tags), Type: metric.RatePoint, Value: value, Timestamp: ts.Unix(), Interval: g}
}

func TestImportLagsOneInterval(t *testing.T) {
	clock := newClock(at(g))
	glob := newGlobal(t, clock, Config{})
	if points := flushPoints(glob, at(g)); len(points) != 0 {
		t.Fatalf("nothing imported yet, flushed %s", pointtest.Format(points))
	}

	// Locals aggregated [t0, t0+g) and forward it during [t0+g, t0+2g),
	// one early, one late in that interval.
	clock.set(at(g + time.Second))
	glob.Import(t0, g, localFlush(t, "a", "jobs:10|c|#veneurglobalonly"))
	clock.set(at(2*g - time.Millisecond))
	glob.Import(t0, g, localFlush(t, "b", "jobs:30|c|#veneurglobalonly"))
	// A batch of the next interval arrives just after the flush at t0+2g,
	// and must not be flushed with it however early it is.
	clock.set(at(2*g + time.Millisecond))
	glob.Import(t0.Add(g), g, localFlush(t, "c", "jobs:5|c|#veneurglobalonly"))

	// (10+30)/10s, both hosts, one flush.
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{fleetRate("jobs", 4, at(g))})
	assertPoints(t, flushPoints(glob, at(3*g)), []metric.Point{fleetRate("jobs", 0.5, at(2*g))})
	if points := flushPoints(glob, at(4*g)); len(points) != 0 {
		t.Fatalf("flushed twice: %s", pointtest.Format(points))
	}
}

func TestLateBatchGoesToOldestOpenInterval(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(2*g + time.Second))
	glob := newGlobal(t, clock, Config{Stats: reg})
	glob.Flush(at(2*g), g) // [t0, t0+g) is gone; t0+g is the oldest open

	for _, start := range []time.Time{t0, t0.Add(-5 * g)} { // a retry, an outage's backlog
		glob.Import(start, g, localFlush(t, "a", "jobs:10|c|#veneurglobalonly"))
	}
	glob.Import(t0.Add(g), g, localFlush(t, "b", "jobs:1|c|#veneurglobalonly"))
	if n := counterOf(reg, "import.late_batches"); n != 2 {
		t.Errorf("late batches = %d, want 2", n)
	}
	assertPoints(t, flushPoints(glob, at(3*g)), []metric.Point{fleetRate("jobs", 2.1, at(2*g))})
}

func TestFutureBatchIsCapped(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Stats: reg})
	glob.Flush(at(g), g)
	// A local whose clock runs an hour ahead.
	glob.Import(t0.Add(time.Hour), g, localFlush(t, "a", "jobs:10|c|#veneurglobalonly"))
	if n := counterOf(reg, "import.future_batches"); n != 1 {
		t.Errorf("future batches = %d, want 1", n)
	}
	if points := flushPoints(glob, at(2*g)); len(points) != 0 {
		t.Fatalf("the capped batch belongs to the current interval: %s", pointtest.Format(points))
	}
	assertPoints(t, flushPoints(glob, at(3*g)), []metric.Point{fleetRate("jobs", 1, at(2*g))})
}

func TestOpenIntervalsAreBounded(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Stats: reg})
	// No flush runs while the clock moves on through six intervals.
	var want float64
	for i := range 6 {
		clock.set(at(time.Duration(i+1)*g + time.Second))
		glob.Import(t0.Add(time.Duration(i)*g), g, localFlush(t, "a", fmt.Sprintf("jobs:%d|c|#veneurglobalonly", i+1)))
		want += float64(i + 1)
	}
	if n := reg.Gauge("import.open_intervals").Load(); n > maxOpenWindows {
		t.Fatalf("%v intervals open, at most %d", n, maxOpenWindows)
	}
	// One late flush takes every interval due, as one point per series
	// whose rate is over the intervals it covers; nothing is lost.
	var got float64
	for i := 7; i < 12; i++ {
		for _, p := range flushPoints(glob, at(time.Duration(i)*g)) {
			if p.Interval < g {
				t.Errorf("point %+v: interval below the global's %v", p, g)
			}
			got += p.Value * p.Interval.Seconds()
		}
	}
	if got != want {
		t.Fatalf("flushed %v jobs, imported %v", got, want)
	}
}

// TestImportedOutput: the fleet-wide points are percentiles of digests
// (never their aggregates, which the locals flush), set sizes, counter
// rates and the last gauge, all without a host and with the tags as
// forwarded.
func TestImportedOutput(t *testing.T) {
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Percentiles: metric.MustPercentiles(0.5, 0.99)})
	glob.Flush(at(g), g)
	glob.Import(t0, g, localFlush(t, "a",
		"lat:1|ms|#env:dev,svc:api", "lat:2|ms|#env:dev,svc:api", "lat:3|ms|#env:dev,svc:api",
		"users:alice|s", "users:bob|s", "users:alice|s",
		"temp:20|g|#veneurglobalonly,room:1",
	))
	glob.Import(t0, g, localFlush(t, "b", "temp:25|g|#veneurglobalonly,room:1"))

	// Flushed at t0+2g, stamped t0+g: the end of the interval the samples
	// were in, as the locals stamped their own points of it.
	ts := at(g)
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{
		fleet("lat.50percentile", 2, ts, "env:dev", "svc:api"),
		fleet("lat.99percentile", digestQuantile(0.99, 1, 2, 3), ts, "env:dev", "svc:api"),
		fleet("users", 2, ts),
		fleet("temp", 25, ts, "room:1"),
	})
}

// TestMergedPercentiles: three hosts see three different distributions of
// one timer; the global's percentiles are those of their union, within 1%
// of rank.
func TestMergedPercentiles(t *testing.T) {
	const perHost = 50_000
	rng := rand.New(rand.NewPCG(11, 12))
	gens := []func() float64{
		func() float64 { return rng.Float64() * 100 },
		func() float64 { return 100 + rng.Float64()*900 },
		func() float64 { return math.Exp(4 + rng.NormFloat64()) },
	}
	percentiles := []float64{0.5, 0.9, 0.99}
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Percentiles: metric.MustPercentiles(percentiles...), Stats: reg})
	glob.Flush(at(g), g)

	var all []float64
	for h, gen := range gens {
		local := newLocal(t, "h"+strconv.Itoa(h))
		batch := make([]metric.Sample, 0, 1000)
		for range perHost {
			v := gen()
			all = append(all, v)
			batch = append(batch, metric.Sample{Name: []byte("req"), Tags: []byte("svc:api"), Value: v, Rate: 1, Kind: metric.Histogram})
			if len(batch) == cap(batch) {
				local.Push(batch)
				batch = batch[:0]
			}
		}
		glob.Import(t0, g, local.Flush(at(g), g).Forward)
	}
	if n := counterOf(reg, "import.digest_samples"); n != uint64(len(all)) {
		t.Errorf("import.digest_samples = %d, want %d", n, len(all))
	}
	slices.Sort(all)
	points := flushPoints(glob, at(2*g))
	if len(points) != len(percentiles) {
		t.Fatalf("points:\n%s", pointtest.Format(points))
	}
	for _, p := range points {
		var q float64
		for _, pc := range percentiles {
			if p.Name == "req."+metric.PercentileName(pc) {
				q = pc
			}
		}
		rank := float64(rankOf(all, p.Value)) / float64(len(all))
		t.Logf("%s: %.3f (exact %.3f), rank error %.5f", p.Name, p.Value, all[int(q*float64(len(all)))], math.Abs(rank-q))
		if math.Abs(rank-q) > 0.01 {
			t.Errorf("%s = %v has rank %v, more than 0.01 from %v", p.Name, p.Value, rank, q)
		}
	}
}

func TestMergedSetUnion(t *testing.T) {
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{})
	glob.Flush(at(g), g)
	// Overlapping member ranges: 0–30k, 20k–50k, 40k–70k.
	for h := range 3 {
		local := newLocal(t, "h"+strconv.Itoa(h))
		var batch []metric.Sample
		for i := h * 20_000; i < h*20_000+30_000; i++ {
			batch = append(batch, metric.Sample{Name: []byte("users"), SetMember: []byte("user-" + strconv.Itoa(i)), Rate: 1, Kind: metric.Set})
		}
		local.Push(batch)
		glob.Import(t0, g, local.Flush(at(g), g).Forward)
	}
	points := flushPoints(glob, at(2*g))
	if len(points) != 1 {
		t.Fatalf("points:\n%s", pointtest.Format(points))
	}
	const union = 70_000
	relErr := math.Abs(points[0].Value-union) / union
	t.Logf("union estimate %v of %d: error %.2f%%", points[0].Value, union, 100*relErr)
	if relErr > 0.03 {
		t.Errorf("union estimate %v, want %d within 3%%", points[0].Value, union)
	}
}

// TestChainedTierForwardsImportedState: a middle tier flushes the merged
// state for the next tier instead of points.
func TestChainedTierForwardsImportedState(t *testing.T) {
	clock := newClock(at(g + time.Second))
	mid := newGlobal(t, clock, Config{Forwarding: true, Percentiles: metric.MustPercentiles(0.5)})
	mid.Flush(at(g), g)
	mid.Import(t0, g, localFlush(t, "a", "lat:1|ms", "lat:2|ms", "users:x|s", "jobs:3|c|#veneurglobalonly", "temp:1|g|#veneurglobalonly"))
	mid.Import(t0, g, localFlush(t, "b", "lat:3|ms", "users:y|s", "jobs:4|c|#veneurglobalonly", "temp:9|g|#veneurglobalonly"))

	points, fwd := mid.Flush(at(2*g), g)
	if len(points) != 0 {
		t.Errorf("fleet-wide points on a forwarding tier:\n%s", pointtest.Format(points))
	}
	byKey := map[string]metric.Series{}
	for _, s := range fwd {
		if _, dup := byKey[s.Key]; dup {
			t.Fatalf("series %q forwarded twice", s.Key)
		}
		byKey[s.Key] = s
	}
	if s := byKey["histogram|lat|"]; s.Digest == nil || s.Digest.Count() != 3 {
		t.Errorf("lat: want both hosts' samples merged (3), got %+v", s)
	}
	if s := byKey["set|users|"]; s.Set == nil || s.Set.Estimate() != 2 {
		t.Errorf("users: %+v", s)
	}
	if s := byKey["counter|jobs|"]; s.Value != 7 {
		t.Errorf("jobs: %v, want 7", s.Value)
	}
	if s := byKey["gauge|temp|"]; s.Value != 9 {
		t.Errorf("temp: %v, want the last to arrive, 9", s.Value)
	}
	if len(byKey) != 4 {
		t.Errorf("forwarded %d series: %v", len(byKey), byKey)
	}
}

func TestDrainImports(t *testing.T) {
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{})
	glob.Flush(at(g), g)
	glob.Import(t0, g, localFlush(t, "a", "jobs:10|c|#veneurglobalonly"))
	clock.set(at(2*g + time.Second))
	glob.Import(t0.Add(g), g, localFlush(t, "a", "jobs:20|c|#veneurglobalonly"))
	glob.Drain()
	// Both intervals flush as one point: its rate is over the 20 s they
	// cover, so that rate × interval is the 30 jobs imported; it is
	// stamped with the end of the later one.
	want := fleetRate("jobs", 1.5, at(2*g))
	want.Interval = 2 * g
	assertPoints(t, flushPoints(glob, clock.Now()), []metric.Point{want})
}

func TestImportRejectsBrokenSeries(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Stats: reg})
	glob.Flush(at(g), g)
	good := localFlush(t, "a", "jobs:1|c|#veneurglobalonly")
	glob.Import(t0, g, append(good,
		keyed(metric.Series{Name: "t", Kind: metric.Histogram}),                  // no digest
		keyed(metric.Series{Name: "s", Kind: metric.Set}),                        // no sketch
		keyed(metric.Series{Name: "c", Kind: metric.Counter, Value: math.NaN()}), // not finite
		keyed(metric.Series{Kind: metric.Counter}),                               // no name
		keyed(metric.Series{Name: "k", Kind: metric.Kind(42)}),                   // no such kind
		metric.Series{Name: "nokey", Kind: metric.Counter, Value: 1},             // no Key
	))
	if n := counterOf(reg, "import.series_rejected"); n != 6 {
		t.Errorf("rejected %d series, want 6", n)
	}
	if n := counterOf(reg, "import.series_merged"); n != 1 {
		t.Errorf("merged %d series, want 1", n)
	}
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{fleetRate("jobs", 0.1, at(g))})
}

// TestConcurrentImportFlush merges batches from many goroutines while a
// flusher runs: on a chained tier, so that everything
// imported comes out as forwarded series and can be counted. Under -race.
func TestConcurrentImportFlush(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Shards: 4, Forwarding: true, Stats: reg})
	const importers, batches = 4, 40
	var wantJobs atomic.Int64
	var work sync.WaitGroup
	for w := range importers {
		work.Add(1)
		go func() {
			defer work.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for b := range batches {
				var lines []string
				for s := range 10 {
					lines = append(lines, fmt.Sprintf("lat%d:%d|ms", s, rng.IntN(100)), fmt.Sprintf("u%d:%d|s", s%3, rng.IntN(50)))
				}
				n := rng.IntN(5) + 1
				wantJobs.Add(int64(n))
				lines = append(lines, fmt.Sprintf("jobs:%d|c|#veneurglobalonly", n))
				// Intervals vary: current, previous, late, future.
				start := clock.Now().Truncate(g).Add(time.Duration(b%4-2) * g)
				glob.Import(start, g, localFlush(t, "h", lines...))
			}
		}()
	}
	var gotSamples uint64
	var gotJobs float64
	collect := func(_ []metric.Point, fwd []metric.Series) {
		for _, s := range fwd {
			if s.Digest != nil {
				gotSamples += uint64(s.Digest.Count())
			}
			if s.Kind == metric.Counter {
				gotJobs += s.Value
			}
		}
	}
	done := make(chan struct{})
	go func() { work.Wait(); close(done) }()
	now := at(g)
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			now = now.Add(g)
			clock.set(now.Add(time.Second))
			collect(glob.Flush(now, g))
		}
	}
	glob.Drain()
	collect(glob.Flush(now.Add(g), g))
	if want := counterOf(reg, "import.digest_samples"); gotSamples != want {
		t.Errorf("forwarded %d digest samples, imported %d", gotSamples, want)
	}
	if gotJobs != float64(wantJobs.Load()) {
		t.Errorf("forwarded %v jobs, imported %v", gotJobs, wantJobs.Load())
	}
	if n := reg.Gauge("import.open_intervals").Load(); n != 0 {
		t.Errorf("%v intervals open after the drain", n)
	}
}

func digestQuantile(q float64, values ...float64) float64 {
	td := new(sketch.Digest)
	for _, v := range values {
		td.Add(v, 1)
	}
	return td.Quantile(q)
}

// TestImportKeepsNoBatchMemory: a series new to a window gets a digest of
// its own (a decoded batch's digests share the batch's memory), not the
// batch's; a digest passed twice merges once per pass; many shards and
// series merge as one per key whatever the grouping.
func TestImportKeepsNoBatchMemory(t *testing.T) {
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Shards: 8, Forwarding: true})
	glob.Flush(at(g), g)

	own := new(sketch.Digest)
	own.Add(1, 1)
	twice := new(sketch.Digest)
	twice.Add(3, 1)
	batch := []metric.Series{
		keyed(metric.Series{Name: "a", Kind: metric.Histogram, Digest: own}),
		keyed(metric.Series{Name: "c", Kind: metric.Histogram, Digest: twice}),
		keyed(metric.Series{Name: "c", Kind: metric.Histogram, Digest: twice}),
	}
	for i := range 200 {
		batch = append(batch, keyed(metric.Series{Name: "n" + strconv.Itoa(i%50), Kind: metric.Counter, Value: 1}))
	}
	glob.Import(t0, g, batch)
	own.Add(100, 1) // the caller's digest, changed after the import

	got := map[string]metric.Series{}
	for _, s := range flushForward(glob, at(2*g)) {
		got[s.Key] = s
	}
	if s := got["histogram|a|"]; s.Digest == own || s.Digest.Count() != 1 || s.Digest.Max() != 1 {
		t.Errorf("a: want a digest of its own holding the 1 sample imported, got %+v", s)
	}
	if s := got["histogram|c|"]; s.Digest == nil || s.Digest.Count() != 2 {
		t.Errorf("c: want 2 samples, got %+v", s)
	}
	for i := range 50 {
		if s := got["counter|n"+strconv.Itoa(i)+"|"]; s.Value != 4 {
			t.Errorf("counter n%d = %v, want 4", i, s.Value)
		}
	}
}

// keyed sets a series' Key from its kind, name and tags, as locals and
// the wire decoder do.
func keyed(s metric.Series) metric.Series {
	s.Key = metric.SeriesKey(s.Kind, s.Name, s.Tags)
	return s
}

// rankOf is the number of values in sorted not above v.
func rankOf(sorted []float64, v float64) int {
	i, _ := slices.BinarySearch(sorted, math.Nextafter(v, math.Inf(1)))
	return i
}

// TestCardinalityLimitAtTheGlobal: a window past MaxSeries sheds series
// new to the tier, counted one by one, while a series the last window
// held keeps merging exactly, whenever it arrives.
func TestCardinalityLimitAtTheGlobal(t *testing.T) {
	reg := telemetry.NewRegistry()
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{MaxSeries: 50, Stats: reg})
	glob.Flush(at(g), g)
	glob.Import(t0, g, localFlush(t, "a", "good:1|c|#veneurglobalonly"))
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{fleetRate("good", 0.1, at(g))})

	clock.set(at(2*g + time.Second))
	var flood []string
	for i := range 200 {
		flood = append(flood, fmt.Sprintf("flood:1|c|#veneurglobalonly,req:%d", i))
	}
	glob.Import(t0.Add(g), g, localFlush(t, "b", flood...))
	glob.Import(t0.Add(g), g, localFlush(t, "a", "good:3|c|#veneurglobalonly")) // after the flood
	points := flushPoints(glob, at(3*g))
	if len(points) != 51 {
		t.Fatalf("flushed %d series, want 50 admitted and good", len(points))
	}
	for _, p := range points {
		if p.Name == "good" && p.Value != 0.3 {
			t.Errorf("good = %v, want 0.3: every sample", p.Value)
		}
	}
	if n := reg.Counter("cardinality.samples_shed", "scope:global", "reason:max_series").Load(); n != 150 {
		t.Errorf("shed %d series, want 150", n)
	}
}

// A d series merges apart from an h series of the same name, and its fleet
// percentiles are marked Distribution: a sink that ships the locals'
// sketches (Datadog) leaves them out, every other sink flushes them.
func TestDistributionFleetPercentilesAreMarked(t *testing.T) {
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Percentiles: metric.MustPercentiles(0.5)})
	glob.Import(t0, g, localFlush(t, "a", "x:1|d", "x:3|d", "x:100|h"))
	glob.Import(t0, g, localFlush(t, "b", "x:2|d", "x:200|h"))
	// The sketch's median: the value of the key holding 2.
	dist := fleet("x.50percentile", agentsketch.Value(agentsketch.KeyOf(2)), at(g))
	dist.Distribution = true
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{fleet("x.50percentile", 100, at(g)), dist})
}

// TestIntervalMismatchIsCountedAndLogged: batches aggregated over another
// interval than the global's still merge (a 5 s local's two intervals into
// one 10 s window), but each is counted as import.interval_mismatch, and
// logged at most once a minute with the two intervals; batches of the
// global's own interval are not.
func TestIntervalMismatchIsCountedAndLogged(t *testing.T) {
	reg := telemetry.NewRegistry()
	var log syncbuf.Buffer
	clock := newClock(at(g + time.Second))
	glob := newGlobal(t, clock, Config{Stats: reg, Log: slog.New(slog.NewTextHandler(&log, nil))})
	glob.Flush(at(g), g)
	half := g / 2
	glob.Import(t0, half, localFlush(t, "a", "jobs:10|c|#veneurglobalonly"))
	glob.Import(t0.Add(half), half, localFlush(t, "a", "jobs:20|c|#veneurglobalonly"))
	glob.Import(t0, g, localFlush(t, "b", "jobs:1|c|#veneurglobalonly"))
	if n := counterOf(reg, "import.interval_mismatch"); n != 2 {
		t.Errorf("interval_mismatch = %d, want 2 (the 5s batches, not the 10s one)", n)
	}
	assertPoints(t, flushPoints(glob, at(2*g)), []metric.Point{fleetRate("jobs", 3.1, at(g))})
	if got := strings.Count(log.String(), "another interval"); got != 1 {
		t.Errorf("logged %d times, want once (throttled):\n%s", got, log.String())
	}
	if !strings.Contains(log.String(), "batch_interval=5s interval=10s") {
		t.Errorf("log does not name both intervals:\n%s", log.String())
	}
	clock.set(at(2*g + time.Minute))
	glob.Import(t0.Add(g), half, localFlush(t, "a", "jobs:1|c|#veneurglobalonly"))
	if got := strings.Count(log.String(), "another interval"); got != 2 {
		t.Errorf("logged %d times after a minute, want twice:\n%s", got, log.String())
	}
}
