// Package agentsketch is the Datadog Agent's distribution sketch (the DDSketch
// variant of the Agent's pkg/quantile), written for veneur-lite: the keys and
// counts it produces are the ones Datadog's sketch intake merges.
//
// Contract: relative accuracy 1/128 (γ = 1 + 2/128), values of magnitude
// below MinValue count as zero, at most BinLimit bins, int16 keys mapped as the
// Agent maps them (negative values get the negated key of their magnitude,
// zero is key 0), uint32 counts split as the Agent splits them. Sample rates
// are weights, truncated to whole counts as the Agent truncates them; count,
// min, max, sum and avg are kept exactly beside the bins. docs/output.md
// says where the sketches go.
//
// A Sketch is not safe for concurrent use.
package agentsketch

import (
	"math"
	"slices"
)

// The Agent's sketch parameters (its pkg/quantile defaults).
const (
	// RelativeAccuracy is ε: a key stands for its values within ε.
	RelativeAccuracy = 1.0 / 128
	// MinValue is the smallest magnitude that gets a key of its own;
	// anything smaller is counted in key 0 with the zeros.
	MinValue = 1e-9
	// BinLimit is the most bins a sketch keeps; past it the lowest bins
	// are folded into the lowest one kept, as the Agent does.
	BinLimit = 4096
	// MaxKey is the largest finite key; InfKey holds values beyond
	// Value(MaxKey) (and -InfKey their negatives).
	MaxKey Key = math.MaxInt16 - 1
	InfKey Key = math.MaxInt16
	// MaxBinCount is the most a bin counts; the Agent spills more into
	// further bins of the same key.
	MaxBinCount = math.MaxUint32
)

// Key is a bin's index: values v with Key(v) = k are represented by Value(k).
type Key int16

var (
	gamma   = 1 + 2*RelativeAccuracy
	lnGamma = math.Log1p(2 * RelativeAccuracy)
	// bias makes the key of the largest power of γ not above MinValue 1,
	// so every positive key is >= 1 and 0 is free for zero.
	bias = 1 - int(math.Floor(math.Log(MinValue)/lnGamma))
	// minMagnitude is Value(1): magnitudes below it map to key 0.
	minMagnitude = math.Pow(gamma, float64(1-bias))
)

// KeyOf returns the Agent's key of v: round-half-even of log_γ(v) plus the
// bias, so that KeyOf(Value(k)) == k.
func KeyOf(v float64) Key {
	neg := v < 0
	if neg {
		v = -v
	}
	if !(v >= minMagnitude) { // zero, tiny, NaN
		return 0
	}
	f := math.RoundToEven(math.Log(v)/lnGamma) + float64(bias)
	var k Key
	switch {
	case f > float64(MaxKey):
		k = InfKey
	case f < 1:
		k = 1
	default:
		k = Key(f)
	}
	if neg {
		return -k
	}
	return k
}

// Value returns what key k stands for: γ^(k-bias), negated for negative
// keys, 0 for key 0 and ±Inf for ±InfKey. It is the Agent's reading of a key.
func Value(k Key) float64 {
	switch {
	case k < 0:
		return -Value(-k)
	case k == 0:
		return 0
	case k == InfKey:
		return math.Inf(1)
	}
	return math.Pow(gamma, float64(int(k)-bias))
}

// Bin is one (key, count) pair of a sketch, as shipped.
type Bin struct {
	Key   Key
	Count uint32
}

// sparseMax is the most keys a sketch keeps as a sorted list (8 B each)
// before it counts in an array indexed by key (4 B per key of its range):
// small series stay small, busy ones insert by indexing. The array is
// used only while its range is at most denseSlack times the keys it holds
// (plus denseSpare), so a sketch of a few far-apart keys (from a client, or
// from a forwarded batch) never costs more than a few times its list.
const (
	sparseMax  = 128
	denseSlack = 4
	denseSpare = 64
)

// Sketch is one series' distribution over one interval.
type Sketch struct {
	// sparse holds the keys and counts, sorted by key, until dense takes
	// over: dense[i] counts key denseLow+i.
	sparse    []Bin
	dense     []uint32
	denseLow  Key
	denseKeys int // keys with a count in dense
	// spill holds what a key counted beyond MaxBinCount (rare: 4·10⁹
	// samples of one key in one interval).
	spill map[Key]uint64
	cnt   int64
	min   float64
	max   float64
	sum   float64
	avg   float64
}

// Insert adds v with the weight of a sample (1/rate): the count grows by
// the weight truncated, the sum by v·weight, as the Agent does. A weight
// below 1 (or NaN) is 1; a NaN value is ignored.
func (s *Sketch) Insert(v float64, weight float64) {
	if v != v {
		return
	}
	w := 1.0
	if weight > 1 {
		w = weight
	}
	n := uint64(min(w, 1<<62))
	s.summarize(v, n, w*v)
	s.add(KeyOf(v), n)
}

func (s *Sketch) summarize(v float64, n uint64, sum float64) {
	if s.cnt == 0 {
		s.min, s.max = v, v
	} else {
		s.min = min(s.min, v)
		s.max = max(s.max, v)
	}
	s.cnt += int64(n)
	s.sum += sum
	// incremental mean, as the Agent keeps it, to stay precise over
	// large counts.
	s.avg += (v - s.avg) * float64(n) / float64(s.cnt)
}

// add counts n more at key k.
func (s *Sketch) add(k Key, n uint64) {
	if s.dense != nil {
		i := int(k) - int(s.denseLow)
		if uint(i) >= uint(len(s.dense)) {
			if i = s.growDense(k); i < 0 {
				s.toSparse()
				s.add(k, n)
				return
			}
		}
		if s.dense[i] == 0 {
			s.denseKeys++
		}
		s.dense[i] = s.addCount(k, s.dense[i], n)
		return
	}
	i, found := s.search(k)
	if found {
		s.sparse[i].Count = s.addCount(k, s.sparse[i].Count, n)
		return
	}
	if len(s.sparse) >= sparseMax && s.fitsDense(min(k, s.sparse[0].Key), max(k, s.sparse[len(s.sparse)-1].Key), len(s.sparse)+1) {
		s.toDense()
		s.add(k, n)
		return
	}
	if s.sparse == nil {
		s.sparse = make([]Bin, 0, 4)
	}
	s.sparse = slices.Insert(s.sparse, i, Bin{Key: k, Count: s.addCount(k, 0, n)})
}

// addCount returns c+n, saturated at MaxBinCount, the rest spilled.
func (s *Sketch) addCount(k Key, c uint32, n uint64) uint32 {
	total := uint64(c) + n
	if total <= MaxBinCount {
		return uint32(total)
	}
	if s.spill == nil {
		s.spill = make(map[Key]uint64)
	}
	s.spill[k] += total - MaxBinCount
	return MaxBinCount
}

// search finds the bin of key k, or where it would go.
func (s *Sketch) search(k Key) (int, bool) {
	lo, hi := 0, len(s.sparse)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.sparse[m].Key < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s.sparse) && s.sparse[lo].Key == k
}

// fitsDense reports whether an array over keys lo..hi is worth it for
// keys keys.
func (s *Sketch) fitsDense(lo, hi Key, keys int) bool {
	return int(hi)-int(lo)+1 <= denseSlack*keys+denseSpare
}

func (s *Sketch) toDense() {
	lo, hi := s.sparse[0].Key, s.sparse[len(s.sparse)-1].Key
	s.denseLow = lo
	s.dense = make([]uint32, int(hi)-int(lo)+1)
	for _, b := range s.sparse {
		s.dense[int(b.Key)-int(lo)] = b.Count
	}
	s.denseKeys = len(s.sparse)
	s.sparse = nil
}

func (s *Sketch) toSparse() {
	sparse := make([]Bin, 0, s.denseKeys+1)
	for i, c := range s.dense {
		if c != 0 {
			sparse = append(sparse, Bin{Key: Key(int(s.denseLow) + i), Count: c})
		}
	}
	s.sparse, s.dense, s.denseKeys = sparse, nil, 0
}

// growDense widens the array to cover k, with headroom on that side, and
// returns k's index, or -1 when the array would be too sparse for it.
func (s *Sketch) growDense(k Key) int {
	lo, hi := int(s.denseLow), int(s.denseLow)+len(s.dense)-1
	if !s.fitsDense(Key(min(int(k), lo)), Key(max(int(k), hi)), s.denseKeys+1) {
		return -1
	}
	pad := max(len(s.dense)/4, 16)
	newLo, newHi := lo, hi
	if int(k) < lo {
		newLo = max(int(k)-pad, -int(InfKey))
	} else {
		newHi = min(int(k)+pad, int(InfKey))
	}
	grown := make([]uint32, newHi-newLo+1)
	copy(grown[lo-newLo:], s.dense)
	s.dense, s.denseLow = grown, Key(newLo)
	return int(k) - newLo
}

// each calls f for every key with a count, in key order, with its whole
// count (spill included).
func (s *Sketch) each(f func(k Key, n uint64)) {
	emit := func(k Key, c uint32) {
		if c == 0 {
			return
		}
		n := uint64(c)
		if c == MaxBinCount && s.spill != nil {
			n += s.spill[k]
		}
		f(k, n)
	}
	for _, b := range s.sparse {
		emit(b.Key, b.Count)
	}
	for i, c := range s.dense {
		emit(Key(int(s.denseLow)+i), c)
	}
}

// Merge adds o into s (o is left as it was).
func (s *Sketch) Merge(o *Sketch) {
	if o.cnt == 0 {
		return
	}
	if s.cnt == 0 {
		s.min, s.max, s.avg = o.min, o.max, o.avg
	} else {
		s.min = min(s.min, o.min)
		s.max = max(s.max, o.max)
		s.avg += (o.avg - s.avg) * float64(o.cnt) / float64(s.cnt+o.cnt)
	}
	s.cnt += o.cnt
	s.sum += o.sum
	o.each(s.add)
}

// Reset empties s for reuse.
func (s *Sketch) Reset() { *s = Sketch{sparse: s.sparse[:0]} }

// Count is the number of samples, each weighted by its truncated 1/rate.
func (s *Sketch) Count() int64 { return s.cnt }

// Min is the smallest value inserted (0 when empty).
func (s *Sketch) Min() float64 { return s.min }

// Max is the largest value inserted (0 when empty).
func (s *Sketch) Max() float64 { return s.max }

// Sum is the sum of the values, each weighted by 1/rate.
func (s *Sketch) Sum() float64 { return s.sum }

// Avg is the mean of the values weighted by their counts.
func (s *Sketch) Avg() float64 { return s.avg }

// AppendBins appends the bins as the Agent ships them: sorted by key; past
// BinLimit keys the lowest keys' counts are folded into the lowest key kept
// (the Agent's trimLeft); a count over MaxBinCount is one partial bin
// followed by full bins of the same key (the Agent's appendSafe).
func (s *Sketch) AppendBins(dst []Bin) []Bin {
	keys := 0
	s.each(func(Key, uint64) { keys++ })
	fold := keys - BinLimit
	var folded uint64
	s.each(func(k Key, n uint64) {
		if fold > 0 {
			fold--
			folded += n
			return
		}
		n += folded
		folded = 0
		if rest := n % MaxBinCount; rest != 0 {
			dst = append(dst, Bin{Key: k, Count: uint32(rest)})
		}
		for range n / MaxBinCount {
			dst = append(dst, Bin{Key: k, Count: MaxBinCount})
		}
	})
	return dst
}

// AppendColumns appends the shipped bins' keys and counts as the Dogsketch
// fields k and n carry them.
func (s *Sketch) AppendColumns(k []int32, n []uint32) ([]int32, []uint32) {
	if s.spill == nil && len(s.sparse)+s.denseKeys <= BinLimit { // no folding or splitting: no copies
		for _, b := range s.sparse {
			k = append(k, int32(b.Key))
			n = append(n, b.Count)
		}
		for i, c := range s.dense {
			if c != 0 {
				k = append(k, int32(s.denseLow)+int32(i))
				n = append(n, c)
			}
		}
		return k, n
	}
	for _, b := range s.AppendBins(nil) {
		k = append(k, int32(b.Key))
		n = append(n, b.Count)
	}
	return k, n
}

// Quantile returns the q-quantile as Datadog reads the bins: the value of the
// key holding the sample of rank RoundToEven(q·(count-1)), clamped to
// [Min, Max]. It is within RelativeAccuracy of that sample.
func (s *Sketch) Quantile(q float64) float64 {
	if s.cnt == 0 {
		return 0
	}
	if q <= 0 {
		return s.min
	}
	if q >= 1 {
		return s.max
	}
	var total uint64
	s.each(func(_ Key, n uint64) { total += n })
	rank := uint64(math.RoundToEven(q * float64(total-1)))
	var seen uint64
	found := s.max
	done := false
	s.each(func(k Key, n uint64) {
		if done {
			return
		}
		seen += n
		if seen > rank {
			found, done = min(max(Value(k), s.min), s.max), true
		}
	})
	return found
}
