package sketch

import (
	"math"
	"sync"
)

// Compression is the t-digest compression δ of the k1 scale function: k1
// alone keeps between about δ/2 and δ centroids, a centroid holding at
// most about π/δ of the weight at the median and far less in the tails.
// Two further caps (middleShare, upperTailShare) make centroids finer
// where fleets are asked percentiles. A forwarded 500-sample digest is
// then about 143 centroids (730 bytes); merged over 8 or 200 heterogeneous
// hosts, p50–p99.9 are within about 0.01% of rank on average, and p99.9 of
// a lognormal within about 0.1% of its value (sketch/RESULTS.md).
const Compression = 200

// ExactLimit is the number of distinct values up to which a digest keeps
// every value with its total weight and answers quantiles exactly.
const ExactLimit = 64

// bufferLen is how many samples Add collects before they are sorted and
// folded into the centroids. Sorting costs O(log bufferLen) per sample
// and the fold passes over the ~Compression centroids once per buffer;
// 1024 was the fastest of 256–2048 (512: +15%, 256: +40% per sample).
const bufferLen = 1024

// upperTailShare additionally caps a centroid in the upper half at this
// share of the weight above it (a k2-like bound, ∝ 1−q, where k1's is
// ∝ √(1−q)). Near p99.9 the k1 limit alone lets a centroid hold about 0.1%
// of the weight, and interpolating across it in a heavy tail put p99.9 of
// a lognormal 3–6% off in value; a share of 0.3 brought that to 0.2–0.3%
// at a million samples, 0.05 to about 0.1% (sketch/RESULTS.md), for about
// 30 more centroids in a 500-sample digest. The low tail keeps the k1
// bound: the percentiles asked of metrics are upper ones.
const upperTailShare = 0.05

// middleShare caps every centroid at this share of the total weight, but
// never below middleMinWeight. Under k1 alone a centroid near the median
// holds π/Compression of the weight (1.6%), and a fleet's median falls
// inside some host's median centroid: 8 heterogeneous hosts merged were
// 0.05–0.35% off in rank at p50 however the global merged them, since the
// hosts' digests had already lost it (sketch/RESULTS.md). At 0.2% the
// median is within about 0.005%. The floor keeps small digests as k1
// makes them (at 500 samples k1's limit near the median is about 8), so
// the cap costs centroids only in series of thousands of samples, up to
// 1/middleShare more.
const (
	middleShare     = 0.002
	middleMinWeight = 8
)

// A compressed digest also ends a centroid at a gap in the values: when
// the step to the next value is more than gapFactor times both the spread
// to its left (the current centroid's largest value minus the previous
// centroid's mean) and the step after it, and the centroid already holds
// gapMinFill of its weight limit. Without it, a centroid straddling the
// gap of a bimodal series (cache hits and misses) sits in the gap with the
// weight of both sides, and a global merging hundreds of such digests
// misplaces a fraction of a percent of the fleet's weight near the median
// (measured: up to 0.37% rank error, about 0.1% with the rule). The rule
// applies only while fewer than gapMaxCentroids centroids are out, so that
// no data makes a digest hold more than about twice the usual number.
const (
	gapFactor       = 2
	gapMinFill      = 0.1
	gapMaxCentroids = Compression
)

// Centroid is a weighted point of a digest: the mean of the samples it
// stands for, and their total weight.
type Centroid struct {
	Mean, Weight float64
}

// Digest is a merging t-digest (Dunning & Ertl, "Computing extremely
// accurate quantiles using t-digests", with the k1 scale function) of
// weighted samples, with the exact minimum, maximum and total weight beside
// it.
//
// While it has seen at most ExactLimit distinct values it keeps them all,
// each with its total weight, and Quantile is exact (see Quantile). Past
// that it compresses; its first and last centroids stay the exact minimum
// and maximum, so they survive the wire encoding, which has no room for
// them.
//
// The zero value is an empty digest ready to use; it allocates nothing
// until the first sample, and then only as much as its samples need.
type Digest struct {
	// cs holds the sorted centroids in cs[:n], then the samples added
	// since the last fold, unsorted.
	cs []Centroid
	n  int

	min, max float64
	count    float64 // sum of the weights passed to Add and merged in
	total    float64 // sum of cs[:n]'s weights: count up to rounding

	compressed bool // has seen more than ExactLimit distinct values
	// runs says that cs[n:] holds sorted runs that MergeRun buffered,
	// not samples: see foldRuns for the layout.
	runs bool
}

// Add records value with weight (1/sample rate; it may be fractional). A
// value that is NaN or infinite, or a weight that is not positive and
// finite, is ignored.
func (d *Digest) Add(value, weight float64) {
	if value-value != 0 || !(weight > 0 && weight <= math.MaxFloat64) {
		return
	}
	if len(d.cs) == cap(d.cs) || d.runs {
		d.makeRoom()
	}
	d.cs = append(d.cs, Centroid{value, weight})
	if d.count == 0 {
		d.min, d.max = value, value
	} else if value < d.min {
		d.min = value
	} else if value > d.max {
		d.max = value
	}
	d.count += weight
}

// makeRoom folds or grows a full cs so that one more sample fits.
//
// A compressed digest folds once bufferLen samples are pending. An exact
// one folds whenever at least half the slice is pending, before growing:
// series that repeat a few values (status codes, integer timings) then
// stay a few centroids long instead of buffering every sample.
func (d *Digest) makeRoom() {
	if d.runs {
		d.foldRuns()
		if len(d.cs) < cap(d.cs) {
			return
		}
	}
	pending := len(d.cs) - d.n
	if pending >= bufferLen || (!d.compressed && pending >= len(d.cs)/2 && pending > 0) {
		d.fold()
		if len(d.cs) < cap(d.cs) && (d.compressed || len(d.cs) <= cap(d.cs)/2) {
			return
		}
	}
	newCap := min(max(2*cap(d.cs), 4), d.n+bufferLen)
	if newCap <= len(d.cs) {
		newCap = len(d.cs) + 1
	}
	cs := make([]Centroid, len(d.cs), newCap)
	copy(cs, d.cs)
	d.cs = cs
}

// Grow makes room for n more samples without reallocating, up to the
// buffer's size: a series that saw n samples in its last interval asks for
// as many in the next, and grows once rather than step by step.
func (d *Digest) Grow(n int) {
	n = min(n, bufferLen)
	if cap(d.cs)-len(d.cs) >= n {
		return
	}
	cs := make([]Centroid, len(d.cs), len(d.cs)+n)
	copy(cs, d.cs)
	d.cs = cs
}

// Count returns the total weight of the samples recorded: each sample
// counts its weight, so 10 samples at rate 0.1 count 100.
func (d *Digest) Count() float64 { return d.count }

// Min returns the smallest sample, or NaN when the digest is empty.
func (d *Digest) Min() float64 {
	if d.count == 0 {
		return math.NaN()
	}
	return d.min
}

// Max returns the largest sample, or NaN when the digest is empty.
func (d *Digest) Max() float64 {
	if d.count == 0 {
		return math.NaN()
	}
	return d.max
}

// Exact reports whether the digest still holds every distinct value (at
// most ExactLimit of them), so that Quantile is exact.
func (d *Digest) Exact() bool {
	d.fold()
	return !d.compressed
}

// Reset empties the digest and keeps its memory, so that a series can be
// reused from one interval to the next.
func (d *Digest) Reset() {
	*d = Digest{cs: d.cs[:0]}
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1) of the
// samples, weighted, or NaN when the digest is empty or q is NaN.
//
// In exact mode it is the exact weighted quantile, the inverse of the
// empirical distribution function: the smallest sample value v whose
// cumulative weight (of the samples <= v) reaches q·W, W being the total
// weight. So for weight 10 at 1 and weight 1 at 100, the 0.25 and 0.5
// quantiles are 1 and the 0.99 quantile is 100; for weight 10 at 10 and 10
// at 20, the median is 10. Cumulative weights within W·1e-12 of q·W count
// as reaching it, so that rounding in fractional weights does not step to
// the next value.
//
// Otherwise it interpolates linearly between the centroids' centres, each
// centroid spread over its weight in rank. The first and last centroids
// (the exact minimum and maximum) and centroids of weight at most 1 are
// points: a rank inside them is their value. The result is clamped to
// [Min, Max].
//
// Quantile folds pending samples first, once: calling it for several
// quantiles in a row costs a walk over the centroids each.
func (d *Digest) Quantile(q float64) float64 {
	d.fold()
	if d.n == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	cs := d.cs[:d.n]
	exact := !d.compressed
	rank := q * d.total
	if exact {
		rank -= d.total * 1e-12
	}
	// (prevRank, prevMean) is the last knot of the piecewise linear
	// inverse distribution function left of rank.
	var cum, prevRank, prevMean float64
	last := len(cs) - 1
	for i, c := range cs {
		lo := cum
		cum += c.Weight
		if exact || i == 0 || i == last || c.Weight <= 1 {
			// A point: constant over [lo, cum].
			if rank <= lo && i > 0 {
				return d.clamp(interpolate(rank, prevRank, prevMean, lo, c.Mean))
			}
			if rank <= cum {
				return d.clamp(c.Mean)
			}
			prevRank, prevMean = cum, c.Mean
			continue
		}
		mid := lo + c.Weight/2
		if rank <= mid {
			return d.clamp(interpolate(rank, prevRank, prevMean, mid, c.Mean))
		}
		prevRank, prevMean = mid, c.Mean
	}
	return d.clamp(cs[last].Mean) // rank beyond the total by rounding
}

// interpolate returns the value at rank r on the line from (r0, v0) to
// (r1, v1), r0 <= r <= r1.
func interpolate(r, r0, v0, r1, v1 float64) float64 {
	if r1 <= r0 {
		return v1
	}
	t := (r - r0) / (r1 - r0)
	return v0 + t*(v1-v0)
}

func (d *Digest) clamp(v float64) float64 { return min(max(v, d.min), d.max) }

// Run is a sorted list of centroids with the bounds of the samples behind
// it: what DecodeRun returns and MergeRun folds in.
type Run struct {
	// Centroids are sorted by Mean, with finite means and positive,
	// finite weights.
	Centroids []Centroid
	// Min and Max are the smallest and largest sample. Bounds that do not
	// contain the centroids are replaced by the first and last means.
	Min, Max float64
	// Exact says that the centroids are distinct sample values with their
	// total weights, at most ExactLimit of them.
	Exact bool
}

// Merge adds the samples of o to d. o is left as it was (its pending
// samples may be folded into its centroids, which does not change what it
// holds), so one digest can be merged into many. d.Merge(d) doubles every
// weight.
//
// Two exact digests merge into an exact one while their union has at most
// ExactLimit distinct values.
func (d *Digest) Merge(o *Digest) {
	if o == nil {
		return
	}
	o.fold()
	if o.n == 0 {
		return
	}
	if o == d {
		for i := range d.cs[:d.n] {
			d.cs[i].Weight *= 2
		}
		d.count *= 2
		d.total *= 2
		return
	}
	d.MergeRun(Run{Centroids: o.cs[:o.n], Min: o.min, Max: o.max, Exact: !o.compressed})
}

// MergeRun adds the samples r stands for to d. r.Centroids must be sorted
// by Mean (DecodeRun's are) and must not alias d's memory; they are
// copied, not kept.
//
// The run is only buffered: runs are folded into the centroids together,
// k-way, when the buffer is full or when d is next read (Quantile,
// AppendBinary, Centroids, Exact, Merge, Add). A global merging many
// hosts' digests of one series then reads and rewrites the series' own
// centroids once per buffer rather than once per host, and compresses
// once.
func (d *Digest) MergeRun(r Run) {
	k := len(r.Centroids)
	if k == 0 {
		return
	}
	if !d.runs && len(d.cs) > d.n {
		d.fold() // pending samples
	}
	first, last := r.Centroids[0].Mean, r.Centroids[k-1].Mean
	rmin, rmax := r.Min, r.Max
	if !(rmin <= first) {
		rmin = first
	}
	if !(rmax >= last) {
		rmax = last
	}

	// The run and its sentinel, and the sentinel that ends cs[:n] when
	// no run is buffered yet.
	need := k + 1
	if !d.runs {
		need++
	}
	if len(d.cs)+need > cap(d.cs) {
		if d.runs {
			d.foldRuns()
			need++
		}
		// Room for runBufferRatio times the centroids, at least
		// runBufferLen, but for no more than four runs like this one
		// beyond that: a series of small runs stays small. The room
		// left after a fold shrinks as the centroids grow, so it is
		// renewed once it falls below half of that, not only when this
		// run does not fit (else a global series of ~800 centroids
		// settled with room for two host digests per fold).
		room := max(need, min(max(runBufferLen, runBufferRatio*d.n), 4*need+runBufferRatio*d.n))
		if free := cap(d.cs) - d.n; free < need || 2*free < room {
			cs := make([]Centroid, d.n, d.n+room)
			copy(cs, d.cs[:d.n])
			d.cs = cs
		}
	}
	if !d.runs {
		d.cs = append(d.cs, sentinel)
		d.runs = true
	}
	d.cs[len(d.cs)-1].Weight = float64(k)
	d.cs = append(append(d.cs, r.Centroids...), sentinel)
	// Only now: a fold above compresses for the weight buffered before
	// this run (see foldRuns).
	if d.count == 0 {
		d.min, d.max = rmin, rmax
	} else {
		d.min, d.max = min(d.min, rmin), max(d.max, rmax)
	}
	d.count += sumWeights(r.Centroids)
	if !r.Exact {
		d.compressed = true // the fold compresses
	}
}

// MergeRun gives the runs it buffers room for runBufferRatio times a
// digest's centroids, and at least runBufferLen (but it always takes one
// run). A fold reads and rewrites the centroids and compresses once per
// buffer, so that its cost per incoming centroid is about
// (1+runBufferRatio)/runBufferRatio compressing steps plus the pairwise
// levels, log2 of the runs per fold. A global series merging 500-sample
// host digests (~145 centroids each) into ~880 centroids folds about 12
// of them at once; with a fixed 512 it folded 3–4, and the rewrite of the
// centroids was most of the cost (sketch/RESULTS.md). The price is memory
// while it merges: up to 2 × 880 × 16 B = 28 KiB of buffered runs per
// series beside its 14 KiB of centroids. A ratio of 4 measured 16% fewer
// instructions per digest again, for twice that memory and with fewer of
// its folds inside the measured window: the pairwise levels grow as the
// rewrites shrink.
const (
	runBufferLen   = 512
	runBufferRatio = 2
)

// foldRuns merges the runs MergeRun buffered into the centroids: the
// buffered runs pairwise, without compression, level by level into
// scratch, then their union with the centroids, compressed, back into cs.
// The centroids (often the longest run) are thus read by one merge per
// fold, not by every level; copying them out of the way is a memmove,
// far cheaper than a merge pass.
//
// Layout: cs[:n] are the centroids; cs[n] is a sentinel, whose Weight is
// the length of the first buffered run; each run is followed by a sentinel
// whose Weight is the length of the next, or 0 after the last. Every run
// (cs[:n] too) is thus sentinel-terminated in place, as merge reads them,
// and merge never reads a sentinel's Weight.
func (d *Digest) foldRuns() {
	n := d.n
	var stack [16][]Centroid
	runs := stack[:0]
	for i := n; ; {
		k := int(d.cs[i].Weight)
		if k == 0 {
			break
		}
		runs = append(runs, d.cs[i+1:i+k+2])
		i += k + 1
	}
	pending := len(d.cs) - n - 1
	sp, scratch := getScratch(n + 1 + 2*pending)
	own := append(scratch[:0:n+1], d.cs[:n+1]...)
	bufs := [2][]Centroid{scratch[n+1 : n+1 : n+1+pending], scratch[n+1+pending : n+1+pending : n+1+2*pending]}
	for level := 0; len(runs) > 1 || level == 0; level++ {
		out := bufs[level&1]
		next := runs[:0]
		for i := 0; i < len(runs); i += 2 {
			start := len(out)
			if i+1 == len(runs) {
				out = append(out, runs[i]...)
			} else {
				out = mergePlain(out, runs[i], runs[i+1])
			}
			next = append(next, out[start:])
		}
		runs = next
	}
	d.runs = false
	// The runs' weight is what count holds beyond the centroids' (up to
	// rounding, which the limits do not notice; MergeRun counts a run only
	// once it is buffered): summing it would read every buffered run once
	// more.
	d.mergeRuns(scratch, own, runs[0], max(d.count, d.total), d.compressed)
	putScratch(sp)
}

// mergePlain appends the union of the sorted, sentinel-terminated runs a
// and b to dst, followed by a sentinel, and returns it: a plain merge,
// which keeps every centroid as it is. (A branch-free pick, through the
// borrow of the sort keys' difference, measured 20% slower per imported
// digest: its chain of dependent instructions cost more than the
// mispredicted branches.)
func mergePlain(dst, a, b []Centroid) []Centroid {
	n := len(a) + len(b) - 2
	o := len(dst)
	dst = dst[:o+n+1]
	out := dst[o : o+n]
	i, j := 0, 0
	for k := range out {
		if b[j].Mean < a[i].Mean {
			out[k] = b[j]
			j++
		} else {
			out[k] = a[i]
			i++
		}
	}
	dst[o+n] = sentinel
	return dst
}

// sumWeights adds up the weights in four independent sums, which the CPU
// runs in parallel: a plain loop waits for each addition in turn.
func sumWeights(cs []Centroid) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(cs); i += 4 {
		s0 += cs[i].Weight
		s1 += cs[i+1].Weight
		s2 += cs[i+2].Weight
		s3 += cs[i+3].Weight
	}
	for ; i < len(cs); i++ {
		s0 += cs[i].Weight
	}
	return (s0 + s1) + (s2 + s3)
}

// fold sorts the pending samples and merges them into the centroids, or
// folds the buffered runs.
func (d *Digest) fold() {
	if d.runs {
		d.foldRuns()
		return
	}
	n, pending := d.n, len(d.cs)-d.n
	if pending == 0 {
		return
	}
	// Most series are small: their folds use the stack rather than the
	// pool.
	var stack [40]Centroid
	var sp *[]Centroid
	scratch := stack[:]
	if size := n + pending + 2; size > len(stack) {
		sp, scratch = getScratch(size)
	}
	a := scratch[:pending+1]
	sortCentroids(d.cs[n:], a[:pending])
	a[pending] = sentinel
	b := append(append(a[len(a):], d.cs[:n]...), sentinel)
	var w float64
	if d.compressed {
		// Only compression needs the total beforehand; an exact fold
		// counts it on the way.
		w = sumWeights(a[:pending])
	}
	d.mergeRuns(scratch, a, b, d.total+w, d.compressed)
	if sp != nil {
		putScratch(sp)
	}
}

// sentinel ends every run that merge reads: it is larger than any value,
// so merge picks from the other run without checking for the end.
var sentinel = Centroid{Mean: math.Inf(1)}

// noRun is an empty run: just its sentinel.
var noRun = []Centroid{sentinel}

// scratchPool holds the scratch space of merges and folds: a second
// buffer in every digest would double the memory of every large series.
var scratchPool = sync.Pool{New: func() any { return new([]Centroid) }}

// getScratch returns a pooled slice of length n and the pointer to give
// back to putScratch.
func getScratch(n int) (*[]Centroid, []Centroid) {
	sp := scratchPool.Get().(*[]Centroid)
	if cap(*sp) < n {
		*sp = make([]Centroid, max(n, 2*bufferLen))
	}
	return sp, (*sp)[:n]
}

func putScratch(sp *[]Centroid) { scratchPool.Put(sp) }

// mergeRuns replaces d's centroids with the merge of a and b
// (sentinel-terminated runs in scratch, whose total weight is total; d.cs
// must have room for them), compressed when compress is set or when an
// exact merge ends up with more than ExactLimit distinct values.
func (d *Digest) mergeRuns(scratch, a, b []Centroid, total float64, compress bool) {
	out, sum := merge(d.cs[:0], a, b, total, compress)
	if !compress && len(out) > ExactLimit {
		compress = true
		a = append(append(scratch[:0], out...), sentinel)
		out, sum = merge(out[:0], a, noRun, sum, true)
	}
	d.cs, d.n, d.total, d.compressed = out, len(out), sum, compress
}

// k1 scale function, k(q) = δ/(2π)·asin(2q−1): a centroid spanning ranks
// [q0, q1] (as fractions of the total) may grow while k(q1) − k(q0) <= 1,
// that is while asin(2q1−1) <= asin(2q0−1) + 2π/δ. With s = 2q0−1 and the
// angle addition formula, the limit is
//
//	2q1−1 = s·cos(2π/δ) + sqrt(1−s²)·sin(2π/δ)
//
// which costs one square root per centroid instead of a sin and an asin.
// Past the angle π/2 (s >= cos(2π/δ)) the centroid may run to the end.
var k1Cos, k1Sin = math.Cos(2 * math.Pi / Compression), math.Sin(2 * math.Pi / Compression)

// merge writes the union of the sorted runs a and b to dst and returns it
// with its total weight. Each run ends with a sentinel; dst must have room
// for the rest. Equal values always combine. With compress set,
// neighbouring values also combine into centroids no heavier than the k1
// limit for a total weight of total (see k1Cos), except that the first and
// last centroids stay points at the smallest and largest value, and that
// a centroid filled past gapMinFill stops at a gap (see gapFactor).
func merge(dst, a, b []Centroid, total float64, compress bool) ([]Centroid, float64) {
	if !compress {
		return mergeExact(dst, a, b)
	}
	n := len(a) + len(b) - 2
	lastValue := math.Inf(-1)
	if len(a) > 1 {
		lastValue = a[len(a)-2].Mean
	}
	if len(b) > 1 {
		lastValue = max(lastValue, b[len(b)-2].Mean)
	}
	capWeight := max(middleShare*total, middleMinWeight)
	capLo, capHi := capWindow(total, capWeight)
	dst = dst[:n]
	i, j := 0, 0
	var e Centroid
	if b[0].Mean < a[0].Mean {
		e, j = b[0], 1
	} else {
		e, i = a[0], 1
	}
	// cur accumulates the weighted sum of its values in Mean until emitted;
	// lo and hi are its smallest and largest value; lim its weight limit.
	cur, lo, hi := Centroid{e.Mean * e.Weight, e.Weight}, e.Mean, e.Mean
	var cum float64
	lim := math.Inf(1) // the first centroid is the minimum, whatever its weight
	o := 0
	for range n - 1 {
		if b[j].Mean < a[i].Mean {
			e = b[j]
			j++
		} else {
			e = a[i]
			i++
		}
		var join bool
		if o > 0 && e.Mean != lastValue {
			join = cur.Weight+e.Weight <= lim
			if join && cur.Weight >= lim*gapMinFill && o < gapMaxCentroids {
				if step := e.Mean - hi; step > gapFactor*(hi-dst[o-1].Mean) {
					join = step <= gapFactor*(min(a[i].Mean, b[j].Mean)-e.Mean)
				}
			}
		} else {
			// The first and last centroids are points: only their
			// value joins them.
			join = e.Mean == hi && lo == hi
		}
		if join {
			cur.Mean += e.Mean * e.Weight
			cur.Weight += e.Weight
			hi = e.Mean
			continue
		}
		dst[o] = emit(cur, lo, hi)
		o++
		cum += cur.Weight
		cur, lo, hi = Centroid{e.Mean * e.Weight, e.Weight}, e.Mean, e.Mean
		if cum >= capLo && cum <= capHi {
			lim = capWeight // most centroids: no square root
		} else {
			lim = min(scaleLimit(cum, total), capWeight)
		}
	}
	dst[o] = emit(cur, lo, hi)
	return dst[:o+1], cum + cur.Weight
}

// scaleLimit is the weight limit of a centroid that starts at cumulative
// weight cum of total under the k1 bound (see k1Cos) and, in the upper
// half, the upper tail share; the middle cap is left to the caller.
func scaleLimit(cum, total float64) float64 {
	lim := math.Inf(1)
	if s := cum*(2/total) - 1; s < k1Cos {
		lim = total / 2 * (s*(k1Cos-1) + math.Sqrt(1-s*s)*k1Sin)
	}
	if cum >= total/2 {
		// w <= share·(total − cum − w)
		lim = min(lim, upperTailShare/(1+upperTailShare)*(total-cum))
	}
	return lim
}

// capWindow returns the cumulative weights [lo, hi] between which
// scaleLimit(cum, total) is at least capWeight, so that the middle cap is
// the limit and merge need not compute scaleLimit: for 0.4% < q < 95.8% at
// the default settings, most of a large digest's centroids. The window is
// shrunk by a relative 1e-9 from the exact roots and checked against
// scaleLimit at both ends (k1's bound is concave in cum, the tail's
// decreasing), so merge's output is exactly what scaleLimit gives; when
// the check fails, or no cum reaches capWeight, the window is empty
// (lo > hi).
func capWindow(total, capWeight float64) (lo, hi float64) {
	// k1: with s = 2cum/total − 1 and v = capWeight/(total/2), the roots
	// of s·(c−1) + sqrt(1−s²)·sin = v, squared:
	// (2−2c)·s² − 2(c−1)v·s + v² − sin² = 0.
	v := capWeight / (total / 2)
	a, b, c := 2-2*k1Cos, -2*(k1Cos-1)*v, v*v-k1Sin*k1Sin
	disc := b*b - 4*a*c
	if !(disc > 0) {
		return 1, 0
	}
	r := math.Sqrt(disc)
	s0, s1 := (-b-r)/(2*a), (-b+r)/(2*a)
	lo = (s0 + 1) * (total / 2)
	hi = (s1 + 1) * (total / 2)
	// The upper tail share: share/(1+share)·(total − cum) >= capWeight.
	hi = min(hi, total-capWeight*(1+upperTailShare)/upperTailShare)
	lo, hi = lo+total*1e-9, hi-total*1e-9
	if !(lo < hi) || scaleLimit(lo, total) < capWeight || scaleLimit(hi, total) < capWeight {
		return 1, 0
	}
	return lo, hi
}

// mergeExact writes the union of the sorted, sentinel-terminated runs a
// and b to dst, combining equal values, and returns it with its total
// weight.
func mergeExact(dst, a, b []Centroid) ([]Centroid, float64) {
	n := len(a) + len(b) - 2
	dst = dst[:n]
	i, j, o := 0, 0, -1
	var cum float64
	for range n {
		var e Centroid
		if b[j].Mean < a[i].Mean {
			e = b[j]
			j++
		} else {
			e = a[i]
			i++
		}
		cum += e.Weight
		if o >= 0 && e.Mean == dst[o].Mean {
			dst[o].Weight += e.Weight
			continue
		}
		o++
		dst[o] = e
	}
	return dst[:o+1], cum
}

// emit turns an accumulated centroid into its mean, kept within the values
// it holds: rounding must not reorder centroids, and a point must stay
// exactly its value.
func emit(c Centroid, lo, hi float64) Centroid {
	if lo == hi {
		return Centroid{lo, c.Weight}
	}
	m := c.Mean / c.Weight
	if m-m != 0 { // the weighted sum overflowed
		m = lo/2 + hi/2
	}
	return Centroid{min(max(m, lo), hi), c.Weight}
}

// FromRun returns a digest that holds r's centroids in place, without
// copying them: a decoded batch's digests are read (merged, encoded) and
// dropped, so a batch needs one array for all their centroids. r must be
// sorted, as DecodeRun's runs are. The digest never writes over the
// memory it shares with r: adding to it copies the centroids first.
func FromRun(r Run) Digest {
	n := len(r.Centroids)
	if n == 0 {
		return Digest{}
	}
	rmin, rmax := r.Min, r.Max
	if !(rmin <= r.Centroids[0].Mean) {
		rmin = r.Centroids[0].Mean
	}
	if !(rmax >= r.Centroids[n-1].Mean) {
		rmax = r.Centroids[n-1].Mean
	}
	w := sumWeights(r.Centroids)
	return Digest{cs: r.Centroids[:n:n], n: n, min: rmin, max: rmax, count: w, total: w, compressed: !r.Exact}
}

// Centroids returns d's centroids, sorted, after folding pending samples:
// a view of d's memory, valid until d changes. In exact mode they are the
// distinct sample values with their total weights.
func (d *Digest) Centroids() []Centroid {
	d.fold()
	return d.cs[:d.n:d.n]
}
