package global

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
)

// BenchmarkImport measures a global merging forwarded batches: each batch
// holds 1000 series (timer digests of 500 samples, sets of 200 members
// and veneurglobalonly counters in 2:1:1 proportion) from one of 8 hosts,
// all into one open interval. merges/s is series merged per second.
//
//	go test ./aggregate/global -run '^$' -bench BenchmarkImport -benchmem -count 6
func BenchmarkImport(b *testing.B) {
	const hosts, perBatch = 8, 1000
	rng := rand.New(rand.NewPCG(9, 9))
	batches := make([][]metric.Series, hosts)
	for h := range batches {
		local := newLocal(b, "h"+strconv.Itoa(h))
		var samples []metric.Sample
		for s := range perBatch {
			name := []byte("series" + strconv.Itoa(s))
			switch s % 4 {
			case 0, 1:
				for range 500 {
					samples = append(samples, metric.Sample{Name: name, Value: rng.ExpFloat64() * 100, Rate: 1, Kind: metric.Histogram})
				}
			case 2:
				for range 200 {
					samples = append(samples, metric.Sample{Name: name, SetMember: []byte(strconv.Itoa(rng.IntN(10_000))), Rate: 1, Kind: metric.Set})
				}
			case 3:
				samples = append(samples, metric.Sample{Name: name, Tags: []byte("veneurglobalonly"), Value: 1, Rate: 1, Kind: metric.Counter})
			}
		}
		local.Push(samples)
		batches[h] = local.Flush(t0, 10*time.Second).Forward
	}
	now := t0.Add(time.Second)
	global, err := New(Config{Interval: 10 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Import takes ownership of the sketches: hand it a fresh copy,
		// as wire.Decode would, made with the timer stopped.
		b.StopTimer()
		batch := cloneForward(batches[i%hosts])
		b.StartTimer()
		global.Import(t0, 10*time.Second, batch)
		i++
	}
	b.ReportMetric(float64(i*perBatch)/b.Elapsed().Seconds(), "merges/s")
}

// cloneForward deep-copies forwarded series: digests and sketches.
func cloneForward(series []metric.Series) []metric.Series {
	out := slices.Clone(series)
	for i := range out {
		if out[i].Digest != nil {
			d := new(sketch.Digest)
			d.Merge(out[i].Digest)
			out[i].Digest = d
		}
		if out[i].Set != nil {
			out[i].Set = out[i].Set.Clone()
		}
	}
	return out
}
