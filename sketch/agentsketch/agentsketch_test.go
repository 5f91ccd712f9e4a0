package agentsketch

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// The mapping's facts, computed outside Go from the Agent's formulas
// (pkg/quantile config.go: γ = 1+2ε, bias = 1-floor(ln(1e-9)/ln γ) = 1338,
// key = RoundToEven(ln v/ln γ)+bias, value = γ^(key-bias)).
func TestKeyOf(t *testing.T) {
	cases := []struct {
		v    float64
		want Key
	}{
		{0, 0}, {1e-12, 0}, {9.9e-10, 0}, {1e-09, 1}, {1e-06, 447},
		{0.001, 892}, {0.5, 1293}, {1, 1338},
		{1.00778, 1338}, {1.00779, 1339}, // either side of γ^0.5
		{1.0077822185373186, 1338}, // γ^0.5 itself: half to even
		{1.008, 1339}, {1.5, 1364}, {2, 1383}, {3, 1409}, {10, 1487},
		{100, 1635}, {1000, 1784}, {12345.678, 1946}, {1e6, 2229},
		{1e9, 2675}, {1e300, InfKey}, {math.Inf(1), InfKey},
		{-1e-12, 0}, {-0.5, -1293}, {-1, -1338}, {-10, -1487},
		{-1e6, -2229}, {math.Inf(-1), -InfKey},
	}
	for _, c := range cases {
		if got := KeyOf(c.v); got != c.want {
			t.Errorf("KeyOf(%g) = %d, want %d", c.v, got, c.want)
		}
	}
}

func TestValue(t *testing.T) {
	cases := []struct {
		k    Key
		want float64
	}{
		{1, 9.94185408912145e-10}, {2, 1.0097195559263973e-09},
		{1000, 0.00529805742520608}, {1337, 0.9846153846153847},
		{1338, 1}, {1339, 1.015625}, {1400, 2.614988148096247},
		{2000, 28674.728873749442}, {2229, 998720.4648847829},
		{32766, 4.137616223466104e+211}, {-1338, -1}, {-1339, -1.015625},
		{0, 0},
	}
	for _, c := range cases {
		got := Value(c.k)
		if math.Abs(got-c.want) > 1e-12*math.Abs(c.want) {
			t.Errorf("Value(%d) = %v, want %v", c.k, got, c.want)
		}
		if c.k != 0 && KeyOf(got) != c.k {
			t.Errorf("KeyOf(Value(%d)) = %d", c.k, KeyOf(got))
		}
	}
	if !math.IsInf(Value(InfKey), 1) || !math.IsInf(Value(-InfKey), -1) {
		t.Error("InfKey is not infinite")
	}
}

// decode reads a key back the way the test's own reading of the Agent's
// mapping says (independent of Value): e^((k-1338)·ln(1+1/64)).
func decode(k Key) float64 {
	if k == 0 {
		return 0
	}
	sign := 1.0
	if k < 0 {
		sign, k = -1, -k
	}
	return sign * math.Exp(float64(int(k)-1338)*math.Log(1+1.0/64))
}

type weighted struct {
	v float64
	n uint64
}

// exactQuantile is the sample at rank RoundToEven(q·(n-1)) of the samples
// repeated by their counts.
func exactQuantile(sorted []weighted, total uint64, q float64) float64 {
	rank := uint64(math.RoundToEven(q * float64(total-1)))
	var seen uint64
	for _, s := range sorted {
		seen += s.n
		if seen > rank {
			return s.v
		}
	}
	return sorted[len(sorted)-1].v
}

// sketchQuantile decodes the shipped columns only.
func sketchQuantile(k []int32, n []uint32, q float64) float64 {
	var total uint64
	for _, c := range n {
		total += uint64(c)
	}
	rank := uint64(math.RoundToEven(q * float64(total-1)))
	var seen uint64
	for i, c := range n {
		seen += uint64(c)
		if seen > rank {
			return decode(Key(k[i]))
		}
	}
	return decode(Key(k[len(k)-1]))
}

var distributions = map[string]func(r *rand.Rand) float64{
	"uniform":   func(r *rand.Rand) float64 { return r.Float64() * 1000 },
	"lognormal": func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()*2 + 3) },
	"bimodal": func(r *rand.Rand) float64 {
		if r.IntN(2) == 0 {
			return 5 + r.NormFloat64()
		}
		return 5000 + 100*r.NormFloat64()
	},
	"signed": func(r *rand.Rand) float64 { return r.NormFloat64() * 100 },
}

// TestAccuracy is the accuracy table: every quantile decoded from
// the keys is within 1/128 of the exact one; count, min, max, sum exact.
func TestAccuracy(t *testing.T) {
	sizes := []int{1, 5, 64, 10_000}
	if !testing.Short() && !raceEnabled {
		sizes = append(sizes, 1_000_000)
	}
	qs := []float64{0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range distributions {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		for _, size := range sizes {
			for _, isWeighted := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/weighted=%v", name, size, isWeighted), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(size), 7))
					var s Sketch
					samples := make([]weighted, 0, size)
					var total uint64
					var sum float64
					for range size {
						v := distributions[name](r)
						rate := 1.0
						if isWeighted {
							rate = []float64{1, 0.5, 0.25, 0.1, 0.3}[r.IntN(5)]
						}
						s.Insert(v, 1/rate)
						n := uint64(1 / rate)
						samples = append(samples, weighted{v, n})
						total += n
						sum += v / rate
					}
					sort.Slice(samples, func(i, j int) bool { return samples[i].v < samples[j].v })
					if s.Count() != int64(total) || s.Min() != samples[0].v || s.Max() != samples[len(samples)-1].v {
						t.Fatalf("count/min/max = %d/%v/%v, want %d/%v/%v", s.Count(), s.Min(), s.Max(), total, samples[0].v, samples[len(samples)-1].v)
					}
					if math.Abs(s.Sum()-sum) > 1e-9*math.Abs(sum) {
						t.Fatalf("sum = %v, want %v", s.Sum(), sum)
					}
					k, n := s.AppendColumns(nil, nil)
					worst := 0.0
					for _, q := range qs {
						want := exactQuantile(samples, total, q)
						got := sketchQuantile(k, n, q)
						rel := math.Abs(got-want) / math.Abs(want)
						if want == 0 {
							rel = math.Abs(got)
						}
						worst = max(worst, rel)
						if rel > RelativeAccuracy {
							t.Errorf("q=%v: got %v, want %v (relative error %.5f > 1/128)", q, got, want, rel)
						}
						if viaSketch := s.Quantile(q); math.Abs(viaSketch-want) > RelativeAccuracy*math.Abs(want) {
							t.Errorf("Quantile(%v) = %v, want %v", q, viaSketch, want)
						}
					}
					t.Logf("bins=%d worst relative error=%.5f", len(k), worst)
				})
			}
		}
	}
}

func TestMergeEqualsInsertingAll(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b, all Sketch
	for i := range 5000 {
		v := math.Exp(r.NormFloat64() * 3)
		if i%2 == 0 {
			a.Insert(v, 1)
		} else {
			b.Insert(v, 2)
		}
		all.Insert(v, []float64{1, 2}[i%2])
	}
	a.Merge(&b)
	if !slices.Equal(a.AppendBins(nil), all.AppendBins(nil)) || a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Fatalf("merge differs from inserting all")
	}
	if math.Abs(a.Sum()-all.Sum()) > 1e-9*all.Sum() || math.Abs(a.Avg()-all.Avg()) > 1e-9*all.Avg() {
		t.Fatalf("sum/avg %v/%v, want %v/%v", a.Sum(), a.Avg(), all.Sum(), all.Avg())
	}
}

// A key's count past MaxUint32 ships as a partial bin followed by full bins
// of the same key, as the Agent's appendSafe lays them out.
func TestOverflowSplitsBins(t *testing.T) {
	for _, dense := range []bool{false, true} {
		var s Sketch
		if dense {
			for i := range sparseMax + 1 {
				s.add(Key(1400+i), 1)
			}
		}
		s.add(KeyOf(1), MaxBinCount-1)
		s.add(KeyOf(1), 3)
		s.add(KeyOf(2), 2*MaxBinCount+5)
		s.add(KeyOf(0.5), 1)
		got := s.AppendBins(nil)
		if dense {
			if s.dense == nil {
				t.Fatal("not dense")
			}
			got = got[:len(got)-sparseMax-1]
		}
		want := []Bin{{1293, 1}, {1338, 2}, {1338, MaxBinCount}, {1383, 5}, {1383, MaxBinCount}, {1383, MaxBinCount}}
		if !slices.Equal(got, want) {
			t.Fatalf("dense=%v: bins = %v, want %v", dense, got, want)
		}
		s.add(KeyOf(1), MaxBinCount-2)
		want[1].Count = MaxBinCount // 2·MaxBinCount in all: two full bins
		if got := s.AppendBins(nil); !slices.Equal(got[:len(want)], want) {
			t.Fatalf("dense=%v: bins = %v, want %v", dense, got, want)
		}
	}
}

// Past BinLimit keys the lowest are folded into the lowest kept: the
// count stays, the top of the distribution keeps its accuracy.
func TestBinLimitFoldsLowest(t *testing.T) {
	var s Sketch
	for i := range BinLimit + 10 {
		s.Insert(Value(Key(1+i)), 1)
	}
	bins := s.AppendBins(nil)
	if len(bins) != BinLimit {
		t.Fatalf("%d bins, want %d", len(bins), BinLimit)
	}
	if bins[0].Key != 11 || bins[0].Count != 11 || bins[len(bins)-1].Key != BinLimit+10 {
		t.Fatalf("first bin %v, last %v", bins[0], bins[len(bins)-1])
	}
	if s.Count() != BinLimit+10 {
		t.Fatalf("count %d", s.Count())
	}
}

func TestZerosAndNegatives(t *testing.T) {
	var s Sketch
	for _, v := range []float64{-3, 0, 0, 1e-12, 2} {
		s.Insert(v, 1)
	}
	want := []Bin{{-KeyOf(3), 1}, {0, 3}, {KeyOf(2), 1}}
	if !slices.Equal(s.AppendBins(nil), want) || s.Min() != -3 || s.Max() != 2 || s.Count() != 5 {
		t.Fatalf("bins %v min %v max %v", s.AppendBins(nil), s.Min(), s.Max())
	}
	if got := s.Quantile(0.5); got != 0 {
		t.Fatalf("median %v", got)
	}
}

func TestWeights(t *testing.T) {
	var s Sketch
	s.Insert(1, 0)
	s.Insert(1, 0.5)
	s.Insert(1, math.NaN())
	s.Insert(1, 1/0.3) // 3.33…: count 3, sum 3.33…, as the Agent
	if s.Count() != 6 || math.Abs(s.Sum()-(3+1/0.3)) > 1e-12 {
		t.Fatalf("count %d sum %v", s.Count(), s.Sum())
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 1, 50, 5000} {
		var s Sketch
		for range n {
			s.Insert(r.NormFloat64()*1e3, float64(1+r.IntN(3)))
		}
		var got Sketch
		if err := got.DecodeBinary(s.AppendBinary(nil)); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !slices.Equal(got.AppendBins(nil), s.AppendBins(nil)) || got.Count() != s.Count() || got.Min() != s.Min() ||
			got.Max() != s.Max() || got.Sum() != s.Sum() || got.Avg() != s.Avg() {
			t.Fatalf("n=%d: round trip differs", n)
		}
	}
}

func TestDecodeBinaryRejects(t *testing.T) {
	var s Sketch
	s.Insert(1, 1)
	s.Insert(2, 1)
	good := s.AppendBinary(nil)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"count":     append([]byte{3}, good[1:]...),
		"nan min":   func() []byte { b := slices.Clone(good); copy(b[1:], []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 1}); return b }(),
	} {
		var got Sketch
		if err := got.DecodeBinary(b); !errors.Is(err, ErrMalformed) || got.Count() != 0 {
			t.Errorf("%s: err %v, count %d", name, err, got.Count())
		}
	}
}

func FuzzDecodeBinary(f *testing.F) {
	var s Sketch
	for _, v := range []float64{-5, 0, 1, 1e6} {
		s.Insert(v, 2)
	}
	f.Add(s.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Sketch
		if got.DecodeBinary(b) != nil {
			return
		}
		if again := got.AppendBinary(nil); !slices.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
	})
}

// Keys too far apart for an array stay a list, whether they come one by
// one, grow an array out of its range, or arrive from a forwarded form:
// memory follows the keys, not their range.
func TestFarApartKeysStayListed(t *testing.T) {
	var s Sketch
	for i := range 1000 {
		s.add(Key(-30000+60*i), 1)
	}
	if s.dense != nil || len(s.sparse) != 1000 {
		t.Fatalf("dense %d, listed %d", len(s.dense), len(s.sparse))
	}
	var d Sketch
	for i := range 200 {
		d.add(Key(1000+i), 1)
	}
	if d.dense == nil {
		t.Fatal("200 adjacent keys not in an array")
	}
	d.add(30000, 1)
	if d.dense != nil || len(d.sparse) != 201 {
		t.Fatalf("after a far key: dense %d, listed %d", len(d.dense), len(d.sparse))
	}
	if bins := d.AppendBins(nil); len(bins) != 201 || bins[200] != (Bin{30000, 1}) || bins[0] != (Bin{1000, 1}) {
		t.Fatalf("bins %v … %v", bins[0], bins[len(bins)-1])
	}
}

// The shipped columns are the shipped bins, listed, in an array, folded
// past BinLimit or split past MaxBinCount.
func TestColumnsAreTheBins(t *testing.T) {
	cases := map[string]func(s *Sketch){
		"listed": func(s *Sketch) { s.Insert(1, 1); s.Insert(-1, 1) },
		"array": func(s *Sketch) {
			for i := range 500 {
				s.Insert(float64(i), 1)
			}
		},
		"folded": func(s *Sketch) {
			for i := range BinLimit + 3 {
				s.add(Key(-2000+i), 1)
			}
		},
		"split": func(s *Sketch) { s.add(7, 3*MaxBinCount+1) },
	}
	for name, fill := range cases {
		var s Sketch
		fill(&s)
		k, n := s.AppendColumns(nil, nil)
		bins := s.AppendBins(nil)
		if len(k) != len(bins) || len(n) != len(bins) {
			t.Fatalf("%s: %d keys, %d counts, %d bins", name, len(k), len(n), len(bins))
		}
		for i, b := range bins {
			if k[i] != int32(b.Key) || n[i] != b.Count {
				t.Fatalf("%s: column %d = (%d, %d), bin %v", name, i, k[i], n[i], b)
			}
		}
	}
}
