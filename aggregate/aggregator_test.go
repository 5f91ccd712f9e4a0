package aggregate

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/pointtest"
	"github.com/veneur-lite/veneur-lite/internal/shards"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// testNow is the flush time of every test; its points carry testNow.Unix().
var testNow = time.Unix(1_700_000_000, 0)

const testHost = "box1"

// parseTestLine reads the subset of DogStatsD the tests need:
// name:value|type[|@rate][|#tags].
func parseTestLine(t testing.TB, line string) metric.Sample {
	t.Helper()
	nameValue, rest, _ := strings.Cut(line, "|")
	name, value, _ := strings.Cut(nameValue, ":")
	fields := strings.Split(rest, "|")
	kinds := map[string]metric.Kind{"c": metric.Counter, "g": metric.Gauge, "h": metric.Histogram, "ms": metric.Histogram, "d": metric.Distribution, "s": metric.Set}
	s := metric.Sample{Name: []byte(name), Kind: kinds[fields[0]], Rate: 1}
	if s.Kind == metric.KindInvalid {
		t.Fatalf("test line %q: unknown type", line)
	}
	if s.Kind == metric.Set {
		s.SetMember = []byte(value)
	} else {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("test line %q: %v", line, err)
		}
		s.Value = v
	}
	for _, f := range fields[1:] {
		switch f[0] {
		case '@':
			r, err := strconv.ParseFloat(f[1:], 32)
			if err != nil {
				t.Fatalf("test line %q: %v", line, err)
			}
			s.Rate = float32(r)
		case '#':
			s.Tags = []byte(f[1:])
		}
	}
	return s
}

func parseTestLines(t testing.TB, lines ...string) []metric.Sample {
	t.Helper()
	out := make([]metric.Sample, len(lines))
	for i, l := range lines {
		out[i] = parseTestLine(t, l)
	}
	return out
}

func newTestAggregator(t testing.TB, cfg Config) *Aggregator {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = testHost
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func assertPoints(t *testing.T, got, want []metric.Point) {
	t.Helper()
	pointtest.Assert(t, got, want)
}

func gauge(name string, value float64, tags ...string) metric.Point {
	return metric.Point{Name: name, Tags: pointtest.NilIfEmpty(tags), Host: testHost, Type: metric.GaugePoint, Value: value, Timestamp: testNow.Unix()}
}

func rate(name string, value float64, interval time.Duration, tags ...string) metric.Point {
	return metric.Point{Name: name, Tags: pointtest.NilIfEmpty(tags), Host: testHost, Type: metric.RatePoint, Value: value, Timestamp: testNow.Unix(), Interval: interval}
}

func TestFlushByKind(t *testing.T) {
	a := newTestAggregator(t, Config{
		Shards:      4,
		Percentiles: metric.MustPercentiles(0.5),
		Aggregates:  []Aggregate{AggMin, AggMax, AggCount, AggSum, AggAvg, AggMedian},
	})
	a.Push(parseTestLines(t,
		"hits:1|c|#a:1",
		"hits:2.5|c|#a:1",
		"hits:4|c|#a:2",
		"temp:3|g",
		"temp:-7|g",
		"lat:1|h|#veneurlocalonly", // percentiles and sets flushed here
		"lat:2|h|#veneurlocalonly",
		"lat:3|h|#veneurlocalonly",
		"users:alice|s|#veneurlocalonly",
		"users:bob|s|#veneurlocalonly",
		"users:alice|s|#veneurlocalonly",
	))
	got := a.Flush(testNow, 2*time.Second)
	assertPoints(t, got.Points, []metric.Point{
		rate("hits", 1.75, 2*time.Second, "a:1"),
		rate("hits", 2, 2*time.Second, "a:2"),
		gauge("temp", -7),
		gauge("lat.min", 1),
		gauge("lat.max", 3),
		rate("lat.count", 1.5, 2*time.Second),
		gauge("lat.sum", 6),
		gauge("lat.avg", 2),
		gauge("lat.median", 2),
		gauge("lat.50percentile", 2),
		gauge("users", 2),
	})
	if len(got.Forward) != 0 {
		t.Errorf("local-only series forwarded: %d", len(got.Forward))
	}
}

func TestSampleRatesAreExactWeights(t *testing.T) {
	a := newTestAggregator(t, Config{Aggregates: []Aggregate{AggMin, AggMax, AggCount, AggSum, AggAvg}})
	var batch []metric.Sample
	for i := range 1000 {
		batch = append(batch, parseTestLine(t, fmt.Sprintf("lat:%d|h|@0.1", i%10)))
	}
	batch = append(batch, parseTestLines(t,
		"x:1|c|@0.1",
		"y:3|c|@0.25",
		"z:1|c|@0.3",
	)...)
	a.Push(batch)
	got := a.Flush(testNow, time.Second)
	// Values 0..9, 100 each, weight 10: sum 45*100*10.
	assertPoints(t, got.Points, []metric.Point{
		gauge("lat.min", 0),
		gauge("lat.max", 9),
		rate("lat.count", 10_000, time.Second),
		gauge("lat.sum", 45_000),
		gauge("lat.avg", 4.5),
		rate("x", 10, time.Second),
		rate("y", 12, time.Second),
		rate("z", 1/0.3, time.Second),
	})
}

func TestSampleWeight(t *testing.T) {
	for _, tc := range []struct {
		rate float32
		want float64
	}{
		{1, 1},
		{0.5, 2},
		{0.1, 10},
		{0.01, 100},
		{0.001, 1000},
		{0.3, 1 / 0.3},
		{0.125, 8},
		{0, 1},                    // invalid: counts as 1
		{-0.5, 1},                 // invalid
		{1.5, 1},                  // invalid
		{float32(math.NaN()), 1},  // invalid
		{float32(math.Inf(1)), 1}, // invalid
	} {
		if got := sampleWeight(tc.rate); got != tc.want {
			t.Errorf("sampleWeight(%v) = %v, want %v", tc.rate, got, tc.want)
		}
	}
}

func TestTagCanonicalization(t *testing.T) {
	a := newTestAggregator(t, Config{ExtendTags: nil})
	a.Push(parseTestLines(t,
		"x:1|c|#a:1,b:2",
		"x:1|c|#b:2,a:1",
		"x:1|c|#b:2,,a:1,",
		"x:1|c|#a:1,b:2,a:1",       // a tag set: duplicates collapse
		"x:1|c|#host:box1,a:1,b:2", // the configured host is the default host
		"x:100|c|#a:1",
		"y:1|c|#host:other,env:prod",
		"y:2|c|#env:prod",
		"y:3|c|#host:,env:prod", // an empty host: tag makes a host-less series
	))
	got := a.Flush(testNow, time.Second)
	want := []metric.Point{
		rate("x", 5, time.Second, "a:1", "b:2"),
		rate("x", 100, time.Second, "a:1"),
		rate("y", 2, time.Second, "env:prod"),
	}
	other := rate("y", 1, time.Second, "env:prod")
	other.Host = "other"
	noHost := rate("y", 3, time.Second, "env:prod")
	noHost.Host = ""
	assertPoints(t, got.Points, append(want, other, noHost))
}

// TestHistogramTimerDistributionAreOneSeries: h, ms and d flush under the
// same names, so they are one series (docs/output.md), not three that collide at
// the intake; a counter of the same name stays its own.
// h and ms are one series; d is its own, as in the Datadog Agent: its
// points are marked for the sinks that ship its sketch instead, and its
// sketch (this host's, with the host) has every sample with its weight.
func TestDistributionIsItsOwnSeries(t *testing.T) {
	a := newTestAggregator(t, Config{Aggregates: []Aggregate{AggCount}})
	a.Push(parseTestLines(t, "x:1|h", "x:1|ms", "x:1|d", "x:3|d|@0.5|#a:b", "x:1|h", "x:1|c"))
	got := a.Flush(testNow, time.Second)
	dist := func(p metric.Point) metric.Point { p.Distribution = true; return p }
	assertPoints(t, got.Points, []metric.Point{
		rate("x.count", 3, time.Second),
		dist(rate("x.count", 1, time.Second)),
		dist(rate("x.count", 2, time.Second, "a:b")),
		rate("x", 1, time.Second),
	})
	slices.SortFunc(got.Sketches, func(a, b metric.SketchPoint) int { return cmp.Compare(len(a.Tags), len(b.Tags)) })
	if len(got.Sketches) != 2 {
		t.Fatalf("%d sketches, want 2", len(got.Sketches))
	}
	for i, want := range []struct {
		tags  []string
		count int64
		sum   float64
	}{{nil, 1, 1}, {[]string{"a:b"}, 2, 6}} {
		sp := got.Sketches[i]
		if sp.Name != "x" || sp.Host != testHost || !slices.Equal(sp.Tags, want.tags) || sp.Timestamp != testNow.Unix() ||
			sp.Sketch.Count() != want.count || sp.Sketch.Sum() != want.sum {
			t.Errorf("sketch %d: %+v count %d sum %v, want tags %v count %d sum %v", i, sp, sp.Sketch.Count(), sp.Sketch.Sum(), want.tags, want.count, want.sum)
		}
	}
	kinds := map[metric.Kind]int{}
	for _, f := range got.Forward {
		kinds[f.Kind]++
		// A d series forwards its Agent sketch (the one it shipped), an h
		// series its digest.
		if (f.Kind == metric.Distribution) != (f.Dist != nil) || (f.Kind == metric.Histogram) != (f.Digest != nil) {
			t.Errorf("forwarded %v with digest %v, sketch %v", f.Kind, f.Digest != nil, f.Dist != nil)
		}
	}
	if kinds[metric.Histogram] != 1 || kinds[metric.Distribution] != 2 {
		t.Errorf("forwarded kinds %v, want 1 histogram and 2 distributions", kinds)
	}
}

// TestScoping: what each kind and magic tag flushes here and what goes to
// the global tier (docs/output.md); the root of the tier takes the forwarded
// state itself (package aggregate/global), so every instance splits alike.
func TestScoping(t *testing.T) {
	cases := []struct {
		line    string
		local   []string // point names
		forward []string // forward keys
	}{
		{"c:1|c|#t:1", []string{"c"}, nil},
		{"c:1|c|#t:1,veneurglobalonly", nil, []string{"counter|c|region:x,t:1"}},
		{"c:1|c|#veneurlocalonly,t:1", []string{"c"}, nil},
		{"g:1|g|#t:1", []string{"g"}, nil},
		{"g:1|g|#veneurglobalonly,t:1", nil, []string{"gauge|g|region:x,t:1"}},
		{"h:1|h|#t:1", []string{"h.count", "h.max", "h.median", "h.min"}, []string{"histogram|h|region:x,t:1"}},
		{"h:1|h|#t:1,veneurlocalonly", []string{"h.count", "h.max", "h.median", "h.min", "h.50percentile"}, nil},
		{"t:1|ms|#t:1,veneurglobalonly", []string{"t.count", "t.max", "t.median", "t.min"}, []string{"histogram|t|region:x,t:1"}},
		{"d:1|d|#t:1", []string{"d.count", "d.max", "d.median", "d.min"}, []string{"distribution|d|region:x,t:1"}},
		{"s:m|s|#t:1", nil, []string{"set|s|region:x,t:1"}},
		{"s:m|s|#t:1,veneurlocalonly", []string{"s"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			a := newTestAggregator(t, Config{
				Percentiles: metric.MustPercentiles(0.5),
				Aggregates:  []Aggregate{AggMin, AggMax, AggCount, AggMedian},
				ExtendTags:  []string{"region:x"},
			})
			a.Push(parseTestLines(t, tc.line))
			got := a.Flush(testNow, time.Second)
			var names, keys []string
			for _, p := range got.Points {
				names = append(names, p.Name)
				if !slices.Equal(p.Tags, []string{"region:x", "t:1"}) || p.Host != testHost {
					t.Errorf("point %s: tags %q host %q, want [region:x t:1] host %q", p.Name, p.Tags, p.Host, testHost)
				}
			}
			for _, f := range got.Forward {
				keys = append(keys, f.Key)
				// extend_tags are part of the identity, forwarded too.
				if !slices.Equal(f.Tags, []string{"region:x", "t:1"}) {
					t.Errorf("forward %s: tags %q, want [region:x t:1]", f.Key, f.Tags)
				}
				if f.Name != string(parseTestLine(t, tc.line).Name) {
					t.Errorf("forward %s: name %q", f.Key, f.Name)
				}
			}
			slices.Sort(names)
			want := slices.Sorted(slices.Values(tc.local))
			if !slices.Equal(names, want) {
				t.Errorf("local points %q, want %q", names, want)
			}
			if !slices.Equal(keys, tc.forward) {
				t.Errorf("forwarded %q, want %q", keys, tc.forward)
			}
		})
	}
}

func TestForwardedState(t *testing.T) {
	a := newTestAggregator(t, Config{Aggregates: []Aggregate{AggCount}})
	a.Push(parseTestLines(t,
		"c:1|c|@0.1|#veneurglobalonly",
		"c:2|c|#veneurglobalonly",
		"g:5|g|#veneurglobalonly",
		"g:-6|g|#veneurglobalonly",
		"h:1|h|@0.5",
		"h:3|h",
		"s:a|s",
		"s:b|s",
	))
	got := a.Flush(testNow, time.Second)
	slices.SortFunc(got.Forward, func(x, y metric.Series) int { return cmp.Compare(x.Key, y.Key) })
	if len(got.Forward) != 4 {
		t.Fatalf("forwarded %d series, want 4: %+v", len(got.Forward), got.Forward)
	}
	c, g, h, s := got.Forward[0], got.Forward[1], got.Forward[2], got.Forward[3]
	if c.Key != "counter|c|" || c.Kind != metric.Counter || c.Value != 12 {
		t.Errorf("counter: %+v, want key counter|c| value 12", c)
	}
	if g.Key != "gauge|g|" || g.Kind != metric.Gauge || g.Value != -6 {
		t.Errorf("gauge: %+v, want key gauge|g| value -6", g)
	}
	if h.Key != "histogram|h|" || h.Digest == nil || h.Digest.Count() != 3 {
		t.Errorf("histogram: %+v, want a digest of weight 3", h)
	}
	if s.Key != "set|s|" || s.Set == nil || s.Set.Estimate() != 2 {
		t.Errorf("set: %+v, want a sketch of 2", s)
	}
	assertPoints(t, got.Points, []metric.Point{rate("h.count", 3, time.Second)})
}

func TestEmptySeriesAreNotFlushed(t *testing.T) {
	a := newTestAggregator(t, Config{Aggregates: []Aggregate{AggCount}, Percentiles: metric.MustPercentiles(0.99)})
	a.Push(parseTestLines(t, "a:1|c", "b:1|g", "c:1|h", "d:x|s"))
	if got := a.Flush(testNow, time.Second); len(got.Points) != 3 || len(got.Forward) != 2 {
		t.Fatalf("first interval: %d points and %d forwarded, want 3 and 2:\n%s", len(got.Points), len(got.Forward), pointtest.Format(got.Points))
	}
	if got := a.Flush(testNow, time.Second); len(got.Points) != 0 || len(got.Forward) != 0 {
		t.Fatalf("empty interval flushed:\n%s", pointtest.Format(got.Points))
	}
	a.Push(parseTestLines(t, "a:2|c"))
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{rate("a", 2, time.Second)})
}

func TestGaugeLastValueWins(t *testing.T) {
	a := newTestAggregator(t, Config{Shards: 8})
	a.Push(parseTestLines(t, "g:1|g", "g:-4|g", "h:9|g"))
	a.Push(parseTestLines(t, "h:0.5|g", "g:-2.5|g"))
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{gauge("g", -2.5), gauge("h", 0.5)})
}

func TestExtendTags(t *testing.T) {
	a := newTestAggregator(t, Config{ExtendTags: []string{"zone:z1", "env:prod", "", "env:prod", "team"}})
	a.Push(parseTestLines(t,
		"x:1|g|#env:dev,app:web,team:core,b",
		"y:1|g",
	))
	a.PushEvents(
		[]metric.Event{{Title: "deploy", Tags: []string{"team:a", "k:v"}}, {Title: "other", Hostname: "h2", HostSet: true}, {Title: "nohost", HostSet: true}},
		[]metric.ServiceCheck{{Name: "db", Status: metric.CheckCritical, Tags: []string{"env:dev"}}},
	)
	got := a.Flush(testNow, time.Second)
	// An extend tag replaces a series tag with the same key.
	assertPoints(t, got.Points, []metric.Point{
		gauge("x", 1, "app:web", "b", "env:prod", "team", "zone:z1"),
		gauge("y", 1, "env:prod", "team", "zone:z1"),
	})
	wantEvents := []metric.Event{
		{Title: "deploy", Hostname: testHost, Tags: []string{"env:prod", "k:v", "team", "zone:z1"}},
		{Title: "other", Hostname: "h2", HostSet: true, Tags: []string{"env:prod", "team", "zone:z1"}},
		{Title: "nohost", HostSet: true, Tags: []string{"env:prod", "team", "zone:z1"}}, // "host:" with no value
	}
	if !reflect.DeepEqual(got.Events, wantEvents) {
		t.Errorf("events:\ngot  %+v\nwant %+v", got.Events, wantEvents)
	}
	wantChecks := []metric.ServiceCheck{{Name: "db", Status: metric.CheckCritical, Hostname: testHost, Tags: []string{"env:prod", "team", "zone:z1"}}}
	if !reflect.DeepEqual(got.Checks, wantChecks) {
		t.Errorf("checks:\ngot  %+v\nwant %+v", got.Checks, wantChecks)
	}
	if again := a.Flush(testNow, time.Second); len(again.Events)+len(again.Checks) != 0 {
		t.Errorf("events flushed twice: %+v %+v", again.Events, again.Checks)
	}
}

// TestExtendTagsBeforeIdentity: the configured tag replaces a line's tag
// of the same key before the series is identified, so lines that would
// flush under the same tags are one series, not three points that
// overwrite each other at the intake (Veneur's rule).
func TestExtendTagsBeforeIdentity(t *testing.T) {
	a := newTestAggregator(t, Config{ExtendTags: []string{"env:test"}})
	a.Push(parseTestLines(t, "x:1|c|#env:dev", "x:2|c|#env:test", "x:4|c"))
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{rate("x", 7, time.Second, "env:test")})
}

// TestOriginDetectionTagsAreConsumed: dd.internal.* tags (datadog-go adds
// dd.internal.entity_id to every line when DD_ENTITY_ID is set) are not
// part of a series, nor sent on.
func TestOriginDetectionTagsAreConsumed(t *testing.T) {
	a := newTestAggregator(t, Config{})
	a.Push(parseTestLines(t,
		"x:1|c|#env:dev,dd.internal.entity_id:pod-1",
		"x:2|c|#dd.internal.card:high,env:dev,dd.internal.entity_id:pod-2",
		"x:4|c|#env:dev",
		"y:1|c|#dd.internal.entity_id:pod-1",
	))
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{
		rate("x", 7, time.Second, "env:dev"),
		rate("y", 1, time.Second),
	})
}

func TestPushEventsCopiesTags(t *testing.T) {
	a := newTestAggregator(t, Config{})
	tags := []string{"b", "a"}
	a.PushEvents([]metric.Event{{Title: "t", Tags: tags}}, nil)
	tags[0] = "reused"
	got := a.Flush(testNow, time.Second)
	if want := []string{"a", "b"}; len(got.Events) != 1 || !slices.Equal(got.Events[0].Tags, want) {
		t.Errorf("events %+v, want one with tags %q", got.Events, want)
	}
}

func TestPushCopiesWhatItKeeps(t *testing.T) {
	a := newTestAggregator(t, Config{})
	buf := []byte("reqs#env:prod,a:1")
	a.Push([]metric.Sample{{Name: buf[:4], Tags: buf[5:], Value: 1, Rate: 1, Kind: metric.Counter}})
	copy(buf, "XXXXXXXXXXXXXXXXX") // the listener reuses its read buffer
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{rate("reqs", 1, time.Second, "a:1", "env:prod")})
}

func TestBadSamplesAreDropped(t *testing.T) {
	a := newTestAggregator(t, Config{})
	a.Push([]metric.Sample{
		{Name: []byte("x"), Value: math.NaN(), Rate: 1, Kind: metric.Counter},
		{Name: []byte("x"), Value: math.Inf(1), Rate: 1, Kind: metric.Gauge},
		{Name: []byte("x"), Value: 1, Rate: 1, Kind: metric.KindInvalid},
		{Name: []byte("x"), Value: 1, Rate: 1, Kind: metric.KindMax + 1},
		{Name: nil, Value: 1, Rate: 1, Kind: metric.Counter},
		{Name: []byte("x"), Value: 1, Rate: 0, Kind: metric.Counter}, // invalid rate counts as 1
	})
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{rate("x", 1, time.Second)})
}

func TestParseAggregate(t *testing.T) {
	for _, name := range []string{"min", "max", "count", "sum", "avg", "median"} {
		g, err := ParseAggregate(name)
		if err != nil || g.String() != name {
			t.Errorf("ParseAggregate(%q) = %v, %v", name, g, err)
		}
		text, err := g.MarshalText()
		if err != nil || string(text) != name {
			t.Errorf("MarshalText(%v) = %q, %v", g, text, err)
		}
	}
	for _, bad := range []string{"", "mean", "Min", "p99"} {
		_, err := ParseAggregate(bad)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseAggregate(%q) error = %v, want one naming the value", bad, err)
		}
	}
	var g Aggregate
	if err := g.UnmarshalText([]byte("avg")); err != nil || g != AggAvg {
		t.Errorf("UnmarshalText(avg) = %v, %v", g, err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bad aggregate", Config{Aggregates: []Aggregate{AggMin | AggMax}}, "aggregate 3"},
		{"too many shards", Config{Shards: 1 << 20}, "shards"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: New error = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
	for _, tc := range []struct{ shards, want int }{{0, shards.Default}, {-3, shards.Default}, {1, 1}, {2, 2}, {3, 4}, {5, 8}, {64, 64}} {
		a, err := New(Config{Shards: tc.shards})
		if err != nil || len(a.shards) != tc.want {
			t.Errorf("Shards %d: got %d shards (%v), want %d", tc.shards, len(a.shards), err, tc.want)
		}
	}
}

// TestConcurrentPushAndFlush pushes from many goroutines while another
// flushes: no sample may be lost or counted twice across the interval
// swaps. Run it with -race.
func TestConcurrentPushAndFlush(t *testing.T) {
	a := newTestAggregator(t, Config{Shards: 4, Aggregates: []Aggregate{AggCount}})
	const (
		pushers = 8
		batches = 300
	)
	var pushed sync.WaitGroup
	var wantCounter, wantCount float64
	for g := range pushers {
		rng := rand.New(rand.NewPCG(uint64(g), 1))
		batchesOf := make([][]metric.Sample, batches)
		for b := range batchesOf {
			for range 50 {
				series := rng.IntN(40)
				v := float64(rng.IntN(5))
				line := fmt.Sprintf("c%d:%g|c|#g:%d,s:%d", series%7, v, g%3, series)
				if rng.IntN(4) == 0 {
					line = fmt.Sprintf("h%d:%g|h|@0.5|#s:%d", series%5, v, series)
					wantCount += 2
				} else {
					wantCounter += v
				}
				batchesOf[b] = append(batchesOf[b], parseTestLine(t, line))
			}
		}
		pushed.Add(1)
		go func() {
			defer pushed.Done()
			for _, batch := range batchesOf {
				a.Push(batch)
			}
		}()
	}

	var gotCounter, gotCount float64
	var flushes int
	collect := func(f Flushed) {
		flushes++
		for _, p := range f.Points {
			if strings.HasSuffix(p.Name, ".count") {
				gotCount += p.Value
			} else {
				gotCounter += p.Value
			}
		}
	}
	done := make(chan struct{})
	go func() { pushed.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			collect(a.Flush(testNow, time.Second))
		}
	}
	collect(a.Flush(testNow, time.Second))
	if gotCounter != wantCounter || gotCount != wantCount {
		t.Errorf("over %d flushes: counter total %v, want %v; histogram count %v, want %v",
			flushes, gotCounter, wantCounter, gotCount, wantCount)
	}
}

// TestPushAllocatesNothingInSteadyState pins the hot path: once its series
// exist, a batch of counters and gauges costs no allocation at all, in
// this interval and the next ones (series are reused across intervals).
// Histograms are left out because the t-digest allocates as it grows and
// recompresses; sets because the HyperLogLog's sparse form grows too.
func TestPushAllocatesNothingInSteadyState(t *testing.T) {
	a := newTestAggregator(t, Config{Shards: 4})
	var batch []metric.Sample
	for i := range 200 {
		kind := "c"
		if i%3 == 0 {
			kind = "g"
		}
		batch = append(batch, parseTestLine(t, fmt.Sprintf("m%d:%d|%s|@0.5|#env:prod,host:h%d,svc:s%d,veneurlocalonly", i%25, i, kind, i%3, i%4)))
	}
	w := a.NewWriter()
	w.Push(batch) // create the series
	if allocs := testing.AllocsPerRun(100, func() { w.Push(batch) }); allocs != 0 {
		t.Errorf("Push of existing series: %v allocs per batch, want 0", allocs)
	}
	a.Flush(testNow, time.Second)
	w.Push(batch) // the same series in the next interval
	if allocs := testing.AllocsPerRun(100, func() { w.Push(batch) }); allocs != 0 {
		t.Errorf("Push in the next interval: %v allocs per batch, want 0", allocs)
	}
}

func TestFlushedStats(t *testing.T) {
	reg := telemetry.NewRegistry()
	a := newTestAggregator(t, Config{Stats: reg})
	a.Push(parseTestLines(t, "a:1|c", "b:1|c|#x", "c:1|h", "d:1|s"))
	a.Push([]metric.Sample{{Name: []byte("nan"), Value: math.NaN(), Kind: metric.Gauge, Rate: 1}})
	a.Flush(testNow, time.Second)
	for _, c := range []struct {
		name, tag string
		want      uint64
	}{
		{"flush.series", "kind:counter", 2},
		{"flush.series", "kind:histogram", 1},
		{"flush.series", "kind:set", 1},
		{"flush.series", "kind:gauge", 0},
		{"aggregate.samples_dropped", "", 1},
	} {
		var tags []string
		if c.tag != "" {
			tags = []string{c.tag}
		}
		if got := reg.Counter(c.name, tags...).Load(); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.name, c.tag, got, c.want)
		}
	}
}

// TestHashCollisionsKeepSeriesApart forces distinct keys onto one 64-bit
// hash, which maphash makes astronomically rare but not impossible.
func TestHashCollisionsKeepSeriesApart(t *testing.T) {
	a := newTestAggregator(t, Config{})
	w := a.NewWriter()
	samples := parseTestLines(t, "x:1|c", "y:2|c", "x:3|c|#t", "x:4|c", "y:1|g")
	// File every series in the Writer as if its canonical key hashed to
	// 42: one shard, one hash chain.
	w.table.reserve(len(samples))
	for i := range samples {
		s := &samples[i]
		raw := appendRawKey(nil, s)
		rawHash := maphash.Bytes(a.seed, raw)
		if w.table.find(rawHash, raw) >= 0 {
			continue
		}
		id := w.res.resolve(s.Kind, s.Name, s.Tags)
		w.cold = append(w.cold, coldSeries{hash: 42, rawHash: rawHash, meta: a.newMeta(id)})
		w.table.insert(rawHash, raw, tableEntry{slot: noSlot, shard: uint32(42 & a.shardMask), ref: int32(len(w.cold) - 1)})
	}
	w.Push(samples)
	if got := len(a.shards[42&a.shardMask].index); got != 1 {
		t.Fatalf("the series sit under %d hashes, want 1 (the test's collision)", got)
	}
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{
		rate("x", 5, time.Second),
		rate("y", 2, time.Second),
		rate("x", 3, time.Second, "t"),
		gauge("y", 1),
	})
}

// TestPointTagsDoNotAlias checks that a sink appending to one point's tags
// (they come from one shared array) cannot change another point's.
func TestPointTagsDoNotAlias(t *testing.T) {
	a := newTestAggregator(t, Config{ExtendTags: []string{"e:1"}, Aggregates: []Aggregate{AggMin, AggMax}})
	a.Push(parseTestLines(t, "a:1|g|#x", "b:1|g|#y", "h:1|h|#z"))
	points := a.Flush(testNow, time.Second).Points
	pointtest.Sort(points)
	for i := range points {
		_ = append(points[i].Tags, "added")
	}
	want := [][]string{{"e:1", "x"}, {"e:1", "y"}, {"e:1", "z"}, {"e:1", "z"}}
	for i, p := range points {
		if !slices.Equal(p.Tags, want[i]) {
			t.Errorf("%s tags %q, want %q", p.Name, p.Tags, want[i])
		}
	}
}

// TestSeriesKeyIgnoresTagOrder shuffles random tag lists, long ones
// included, with duplicates, empty tags, host: and magic tags mixed in: every
// order must give the same key, and the series must get the sorted set of
// plain tags.
func TestSeriesKeyIgnoresTagOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := &resolver{hostname: testHost}
	for round := range 300 {
		n := rng.IntN(25)
		var tags []string
		for range n {
			tags = append(tags, fmt.Sprintf("k%d:v%d", rng.IntN(12), rng.IntN(3)))
		}
		wantTags := slices.Compact(slices.Sorted(slices.Values(tags)))
		if len(wantTags) == 0 {
			wantTags = nil
		}
		extras := []string{"", "host:h9", "veneurglobalonly", "dd.internal.entity_id:abc"}
		all := append(slices.Clone(tags), extras[:rng.IntN(len(extras)+1)]...)
		var first identity
		for k := range 5 {
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			raw := strings.Join(all, ",")
			id := r.resolve(metric.Histogram, []byte("m"), []byte(raw))
			if k == 0 {
				first = id
				if !slices.Equal(id.tags, wantTags) || id.name != "m" || id.kind != metric.Histogram {
					t.Fatalf("round %d: %q resolves to name %q kind %v tags %q, want tags %q", round, raw, id.name, id.kind, id.tags, wantTags)
				}
			} else if id.key != first.key {
				t.Fatalf("round %d: %q gives key %q, another order gave %q", round, raw, id.key, first.key)
			}
		}
	}
}

// TestRecycledPointsAreRefilled: points handed back by Recycle are the
// array the next Flush fills, with that interval's values, and a spare
// too small for the interval is not used.
func TestRecycledPointsAreRefilled(t *testing.T) {
	a, err := New(Config{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	push := func(n int, v float64) {
		var batch []metric.Sample
		for i := range n {
			batch = append(batch, metric.Sample{Name: []byte("c"), Tags: fmt.Appendf(nil, "i:%d", i), Value: v, Rate: 1, Kind: metric.Gauge})
		}
		a.Push(batch)
	}
	push(10, 1)
	first := a.Flush(time.Unix(100, 0), time.Second).Points
	array := &first[:1][0]
	a.Recycle(first)
	push(10, 2)
	second := a.Flush(time.Unix(101, 0), time.Second).Points
	if len(second) != 10 || &second[0] != array {
		t.Fatalf("second flush: %d points, reused array %v; want 10 in the recycled array", len(second), &second[0] == array)
	}
	for _, p := range second {
		if p.Value != 2 || p.Timestamp != 101 {
			t.Errorf("refilled point %+v, want value 2 at 101", p)
		}
	}
	a.Recycle(second)
	push(cap(second)+1, 3) // more series than the spare holds
	third := a.Flush(time.Unix(102, 0), time.Second).Points
	if len(third) != cap(second)+1 || &third[0] == array {
		t.Fatalf("third flush: %d points in the spare too small for them", len(third))
	}
}

// agentPercentile is the Datadog Agent's histogram percentile (its
// pkg/metrics histogram.go): the value at which the cumulative weight first
// exceeds (P·count-1)/100, integer division, P in whole percent.
func agentPercentile(sorted []float64, pct int) float64 {
	target := (pct*len(sorted) - 1) / 100
	return sorted[target]
}

// The Agent's histogram profile (histogram_aggregates: [max, median, avg,
// count], histogram_percentiles: [0.95]): every value with this host, at
// once, with the Agent's names and types, equal to what the Agent computes;
// the series still forwards its digest for the fleet percentiles.
func TestAgentHistogramProfile(t *testing.T) {
	a := newTestAggregator(t, Config{
		Aggregates:      []Aggregate{AggMax, AggMedian, AggAvg, AggCount},
		HostPercentiles: metric.MustPercentiles(0.95),
		Percentiles:     metric.MustPercentiles(0.5),
	})
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 20, 64} {
		values := make([]float64, n)
		lines := make([]string, n)
		sum := 0.0
		for i := range values {
			values[i] = float64(rng.IntN(1000)) / 8
			sum += values[i]
			lines[i] = fmt.Sprintf("lat:%v|h|#env:prod", values[i])
		}
		a.Push(parseTestLines(t, lines...))
		got := a.Flush(testNow, 10*time.Second)
		slices.Sort(values)
		assertPoints(t, got.Points, []metric.Point{
			gauge("lat.max", values[n-1], "env:prod"),
			gauge("lat.median", agentPercentile(values, 50), "env:prod"),
			gauge("lat.avg", sum/float64(n), "env:prod"),
			rate("lat.count", float64(n)/10, 10*time.Second, "env:prod"),
			gauge("lat.95percentile", agentPercentile(values, 95), "env:prod"),
		})
		if len(got.Forward) != 1 || got.Forward[0].Digest.Count() != float64(n) {
			t.Fatalf("n=%d: forwarded %+v", n, got.Forward)
		}
	}
}

func TestHostPercentileAlsoFleetIsRefused(t *testing.T) {
	if _, err := New(Config{Percentiles: metric.MustPercentiles(0.95), HostPercentiles: metric.MustPercentiles(0.95)}); err == nil {
		t.Fatal("0.95 per host and fleet-wide: two series of one name, accepted")
	}
}
