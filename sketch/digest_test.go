package sketch

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"unsafe"
)

// sample is a value and its weight, as a test's ground truth keeps them.
type sample struct{ v, w float64 }

// exactQuantiles returns Quantile's exact-mode definition computed from the
// raw samples: a function giving the smallest value whose cumulative weight
// reaches q·W.
func exactQuantiles(samples []sample) func(q float64) float64 {
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b sample) int { return cmpFloat(a.v, b.v) })
	cum := make([]float64, len(s))
	var total float64
	for i, x := range s {
		total += x.w
		cum[i] = total
	}
	return func(q float64) float64 {
		i := sort.Search(len(cum), func(i int) bool { return cum[i] >= q*total-total*1e-12 })
		return s[min(i, len(s)-1)].v
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rankError is |F(estimate) − q| for the sorted samples, where F may be
// taken anywhere between the fraction below the estimate and the fraction
// at or below it (ties make the empirical distribution a step).
func rankError(sorted []float64, estimate, q float64) float64 {
	n := float64(len(sorted))
	below := float64(sort.SearchFloat64s(sorted, estimate)) / n
	atOrBelow := float64(sort.SearchFloat64s(sorted, math.Nextafter(estimate, math.Inf(1)))) / n
	switch {
	case q < below:
		return below - q
	case q > atOrBelow:
		return q - atOrBelow
	}
	return 0
}

var testQuantiles = []float64{0.5, 0.75, 0.9, 0.99, 0.999}

// distributions the accuracy tests draw from. scale lets "hosts" differ.
var distributions = []struct {
	name string
	draw func(r *rand.Rand) float64
}{
	{"lognormal", func(r *rand.Rand) float64 { return math.Exp(3 + 1.5*r.NormFloat64()) }},
	{"uniform", func(r *rand.Rand) float64 { return 1000 * r.Float64() }},
	// Cache hits and misses: two narrow modes with a gap between them.
	{"bimodal", func(r *rand.Rand) float64 {
		if r.IntN(3) == 0 {
			return 1000 + 50*r.NormFloat64()
		}
		return 100 + 10*r.NormFloat64()
	}},
}

func TestExactQuantiles(t *testing.T) {
	f := func(name string, samples []sample, want map[float64]float64) {
		t.Helper()
		var d Digest
		for _, s := range samples {
			d.Add(s.v, s.w)
		}
		if !d.Exact() {
			t.Fatalf("%s: not exact with %d samples", name, len(samples))
		}
		for q, w := range want {
			if got := d.Quantile(q); got != w {
				t.Errorf("%s: Quantile(%v) = %v, want %v", name, q, got, w)
			}
		}
		exact := exactQuantiles(samples)
		for q := 0.0; q <= 1; q += 0.001 {
			got, w := d.Quantile(q), exact(q)
			if got != w {
				t.Fatalf("%s: Quantile(%v) = %v, exact weighted quantile %v", name, q, got, w)
			}
			if got < d.Min() || got > d.Max() {
				t.Fatalf("%s: Quantile(%v) = %v outside [%v, %v]", name, q, got, d.Min(), d.Max())
			}
		}
	}
	f("single", []sample{{42, 1}}, map[float64]float64{0: 42, 0.5: 42, 0.99: 42, 1: 42})
	f("two", []sample{{1, 1}, {2, 1}}, map[float64]float64{0.5: 1, 0.51: 2, 0.99: 2})
	// "wa:1|h|@0.1" and "wa:100|h": caio said p25 = -35, p50 = 10.
	f("weighted", []sample{{1, 10}, {100, 1}}, map[float64]float64{0.25: 1, 0.5: 1, 0.9: 1, 0.99: 100})
	f("equal weights", []sample{{10, 10}, {20, 10}}, map[float64]float64{0.5: 10, 0.75: 20, 0.99: 20})
	f("fractional", []sample{{1, 10 / 3.0}, {2, 10 / 3.0}, {3, 10 / 3.0}, {4, 10 / 3.0}},
		map[float64]float64{0.25: 1, 0.5: 2, 0.75: 3, 0.99: 4})
	f("repeats", []sample{{5, 1}, {3, 1}, {5, 1}, {5, 2}, {3, 1}, {-1, 1}},
		map[float64]float64{0.1: -1, 0.3: 3, 0.5: 5})

	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		var samples []sample
		distinct := 1 + r.IntN(ExactLimit)
		for range 1 + r.IntN(3000) {
			v := float64(r.IntN(distinct)) * 0.7
			w := 1.0
			if r.IntN(2) == 0 {
				w = 1 / []float64{0.1, 0.25, 0.3, 0.5}[r.IntN(4)]
			}
			samples = append(samples, sample{v, w})
		}
		f(fmt.Sprintf("random %d", i), samples, nil)
	}
}

func TestEmpty(t *testing.T) {
	var d Digest
	if d.Count() != 0 || !math.IsNaN(d.Min()) || !math.IsNaN(d.Max()) || !math.IsNaN(d.Quantile(0.5)) || !d.Exact() {
		t.Errorf("empty digest: count %v, min %v, max %v, median %v, exact %v", d.Count(), d.Min(), d.Max(), d.Quantile(0.5), d.Exact())
	}
	d.Add(1, 1)
	if !math.IsNaN(d.Quantile(math.NaN())) {
		t.Error("Quantile(NaN) is not NaN")
	}
	if d.Quantile(-1) != 1 || d.Quantile(2) != 1 {
		t.Error("q outside [0, 1] is not clamped")
	}
}

func TestAddIgnoresBadInput(t *testing.T) {
	var d Digest
	d.Add(1, 1)
	for _, s := range []sample{{math.NaN(), 1}, {math.Inf(1), 1}, {math.Inf(-1), 1}, {2, 0}, {2, -1}, {2, math.NaN()}, {2, math.Inf(1)}} {
		d.Add(s.v, s.w)
	}
	if d.Count() != 1 || d.Min() != 1 || d.Max() != 1 || d.Quantile(0.99) != 1 {
		t.Errorf("bad samples were recorded: count %v, min %v, max %v", d.Count(), d.Min(), d.Max())
	}
}

func TestExactLimit(t *testing.T) {
	var d Digest
	for i := range ExactLimit {
		d.Add(float64(i), 1)
		d.Add(float64(i), 2) // a repeat is not a new distinct value
	}
	if !d.Exact() {
		t.Fatalf("not exact at %d distinct values", ExactLimit)
	}
	d.Add(ExactLimit, 1)
	if d.Exact() {
		t.Fatalf("still exact at %d distinct values", ExactLimit+1)
	}

	// Merging exact digests stays exact while the union is small enough.
	var a, b Digest
	for i := range ExactLimit / 2 {
		a.Add(float64(i), 1)
		b.Add(float64(i+ExactLimit/4), 1) // half overlaps a
	}
	a.Merge(&b)
	if !a.Exact() {
		t.Fatal("merge of two exact digests with a small union is not exact")
	}
	if got, want := a.Quantile(0.5), 23.0; got != want { // 0–15 once, 16–31 twice, 32–47 once
		t.Errorf("merged exact median %v, want %v", got, want)
	}
	var c Digest
	for i := range ExactLimit {
		c.Add(float64(1000+i), 1)
	}
	a.Merge(&c)
	if a.Exact() {
		t.Error("merge with more than ExactLimit distinct values is still exact")
	}
}

func TestCountMinMaxAndWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var weighted, repeated, merged Digest
	var samples []sample
	var count float64
	lo, hi := math.Inf(1), math.Inf(-1)
	var parts [4]Digest
	for i := range 100_000 {
		v := math.Exp(r.NormFloat64())
		w := float64(1 + r.IntN(10))
		weighted.Add(v, w)
		for range int(w) {
			repeated.Add(v, 1)
		}
		parts[i%len(parts)].Add(v, w)
		samples = append(samples, sample{v, w})
		count += w
		lo, hi = min(lo, v), max(hi, v)
	}
	for i := range parts {
		merged.Merge(&parts[i])
	}
	for _, d := range []*Digest{&weighted, &repeated, &merged} {
		if d.Count() != count || d.Min() != lo || d.Max() != hi {
			t.Errorf("count %v min %v max %v, want %v %v %v", d.Count(), d.Min(), d.Max(), count, lo, hi)
		}
		if d.Quantile(0) != lo || d.Quantile(1) != hi {
			t.Errorf("Quantile(0), Quantile(1) = %v, %v; want the min and max %v, %v", d.Quantile(0), d.Quantile(1), lo, hi)
		}
		// A sample at weight w counts like w samples.
		for _, q := range testQuantiles {
			if e := weightedRankError(samples, d.Quantile(q), q); e > 0.001 {
				t.Errorf("q=%v: estimate %v has weighted rank error %.5f > 0.001", q, d.Quantile(q), e)
			}
		}
	}

	// Fractional weights stay exact in Count.
	var d Digest
	for range 3 {
		d.Add(1, 1/0.3)
	}
	if want := 3 * (1 / 0.3); d.Count() != want {
		t.Errorf("count %v, want %v", d.Count(), want)
	}
}

// weightedRankError is rankError for weighted samples: each counts its
// weight in the distribution function.
func weightedRankError(samples []sample, estimate, q float64) float64 {
	var total, below, atOrBelow float64
	for _, s := range samples {
		total += s.w
		if s.v < estimate {
			below += s.w
		}
		if s.v <= estimate {
			atOrBelow += s.w
		}
	}
	below, atOrBelow = below/total, atOrBelow/total
	switch {
	case q < below:
		return below - q
	case q > atOrBelow:
		return q - atOrBelow
	}
	return 0
}

func TestAccuracy(t *testing.T) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() || raceEnabled {
		sizes = sizes[:1]
	}
	for _, dist := range distributions {
		for _, n := range sizes {
			r := rand.New(rand.NewPCG(uint64(n), 5))
			xs := make([]float64, n)
			var d Digest
			for i := range xs {
				xs[i] = dist.draw(r)
				d.Add(xs[i], 1)
			}
			slices.Sort(xs)
			checkRanks(t, fmt.Sprintf("%s n=%d", dist.name, n), &d, xs)
			if dist.name == "lognormal" {
				got, want := d.Quantile(0.999), xs[int(math.Ceil(0.999*float64(n)))-1]
				e := math.Abs(got-want) / want
				if e > 0.01 {
					t.Errorf("%s n=%d: p99.9 %v, exact %v: value error %.2f%% > 1%%", dist.name, n, got, want, 100*e)
				}
				t.Logf("%s n=%d: p99.9 value error %.2f%%", dist.name, n, 100*e)
			}
		}
	}
}

// checkRanks checks the 0.1% rank error bound at testQuantiles, and that
// quantiles rise with q and stay within [Min, Max].
func checkRanks(t *testing.T, name string, d *Digest, sorted []float64) {
	t.Helper()
	worst := 0.0
	for _, q := range testQuantiles {
		e := rankError(sorted, d.Quantile(q), q)
		if e > 0.001 {
			t.Errorf("%s: q=%v: estimate %v has rank error %.5f > 0.001", name, q, d.Quantile(q), e)
		}
		worst = max(worst, e)
	}
	t.Logf("%s: worst rank error %.5f over p50–p99.9, %d centroids", name, worst, d.n)
	prev := math.Inf(-1)
	for q := 0.0; q <= 1; q += 0.0005 {
		v := d.Quantile(q)
		if v < prev || v < d.Min() || v > d.Max() {
			t.Fatalf("%s: Quantile(%v) = %v after %v, min %v, max %v", name, q, v, prev, d.Min(), d.Max())
		}
		prev = v
	}
}

// TestMergedAccuracy merges the digests of 200 "hosts" of 500–5,000
// samples each, every host with its own distribution (family, scale and
// shift), and checks the merged quantiles against the exact union: merged
// in memory, and merged from the wire encoding as a global does.
func TestMergedAccuracy(t *testing.T) {
	seeds := 3
	if testing.Short() || raceEnabled {
		seeds = 1
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 6))
		var all []float64
		var direct, wire Digest
		var arena []Centroid
		var runs []Run
		for range 200 {
			dist := distributions[r.IntN(len(distributions))]
			scale, shift := 0.5+2*r.Float64(), 100*r.Float64()
			var host Digest
			for range 500 + r.IntN(4501) {
				v := shift + scale*dist.draw(r)
				all = append(all, v)
				host.Add(v, 1)
			}
			// The global decodes the whole batch before it merges.
			run, a, err := DecodeRun(arena, host.AppendBinary(nil))
			if err != nil {
				t.Fatal(err)
			}
			arena, runs = a, append(runs, run)
			direct.Merge(&host)
		}
		for _, run := range runs {
			wire.MergeRun(run)
		}
		slices.Sort(all)
		checkRanks(t, fmt.Sprintf("seed %d merged", seed), &direct, all)
		checkRanks(t, fmt.Sprintf("seed %d merged from the wire", seed), &wire, all)
		if direct.Count() != float64(len(all)) || direct.Min() != all[0] || direct.Max() != all[len(all)-1] {
			t.Errorf("seed %d: count %v min %v max %v, want %v %v %v", seed, direct.Count(), direct.Min(), direct.Max(), len(all), all[0], all[len(all)-1])
		}
	}
}

// TestCentroidCount keeps digests small: a forwarded 500-sample digest is
// under a kilobyte, a large one a few, and no data makes a digest hold more
// than the scale function's bounds and the gap rule allow.
func TestCentroidCount(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	typical := map[string]func() float64{
		"integer timings": func() float64 { return float64(r.IntN(500)) },
	}
	for _, dist := range distributions {
		typical[dist.name] = func() float64 { return dist.draw(r) }
	}
	pathological := map[string]func() float64{
		"heavy tail":     func() float64 { return math.Exp(4 * r.NormFloat64()) },
		"geometric gaps": func() float64 { return math.Pow(3, float64(r.IntN(600))) },
		"clusters":       func() float64 { return float64(r.IntN(2000))*1e6 + r.Float64() },
	}
	check := func(name string, draw func() float64, n, limit int) {
		var d Digest
		for range n {
			d.Add(draw(), 1)
		}
		size := len(d.AppendBinary(nil))
		if d.n > limit {
			t.Errorf("%s, %d samples: %d centroids (%d bytes), more than %d", name, n, d.n, size, limit)
		}
		if n == 500 && name == "lognormal" {
			t.Logf("a 500-sample lognormal digest: %d centroids, %d bytes", d.n, size)
		}
	}
	// k1 keeps up to Compression centroids; middleShare adds up to
	// 1/middleShare in large digests, upperTailShare about 240 in the
	// upper tail, and the gap rule up to gapMaxCentroids more.
	large := Compression + int(1/middleShare) + 240
	for name, draw := range typical {
		check(name, draw, 500, 160)
		check(name, draw, 100_000, large)
	}
	for name, draw := range pathological {
		check(name, draw, 500, large+gapMaxCentroids)
		check(name, draw, 100_000, large+gapMaxCentroids)
	}
}

func TestMergeLeavesOtherIntact(t *testing.T) {
	var a, b Digest
	for i := range 5000 {
		a.Add(float64(i), 1)
		b.Add(float64(i%100)+0.5, 2)
	}
	before := b.AppendBinary(nil)
	count, lo, hi := b.Count(), b.Min(), b.Max()
	a.Merge(&b)
	a.Merge(&b)
	if after := b.AppendBinary(nil); string(after) != string(before) || b.Count() != count || b.Min() != lo || b.Max() != hi {
		t.Error("Merge changed its argument")
	}
	if want := 5000 + 2*count; a.Count() != want {
		t.Errorf("count %v after merging twice, want %v", a.Count(), want)
	}
}

func TestMergeSelf(t *testing.T) {
	var d Digest
	for i := range 1000 {
		d.Add(float64(i), 1)
	}
	median := d.Quantile(0.5)
	d.Merge(&d)
	if d.Count() != 2000 || d.Quantile(0.5) != median {
		t.Errorf("after merging itself: count %v, median %v; want 2000, %v", d.Count(), d.Quantile(0.5), median)
	}
}

func TestResetKeepsMemory(t *testing.T) {
	var d Digest
	for i := range 10_000 {
		d.Add(float64(i), 1)
	}
	capacity := cap(d.cs)
	d.Reset()
	if d.Count() != 0 || !d.Exact() || !math.IsNaN(d.Quantile(0.5)) || cap(d.cs) != capacity {
		t.Errorf("after Reset: count %v, exact %v, capacity %d (was %d)", d.Count(), d.Exact(), cap(d.cs), capacity)
	}
	if raceEnabled {
		return
	}
	if allocs := testing.AllocsPerRun(10, func() {
		d.Reset()
		for i := range 10_000 {
			d.Add(float64(i), 1)
		}
		d.Quantile(0.99)
	}); allocs != 0 {
		t.Errorf("a reused digest allocates %v times per interval", allocs)
	}
}

// TestSmallDigestMemory: most of a million series see a handful of samples
// per interval; their digests must stay small.
func TestSmallDigestMemory(t *testing.T) {
	for _, c := range []struct{ samples, atMost int }{{0, 72}, {1, 136}, {10, 328}, {100, 600}} {
		var d Digest
		for i := range c.samples {
			d.Add(float64(i%7), 1)
		}
		d.Quantile(0.5)
		if size := int(unsafe.Sizeof(d)) + cap(d.cs)*int(unsafe.Sizeof(Centroid{})); size > c.atMost {
			t.Errorf("%d samples: %d bytes, more than %d", c.samples, size, c.atMost)
		}
	}
}

// TestFromRun: a digest over a decoded run answers as the digest that was
// encoded, and adding to it leaves the run's memory alone.
func TestFromRun(t *testing.T) {
	var src Digest
	for i := range 1000 {
		src.Add(float64(i%97), 1)
	}
	run, arena, err := DecodeRun(nil, src.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	before := append([]Centroid(nil), arena...)
	d := FromRun(run)
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(b)) } // means travel as float32
	if d.Count() != src.Count() || !near(d.Min(), src.Min()) || !near(d.Max(), src.Max()) || !near(d.Quantile(0.5), src.Quantile(0.5)) {
		t.Errorf("from run: count %v min %v max %v p50 %v; encoded %v %v %v %v",
			d.Count(), d.Min(), d.Max(), d.Quantile(0.5), src.Count(), src.Min(), src.Max(), src.Quantile(0.5))
	}
	for i := range 2000 {
		d.Add(float64(i), 1)
	}
	d.Quantile(0.5)
	for i := range before {
		if arena[i] != before[i] {
			t.Fatalf("centroid %d of the shared arena changed", i)
		}
	}
	var merged Digest
	merged.Merge(&d)
	if merged.Count() != src.Count()+2000 {
		t.Errorf("merged count %v", merged.Count())
	}
}

// TestMergeRunBuffers: MergeRun buffers runs and folds them when its
// buffer fills or the digest is read. Whatever the reads in between, the
// result holds every run's weight, keeps exact runs exact, never keeps the
// caller's memory, and lets samples be added after runs.
func TestMergeRunBuffers(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 1))
	var hosts [][]byte
	var all []float64
	for range 40 {
		var h Digest
		for range 500 {
			v := math.Exp(3 + r.NormFloat64())
			all = append(all, v)
			h.Add(v, 1)
		}
		hosts = append(hosts, h.AppendBinary(nil))
	}
	slices.Sort(all)
	for _, readEvery := range []int{0, 1, 3} {
		var d Digest
		for i, p := range hosts {
			run, arena, err := DecodeRun(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			d.MergeRun(run)
			clear(arena) // the caller's memory is its own again
			if readEvery > 0 && i%readEvery == 0 {
				d.Quantile(0.5)
			}
		}
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*b } // means travel as float32 deltas
		if d.Count() != float64(len(all)) || !near(d.Min(), all[0]) || !near(d.Max(), all[len(all)-1]) {
			t.Errorf("read every %d: count %v min %v max %v, want %v %v %v", readEvery, d.Count(), d.Min(), d.Max(), len(all), all[0], all[len(all)-1])
		}
		for _, q := range testQuantiles {
			if e := rankError(all, d.Quantile(q), q); e > 0.002 {
				t.Errorf("read every %d: q=%v: rank error %.5f", readEvery, q, e)
			}
		}
		if d.runs || len(d.cs) != d.n {
			t.Errorf("read every %d: runs still buffered after a read", readEvery)
		}
	}

	// A run that fills the buffer folds those before it for their own
	// weight, not counting itself: the upper tail keeps its resolution.
	g, sorted := mergeFleet(1, 2, func(*rand.Rand) int { return 125_000 }, func(r *rand.Rand, _ int) float64 { return distributions[0].draw(r) })
	if got, want := g.Quantile(0.999), exactQuantile(sorted, 0.999); math.Abs(got-want) > 0.01*want {
		t.Errorf("2 large lognormal runs: p99.9 %v, exact %v", got, want)
	}

	// Exact runs stay exact, and samples follow runs.
	var d Digest
	for i := range 30 {
		d.MergeRun(Run{Centroids: []Centroid{{float64(i), 1}, {float64(i + 100), 2}}, Min: float64(i), Max: float64(i + 100), Exact: true})
	}
	d.Add(1000, 4)
	if !d.Exact() || d.Count() != 94 || d.Quantile(1) != 1000 || d.Quantile(0) != 0 || len(d.Centroids()) != 61 {
		t.Errorf("exact runs then a sample: exact %v count %v q0 %v q1 %v, %d centroids", d.Exact(), d.Count(), d.Quantile(0), d.Quantile(1), len(d.Centroids()))
	}
}

// TestCapWindow pins the shortcut merge takes: inside capWindow the
// middle cap is the limit, exactly as the full scale limit would give, and
// the window is not needlessly narrow.
func TestCapWindow(t *testing.T) {
	for _, total := range []float64{1, 100, 500, 4000, 5000, 1e4, 123457, 1e6, 5e8, 1e12} {
		capWeight := max(middleShare*total, middleMinWeight)
		lo, hi := capWindow(total, capWeight)
		const steps = 200000
		inside := 0
		for i := range steps + 1 {
			cum := total * float64(i) / steps
			if cum < lo || cum > hi {
				continue
			}
			inside++
			if l := scaleLimit(cum, total); l < capWeight {
				t.Fatalf("total %v: cum %v in the window [%v, %v], but the scale limit %v < cap %v", total, cum, lo, hi, l, capWeight)
			}
		}
		for _, cum := range []float64{lo - total*1e-6, hi + total*1e-6} {
			if lo <= hi && cum >= 0 && cum <= total {
				if l := scaleLimit(cum, total); l >= capWeight {
					t.Errorf("total %v: cum %v just outside the window [%v, %v] has scale limit %v >= cap %v: window too narrow", total, cum, lo, hi, l, capWeight)
				}
			}
		}
		if total >= 1e4 && !(lo < 0.005*total && hi > 0.95*total) {
			t.Errorf("total %v: window [%v, %v] of the total, want about [0.004, 0.958]", total, lo/total, hi/total)
		}
		t.Logf("total %v: window [%.5f, %.5f] of the total, %d of %d grid points", total, lo/total, hi/total, inside, steps+1)
	}
}
