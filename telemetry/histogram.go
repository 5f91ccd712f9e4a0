package telemetry

import (
	"math"
	"sync/atomic"
	"time"
)

// Buckets are the upper bounds, in seconds, of every histogram's buckets
// (a last one, +Inf, is implied): from a millisecond, below which nothing
// the process times matters, to 30 s, three intervals at the default 10 s.
var Buckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Histogram counts observations (durations, in seconds) in the fixed
// Buckets, with their sum and the largest one of the interval. A nil
// *Histogram ignores Observe.
type Histogram struct {
	counts  [len(Buckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	count   atomic.Uint64
	sumBits atomic.Uint64 // float64 bits
	maxBits atomic.Uint64 // float64 bits of the largest observation since the previous Collect

	// Guarded by Registry.mu.
	lastCount uint64
	lastSum   float64

	name, tags                  []byte
	countName, sumName, maxName []byte
	spec                        *Spec
}

func newHistogram(name, tags []byte, spec *Spec) *Histogram {
	suffixed := func(s string) []byte { return append(append([]byte(nil), name...), s...) }
	return &Histogram{
		name: name, tags: tags, spec: spec,
		countName: suffixed(".count"), sumName: suffixed(".sum"), maxName: suffixed(".max"),
	}
}

// Observe records v seconds. A negative or NaN v counts as 0.
func (h *Histogram) Observe(v float64) {
	if h == nil {
		return
	}
	if !(v > 0) {
		v = 0
	}
	i := 0
	for i < len(Buckets) && v > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sumBits, v)
	for {
		old := h.maxBits.Load()
		if v <= math.Float64frombits(old) || h.maxBits.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
	// Counted last, so a reader that sees the count sees the sum with it
	// (or a later one).
	h.count.Add(1)
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Since records the time elapsed since start.
func (h *Histogram) Since(start time.Time) { h.ObserveDuration(time.Since(start)) }

func addFloat(bits *atomic.Uint64, v float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// HistogramSnapshot is a histogram's state since the registry was made.
type HistogramSnapshot struct {
	// Cumulative[i] counts the observations ≤ Buckets[i]; the +Inf
	// bucket is Count.
	Cumulative [len(Buckets)]uint64
	Count      uint64
	Sum        float64
}

// Snapshot reads the histogram. Observations racing with it may be in
// some fields and not others, never counted twice.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	if h == nil {
		return s
	}
	s.Count = h.count.Load()
	s.Sum = math.Float64frombits(h.sumBits.Load())
	var cum uint64
	for i := range Buckets {
		cum += h.counts[i].Load()
		s.Cumulative[i] = cum
	}
	// A bucket bumped before its observation was counted must not make
	// the buckets exceed the count.
	for i := range s.Cumulative {
		s.Cumulative[i] = min(s.Cumulative[i], s.Count)
	}
	return s
}

// collect emits the histogram's interval as Collect documents it.
func (h *Histogram) collect(emit func(Measurement)) {
	count := h.count.Load()
	if count == h.lastCount {
		return
	}
	sum := math.Float64frombits(h.sumBits.Load())
	maxV := math.Float64frombits(h.maxBits.Swap(0))
	emit(Measurement{Name: h.countName, Tags: h.tags, Value: float64(count - h.lastCount), Counter: true, Spec: h.spec})
	emit(Measurement{Name: h.sumName, Tags: h.tags, Value: sum - h.lastSum, Counter: true, Spec: h.spec})
	emit(Measurement{Name: h.maxName, Tags: h.tags, Value: maxV, Spec: h.spec})
	h.lastCount, h.lastSum = count, sum
}
