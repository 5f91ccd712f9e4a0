package datadog

import (
	"cmp"
	"context"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/DataDog/agent-payload/v5/gogen"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

func sketchOf(values ...float64) *agentsketch.Sketch {
	s := new(agentsketch.Sketch)
	for _, v := range values {
		s.Insert(v, 1)
	}
	return s
}

// The intake gets each sketch once, with the Agent's fields, in bodies of
// at most flush_max_per_body sketches; the points of d series are left out
// of the series (the sketch carries them), the others go as before.
func TestFlushSketches(t *testing.T) {
	for _, compression := range []string{"deflate", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			in, srv := newIntake(t, "v1", compression)
			s := newTestSink(t, srv.URL, func(c *Config) { c.Compression, c.FlushMaxPerBody = compression, 2 })
			weighted := new(agentsketch.Sketch)
			weighted.Insert(-2, 4) // @0.25
			weighted.Insert(0, 1)
			sketches := []metric.SketchPoint{
				{Name: "req.latency", Host: "web-1", Tags: []string{"env:prod"}, Timestamp: ts0, Sketch: sketchOf(1, 2, 2, 1000)},
				{Name: "req.latency", Host: "web-2", Tags: []string{"env:prod"}, Timestamp: ts0, Sketch: sketchOf(5)},
				{Name: "signed", Timestamp: ts0, Sketch: weighted},
			}
			points := []metric.Point{
				{Name: "req.latency.max", Host: "web-1", Value: 1000, Timestamp: ts0, Distribution: true},
				{Name: "plain", Host: "web-1", Value: 1, Timestamp: ts0},
			}
			if err := s.Flush(context.Background(), points); err != nil {
				t.Fatal(err)
			}
			if err := s.FlushSketches(context.Background(), sketches); err != nil {
				t.Fatal(err)
			}
			got, bodies := in.gotSketches()
			want := []gogen.SketchPayload_Sketch{
				{Metric: "req.latency", Host: "web-1", Tags: []string{"env:prod"}, Dogsketches: []gogen.SketchPayload_Sketch_Dogsketch{{
					Ts: ts0, Cnt: 4, Min: 1, Max: 1000, Avg: 251.25, Sum: 1005,
					K: []int32{1338, 1383, 1784}, N: []uint32{1, 2, 1}}}},
				{Metric: "req.latency", Host: "web-2", Tags: []string{"env:prod"}, Dogsketches: []gogen.SketchPayload_Sketch_Dogsketch{{
					Ts: ts0, Cnt: 1, Min: 5, Max: 5, Avg: 5, Sum: 5, K: []int32{1442}, N: []uint32{1}}}},
				{Metric: "signed", Dogsketches: []gogen.SketchPayload_Sketch_Dogsketch{{
					Ts: ts0, Cnt: 5, Min: -2, Max: 0, Avg: -1.6, Sum: -8, K: []int32{-1383, 0}, N: []uint32{4, 1}}}},
			}
			// Bodies go concurrently.
			slices.SortFunc(got, func(a, b gogen.SketchPayload_Sketch) int {
				return cmp.Compare(a.Metric+"|"+a.Host, b.Metric+"|"+b.Host)
			})
			slices.Sort(bodies)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("intake got\n%+v\nwant\n%+v", got, want)
			}
			if !slices.Equal(bodies, []int{1, 2}) {
				t.Errorf("sketches per body %v, want [1 2]", bodies)
			}
			series, _, _ := in.snapshot()
			if len(series) != 1 || series[0].Metric != "plain" {
				t.Errorf("series %+v, want only plain", series)
			}
			if s.counter("sink.sketches_sent") != 3 || s.counter("sink.requests", "endpoint:sketches", "status_class:2xx") != 2 {
				t.Errorf("sketches_sent %d, 2xx %d", s.counter("sink.sketches_sent"), s.counter("sink.requests", "endpoint:sketches", "status_class:2xx"))
			}
		})
	}
}

// A failing sketch intake is retried as the series are.
func TestFlushSketchesRetried(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	in.respond = func(path string, attempt int) (int, string) {
		if attempt == 1 {
			return 503, "busy"
		}
		return 202, "{}"
	}
	s := newTestSink(t, srv.URL, nil)
	if err := s.FlushSketches(context.Background(), []metric.SketchPoint{{Name: "x", Timestamp: ts0, Sketch: sketchOf(1)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := in.gotSketches(); len(got) != 1 || s.counter("sink.retries") != 1 {
		t.Fatalf("got %d sketches after %d retries", len(got), s.counter("sink.retries"))
	}
}

func benchSketches(n int) []metric.SketchPoint {
	out := make([]metric.SketchPoint, n)
	for i := range out {
		sk := new(agentsketch.Sketch)
		for j := range 20 {
			sk.Insert(math.Exp(float64((i*7+j*13)%50)/5), 1)
		}
		out[i] = metric.SketchPoint{Name: "bench.latency", Host: "web-" + strconv.Itoa(i%10),
			Tags: []string{"env:prod", "route:/r" + strconv.Itoa(i%100)}, Timestamp: ts0, Sketch: sk}
	}
	return out
}

// BenchmarkEncodeSketch is the protobuf encoding alone (sketches/s = 1e9 /
// ns/op); BenchmarkEncodeSketchCompressed adds deflate as sent.
//
//	go test -run '^$' -bench EncodeSketch -benchmem -count 6 ./sinks/datadog
func BenchmarkEncodeSketch(b *testing.B) {
	sks := benchSketches(1000)
	var enc sketchEncoder
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		enc.buf = enc.appendSketch(enc.buf[:0], &sks[i%len(sks)])
		i++
	}
	b.SetBytes(int64(len(enc.buf)))
}

func BenchmarkEncodeSketchCompressed(b *testing.B) {
	sks := benchSketches(1000)
	var enc sketchEncoder
	body := newBody("deflate")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%1000 == 0 {
			body.reset()
		}
		enc.buf = enc.appendSketch(enc.buf[:0], &sks[i%len(sks)])
		if err := body.write(enc.buf); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
