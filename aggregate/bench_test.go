package aggregate

// Reproduce, and compare runs with benchstat:
//
//	go test ./aggregate -run '^$' -bench . -benchmem -count 6

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/cputime"
	"github.com/veneur-lite/veneur-lite/metric"
)

const (
	benchSeries    = 1000 // distinct series the batches cycle over
	benchBatchSize = 20   // samples per Push, as one datagram of a busy client
	benchBatches   = 1024 // distinct prebuilt batches, so caches see variety
)

// benchBatches builds batches of samples of the given kinds, each with three
// tags in client order (not sorted), spread over benchSeries series.
func makeBenchBatches(kinds []metric.Kind) [][]metric.Sample {
	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([][]metric.Sample, benchBatches)
	for b := range batches {
		batch := make([]metric.Sample, benchBatchSize)
		for i := range batch {
			id := rng.IntN(benchSeries)
			kind := kinds[id%len(kinds)]
			s := metric.Sample{
				Name:  fmt.Appendf(nil, "app.requests.m%d", id%50),
				Tags:  fmt.Appendf(nil, "service:svc-%d,env:production,az:us-east-1%c", id/50, 'a'+byte(id%3)),
				Value: math.Exp(3 + rng.NormFloat64()),
				Rate:  1,
				Kind:  kind,
			}
			if kind == metric.Set {
				s.SetMember = fmt.Appendf(nil, "user-%d", rng.IntN(5000))
			}
			batch[i] = s
		}
		batches[b] = batch
	}
	return batches
}

func BenchmarkPush(b *testing.B) {
	for _, bc := range []struct {
		name  string
		kinds []metric.Kind
	}{
		{"counter", []metric.Kind{metric.Counter}},
		{"gauge", []metric.Kind{metric.Gauge}},
		{"histogram", []metric.Kind{metric.Histogram}},
		{"set", []metric.Kind{metric.Set}},
		{"mixed", []metric.Kind{metric.Counter, metric.Counter, metric.Counter, metric.Gauge, metric.Gauge, metric.Histogram, metric.Histogram, metric.Set}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, err := New(Config{Hostname: "bench-host", Percentiles: metric.MustPercentiles(0.5, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
			if err != nil {
				b.Fatal(err)
			}
			w := a.NewWriter()
			batches := makeBenchBatches(bc.kinds)
			for _, batch := range batches { // create the series: measure the steady state
				w.Push(batch)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.Push(batches[i%len(batches)])
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatchSize), "ns/sample")
		})
	}
}

// BenchmarkPushInterval is the all-in cost per sample of an interval,
// each flush timed too. With
// benchBatches batches per interval, each series sees about 20 samples per
// interval, so digests stay small, unlike in BenchmarkPush/histogram where
// they grow for the whole run.
func BenchmarkPushInterval(b *testing.B) {
	for _, bc := range []struct {
		name  string
		kinds []metric.Kind
	}{
		{"counter", []metric.Kind{metric.Counter}},
		{"histogram", []metric.Kind{metric.Histogram}},
		{"mixed", []metric.Kind{metric.Counter, metric.Counter, metric.Counter, metric.Gauge, metric.Gauge, metric.Histogram, metric.Histogram, metric.Set}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, err := New(Config{Hostname: "bench-host", Percentiles: metric.MustPercentiles(0.5, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
			if err != nil {
				b.Fatal(err)
			}
			w := a.NewWriter()
			batches := makeBenchBatches(bc.kinds)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.Push(batches[i%len(batches)])
				i++
				if i%len(batches) == 0 {
					a.Flush(time.Now(), 10*time.Second)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatchSize), "ns/sample")
		})
	}
}

// BenchmarkPushParallel is BenchmarkPush/mixed from every P at once: the
// cost of shard lock contention.
func BenchmarkPushParallel(b *testing.B) {
	shards, _ := strconv.Atoi(os.Getenv("BENCH_SHARDS")) // exploring the shard count; 0: the default
	a, err := New(Config{Shards: shards, Hostname: "bench-host", Percentiles: metric.MustPercentiles(0.5, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
	if err != nil {
		b.Fatal(err)
	}
	batches := makeBenchBatches([]metric.Kind{metric.Counter, metric.Counter, metric.Counter, metric.Gauge, metric.Gauge, metric.Histogram, metric.Histogram, metric.Set})
	for _, batch := range batches {
		a.Push(batch)
	}
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := a.NewWriter() // one per reader, as the listeners do
		i := rand.IntN(len(batches))
		for pb.Next() {
			w.Push(batches[i%len(batches)])
			i++
		}
	})
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*benchBatchSize), "ns/sample")
}

// BenchmarkFlush flushes 100k series, each with a few samples.
func BenchmarkFlush(b *testing.B) {
	const series = 100_000
	for _, bc := range []struct {
		name string
		kind metric.Kind
	}{
		{"counter", metric.Counter},
		{"histogram", metric.Histogram},
	} {
		b.Run(fmt.Sprintf("%s/series=%d", bc.name, series), func(b *testing.B) {
			a, err := New(Config{
				Hostname: "bench-host", ExtendTags: []string{"region:us-east-1"},
				Percentiles: metric.MustPercentiles(0.5, 0.75, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount},
			})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]metric.Sample, 0, 500)
			fill := func() {
				for id := range series {
					for v := range 3 {
						batch = append(batch, metric.Sample{
							Name:  fmt.Appendf(nil, "app.m%d", id%100),
							Tags:  fmt.Appendf(nil, "service:svc-%d,env:production", id/100),
							Value: float64(v), Rate: 1, Kind: bc.kind,
						})
					}
					if len(batch) >= cap(batch)-3 {
						a.Push(batch)
						batch = batch[:0]
					}
				}
				a.Push(batch)
				batch = batch[:0]
			}
			b.ReportAllocs()
			var points int
			for b.Loop() {
				b.StopTimer()
				fill()
				runtime.GC() // don't charge fill's garbage to Flush
				b.StartTimer()
				points = len(a.Flush(time.Now(), 10*time.Second).Points)
			}
			b.ReportMetric(float64(points), "points")
		})
	}
}

// BenchmarkResolve is what a Writer pays once per new series: split,
// classify and sort three tags, apply the extend tags, build the key.
func BenchmarkResolve(b *testing.B) {
	for _, bc := range []struct{ name, tags string }{
		{"sorted", "az:us-east-1a,env:production,service:svc-7"},
		{"unsorted", "service:svc-7,env:production,az:us-east-1a"},
		{"magic", "service:svc-7,host:h1,env:production,veneurlocalonly,az:us-east-1a"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &resolver{hostname: "bench-host"}
			name, tags := []byte("app.requests.m7"), []byte(bc.tags)
			b.ReportAllocs()
			for b.Loop() {
				_ = r.resolve(metric.Counter, name, tags)
			}
		})
	}
}

// BenchmarkHistogramInterval is the all-in CPU of histogram samples as a
// UDP reader pushes them under load (a batch of 32 datagrams of 20 lines,
// what one recvmmsg returns), flush included: 1,000 series, ~40 samples
// each per interval, flushed as a local flushes them (aggregates here, the
// digest forwarded). cpu-ns/sample is the process's CPU (the garbage
// collector's included) per sample, the "≤ 120 ns of CPU per sample,
// amortised" figure; batch=20 is one datagram per Push, the worst case.
//
//	go test ./aggregate -run '^$' -bench HistogramInterval -benchmem -count 6
func BenchmarkHistogramInterval(b *testing.B) {
	shards, _ := strconv.Atoi(os.Getenv("BENCH_SHARDS")) // exploring the shard count; 0: the default
	for _, batchSize := range []int{20, 640} {
		b.Run(fmt.Sprintf("batch=%d", batchSize), func(b *testing.B) {
			a, err := New(Config{Shards: shards, Hostname: "bench-host", Percentiles: metric.MustPercentiles(0.5, 0.75, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
			if err != nil {
				b.Fatal(err)
			}
			w := a.NewWriter()
			rng := rand.New(rand.NewPCG(7, 8))
			const perInterval = 40_960 // ~40 samples per series
			samples := make([]metric.Sample, perInterval)
			for i := range samples {
				id := rng.IntN(benchSeries)
				samples[i] = metric.Sample{
					Name:  fmt.Appendf(nil, "app.latency.m%d", id%50),
					Tags:  fmt.Appendf(nil, "service:svc-%d,env:production,az:us-east-1%c", id/50, 'a'+byte(id%3)),
					Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: metric.Histogram,
				}
			}
			b.ReportAllocs()
			pushed := 0
			now := time.Unix(1_700_000_000, 0)
			cpu := cputime.Process() // the collector's work on the other core counts too
			for b.Loop() {
				off := pushed % perInterval
				w.Push(samples[off : off+batchSize])
				pushed += batchSize
				if pushed%perInterval == 0 {
					now = now.Add(10 * time.Second)
					a.Recycle(a.Flush(now, 10*time.Second).Points) // as the flusher does
				}
			}
			cpu = cputime.Process() - cpu
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pushed), "ns/sample")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(pushed), "cpu-ns/sample")
			}
		})
	}
}

// BenchmarkLiveSeriesMemory reports the heap per live series of 10⁵
// histogram (h) or distribution (d: t-digest and Agent sketch) series with
// 20 lognormal samples each in the interval, names and tags included.
//
//	go test ./aggregate -run '^$' -bench LiveSeriesMemory -benchtime 1x
func BenchmarkLiveSeriesMemory(b *testing.B) {
	const series = 100_000
	for _, kind := range []metric.Kind{metric.Histogram, metric.Distribution} {
		b.Run(kind.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			samples := make([]metric.Sample, 0, 20*series)
			for i := range series {
				name := fmt.Appendf(nil, "app.latency.m%d", i%50)
				tags := fmt.Appendf(nil, "service:svc-%d,env:production", i/50)
				for range 20 {
					samples = append(samples, metric.Sample{Name: name, Tags: tags, Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: kind})
				}
			}
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				a, err := New(Config{Hostname: "bench-host", Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
				if err != nil {
					b.Fatal(err)
				}
				w := a.NewWriter()
				for off := 0; off < len(samples); off += 1000 {
					w.Push(samples[off:min(off+1000, len(samples))])
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/series, "B/series")
				runtime.KeepAlive(a)
				runtime.KeepAlive(w)
			}
		})
	}
}

// BenchmarkPushSeries is the steady-state cost of a sample when the
// series outgrow the caches: the mixed kinds over 1,000 or 100,000 series
// (three tags in client order), in random order, pushed in batches of one
// datagram (20) or of one UDP read (640, 32 datagrams). Each batch's
// name and tag bytes lie together in one buffer, as in a read buffer, so
// that the figure is the lookups' and the updates' and not the samples'.
//
//	go test ./aggregate -run '^$' -bench PushSeries -benchmem -count 6
func BenchmarkPushSeries(b *testing.B) {
	kinds := []metric.Kind{metric.Counter, metric.Counter, metric.Counter, metric.Gauge, metric.Gauge, metric.Histogram, metric.Histogram, metric.Set}
	for _, series := range []int{1000, 100_000} {
		const poolSamples = 1 << 18
		rng := rand.New(rand.NewPCG(3, uint64(series)))
		samples := make([]metric.Sample, poolSamples)
		buf := make([]byte, 0, poolSamples*72)
		for i := range samples {
			id := rng.IntN(series)
			kind := kinds[id%len(kinds)]
			at := len(buf)
			buf = fmt.Appendf(buf, "app.requests.m%d", id%1000)
			nameEnd := len(buf)
			buf = fmt.Appendf(buf, "service:svc-%d,env:production,az:us-east-1%c", id/1000, 'a'+byte(id%3))
			samples[i] = metric.Sample{
				Name: buf[at:nameEnd:nameEnd], Tags: buf[nameEnd:len(buf):len(buf)],
				Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: kind,
			}
			if kind == metric.Set {
				at := len(buf)
				buf = fmt.Appendf(buf, "user-%d", rng.IntN(5000))
				samples[i].SetMember = buf[at:len(buf):len(buf)]
			}
		}
		for _, batchSize := range []int{20, 640} {
			b.Run(fmt.Sprintf("series=%d/batch=%d", series, batchSize), func(b *testing.B) {
				a, err := New(Config{Hostname: "bench-host", Percentiles: metric.MustPercentiles(0.5, 0.99), Aggregates: []Aggregate{AggMin, AggMax, AggCount}})
				if err != nil {
					b.Fatal(err)
				}
				w := a.NewWriter()
				for off := 0; off < poolSamples; off += batchSize { // create the series: measure the steady state
					w.Push(samples[off:min(off+batchSize, poolSamples)])
				}
				b.ReportAllocs()
				pushed, off := 0, 0
				cpu := cputime.Process()
				for b.Loop() {
					if off+batchSize > poolSamples {
						off = 0
					}
					w.Push(samples[off : off+batchSize])
					off += batchSize
					pushed += batchSize
				}
				cpu = cputime.Process() - cpu
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pushed), "ns/sample")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(pushed), "cpu-ns/sample")
			})
		}
	}
}
