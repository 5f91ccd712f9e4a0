package agentsketch

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkInsert inserts lognormal values, one series' interval of 10⁴
// at a time:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./sketch/agentsketch
func BenchmarkInsert(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	values := make([]float64, 1<<16)
	for i := range values {
		values[i] = math.Exp(r.NormFloat64()*2 + 3)
	}
	b.ReportAllocs()
	var s Sketch
	i := 0
	for b.Loop() {
		s.Insert(values[i&(len(values)-1)], 1)
		i++
		if i%10_000 == 0 { // one series' interval
			s.Reset()
		}
	}
}

// BenchmarkLiveSeries reports the heap per live series for 10⁵ sketches
// holding 20 lognormal samples each (a busy d series in one interval).
func BenchmarkLiveSeries(b *testing.B) {
	const series = 100_000
	r := rand.New(rand.NewPCG(2, 2))
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sketches := make([]*Sketch, series)
		for i := range sketches {
			s := new(Sketch)
			for range 20 {
				s.Insert(math.Exp(r.NormFloat64()*2+3), 1)
			}
			sketches[i] = s
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/series, "B/series")
		runtime.KeepAlive(sketches)
	}
}
