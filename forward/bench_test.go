package forward

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

// BenchmarkEncodeCompress measures what Forward spends per interval before
// the network: batching, wire encoding and zstd of 10k series, on one core
// (Forward spreads batches over MaxInFlight goroutines). It reports bytes
// per series before (raw) and after (zstd) compression, series per second,
// and the POSTs the series took.
//
//	go test ./forward/ -run '^$' -bench EncodeCompress -benchmem -count 6 | tee new.txt
//	benchstat new.txt
func BenchmarkEncodeCompress(b *testing.B) {
	const n = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	lognormal := func() float64 { return math.Exp(3 + rng.NormFloat64()) }
	timers := func(samples int) func(i int) metric.Series {
		return func(i int) metric.Series {
			values := make([]float64, samples)
			for j := range values {
				values[j] = lognormal()
			}
			return timerSeries(fmt.Sprintf("api.request.latency.%d", i), values...)
		}
	}
	sets := func(members int) func(i int) metric.Series {
		return func(i int) metric.Series {
			m := make([]string, members)
			for j := range m {
				m[j] = fmt.Sprintf("user-%d-%d", i, j)
			}
			return setSeries(fmt.Sprintf("api.unique_users.%d", i), m...)
		}
	}
	for _, bc := range []struct {
		name string
		make func(i int) metric.Series
	}{
		{"digest/10samples", timers(10)},
		{"digest/1000samples", timers(1000)},
		{"hll/10members", sets(10)},
		{"hll/2000members", sets(2000)}, // past the sparse threshold: dense
		{"counter", func(i int) metric.Series {
			return counterSeries(fmt.Sprintf("api.requests.%d", i), float64(i))
		}},
		{"mixed", func(i int) metric.Series {
			switch i % 10 {
			case 0:
				return sets(100)(i)
			case 1, 2:
				return counterSeries(fmt.Sprintf("api.requests.%d", i), float64(i))
			default:
				return timers(100)(i)
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			series := make([]metric.Series, n)
			for i := range series {
				series[i] = bc.make(i)
			}
			f := &Forwarder{cfg: Config{Interval: 10 * time.Second, Source: "bench-host", MaxBatchSeries: defaultMaxBatchSeries}, maxBatchBytes: defaultMaxBatchBytes}
			f.rawBufs.New = func() any { return new([]byte) }
			start := time.Unix(1_700_000_000, 0)
			p := pending{series: series, since: make([]time.Time, n)}
			v := newView(nil)
			var out outcome
			var raw, zs, posts int
			var body []byte
			b.ReportAllocs()
			for b.Loop() {
				raw, zs, posts = 0, 0, 0
				out.encodedSeries, out.encodedBytes = 0, 0
				for _, bt := range f.plan(v, p) {
					f.encodeParts(start, bt, &out, func(_ *batch, enc []byte) {
						body = encoder.EncodeAll(enc, body[:0])
						raw, zs, posts = raw+len(enc), zs+len(body), posts+1
					})
				}
				// As Forward does: later intervals' batches are sized by it.
				f.bytesPerSeries.Store(int64(out.encodedBytes / out.encodedSeries))
			}
			if out.encodeDropped > 0 {
				b.Fatalf("%d series failed to encode: %v", out.encodeDropped, out.lastErr)
			}
			b.ReportMetric(float64(raw)/n, "raw-B/series")
			b.ReportMetric(float64(zs)/n, "zstd-B/series")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
			b.ReportMetric(float64(posts), "posts")
		})
	}
}
