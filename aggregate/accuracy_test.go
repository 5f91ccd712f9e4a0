package aggregate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

// TestPercentileRankError checks the digest where users look: the value
// reported for percentile p must sit within 1% of rank of the exact p-th
// value of the data (a value error bound would mean little on a long tail).
func TestPercentileRankError(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(42, 7))
	values := make([]float64, n)
	for i := range values {
		values[i] = math.Exp(3 + 1.2*rng.NormFloat64()) // lognormal, latency-like
	}
	percentiles := []float64{0.5, 0.9, 0.99}

	for _, forwarding := range []bool{false, true} {
		a := newTestAggregator(t, Config{Shards: 2, Percentiles: metric.MustPercentiles(percentiles...)})
		tags := []byte("svc:api,veneurlocalonly") // percentiles flushed here
		if forwarding {
			tags = []byte("svc:api")
		}
		batch := make([]metric.Sample, 0, 500)
		for _, v := range values {
			batch = append(batch, metric.Sample{Name: []byte("lat"), Tags: tags, Value: v, Rate: 1, Kind: metric.Histogram})
			if len(batch) == cap(batch) {
				a.Push(batch)
				batch = batch[:0]
			}
		}
		a.Push(batch)
		flushed := a.Flush(testNow, time.Second)

		reported := map[float64]float64{}
		if forwarding { // the global computes them from the forwarded digest
			if len(flushed.Forward) != 1 {
				t.Fatalf("forwarded %d series, want 1", len(flushed.Forward))
			}
			for _, p := range percentiles {
				reported[p] = flushed.Forward[0].Digest.Quantile(p)
			}
		} else {
			for _, pt := range flushed.Points {
				for _, p := range percentiles {
					if pt.Name == "lat."+metric.PercentileName(p) {
						reported[p] = pt.Value
					}
				}
			}
		}

		sorted := slices.Clone(values)
		slices.Sort(sorted)
		for _, p := range percentiles {
			got, ok := reported[p]
			if !ok {
				t.Fatalf("forwarding=%v: percentile %v not flushed", forwarding, p)
			}
			rank := float64(rankOf(sorted, got)) / n
			t.Logf("forwarding=%v p%v: reported %.4f, exact %.4f, rank %.5f, rank error %.5f",
				forwarding, p*100, got, sorted[int(p*n)], rank, math.Abs(rank-p))
			if math.Abs(rank-p) > 0.01 {
				t.Errorf("forwarding=%v p%v: reported %v has rank %v, more than 0.01 from %v", forwarding, p*100, got, rank, p)
			}
		}
	}
}

// rankOf is the number of values in sorted not above v.
func rankOf(sorted []float64, v float64) int {
	i, _ := slices.BinarySearch(sorted, math.Nextafter(v, math.Inf(1)))
	return i
}

func TestSetCardinality(t *testing.T) {
	const n = 100_000
	a := newTestAggregator(t, Config{Shards: 4})
	localOnly := []byte("veneurlocalonly") // the set's size is flushed here
	batch := make([]metric.Sample, 0, 1000)
	for i := range n {
		member := []byte("user-" + strconv.Itoa(i))
		batch = append(batch, metric.Sample{Name: []byte("users"), Tags: localOnly, SetMember: member, Rate: 1, Kind: metric.Set})
		// Every member twice: duplicates must not count.
		batch = append(batch, metric.Sample{Name: []byte("users"), Tags: localOnly, SetMember: member, Rate: 1, Kind: metric.Set})
		if len(batch) >= cap(batch)-1 {
			a.Push(batch)
			batch = batch[:0]
		}
	}
	a.Push(batch)
	points := a.Flush(testNow, time.Second).Points
	if len(points) != 1 {
		t.Fatalf("flushed %d points, want 1", len(points))
	}
	got := points[0].Value
	relErr := math.Abs(got-n) / n
	t.Logf("estimated %v distinct members of %d: error %.3f%%", got, n, 100*relErr)
	if relErr > 0.02 {
		t.Errorf("estimated %v distinct members, want %d within 2%%", got, n)
	}
}
