package sketch

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/caio/go-tdigest/v4"
)

// caioCentroids returns the centroids of a caio digest.
func caioCentroids(td *tdigest.TDigest) []Centroid {
	var cs []Centroid
	td.ForEachCentroid(func(mean float64, count uint64) bool {
		cs = append(cs, Centroid{mean, float64(count)})
		return true
	})
	return cs
}

func decodeOne(t *testing.T, p []byte) Run {
	t.Helper()
	r, _, err := DecodeRun(nil, p)
	if err != nil {
		t.Fatalf("DecodeRun: %v", err)
	}
	return r
}

// testDigests are digests in each state the wire must carry.
func testDigests() map[string]*Digest {
	r := rand.New(rand.NewPCG(11, 12))
	ds := map[string]*Digest{}
	add := func(name string, n int, draw func() (float64, float64)) {
		d := new(Digest)
		for range n {
			d.Add(draw())
		}
		ds[name] = d
	}
	add("empty", 0, nil)
	add("one", 1, func() (float64, float64) { return 42.5, 1 })
	add("exact weighted", 1000, func() (float64, float64) { return float64(r.IntN(20)), 10 })
	add("fractional weights", 1000, func() (float64, float64) { return float64(r.IntN(20)) + 0.5, 10 / 3.0 })
	add("lognormal", 100_000, func() (float64, float64) { return math.Exp(r.NormFloat64()), 1 })
	add("negative", 5000, func() (float64, float64) { return -1e6 * r.Float64(), 1 + float64(r.IntN(5)) })
	add("heavy weights", 3000, func() (float64, float64) { return r.Float64(), float64(1 + r.IntN(1e6)) })
	return ds
}

// TestWireCaioCompatible proves byte compatibility with the format's
// origin, in both directions: caio reads what AppendBinary writes (and
// writes it back byte for byte), and DecodeRun reads what caio writes.
func TestWireCaioCompatible(t *testing.T) {
	for name, d := range testDigests() {
		p := d.AppendBinary(nil)
		ours := decodeOne(t, p)
		var td tdigest.TDigest
		if err := td.FromBytes(p); err != nil {
			t.Fatalf("%s: caio FromBytes: %v", name, err)
		}
		theirs := caioCentroids(&td)
		if len(theirs) != len(ours.Centroids) {
			t.Fatalf("%s: caio reads %d centroids, we wrote %d", name, len(theirs), len(ours.Centroids))
		}
		for i, c := range theirs {
			if c != ours.Centroids[i] {
				t.Fatalf("%s: centroid %d: caio reads %v, DecodeRun %v", name, i, c, ours.Centroids[i])
			}
		}
		if back := td.ToBytes(nil); !bytes.Equal(back, p) {
			t.Errorf("%s: caio re-encodes %d bytes differently from our %d", name, len(back), len(p))
		}
		// The wire rounds weights; in memory they stay exact.
		for i, c := range d.cs[:d.n] {
			if want := math.Max(math.Round(c.Weight), 1); ours.Centroids[i].Weight != want {
				t.Fatalf("%s: centroid %d: weight %v on the wire, want %v rounded to %v", name, i, ours.Centroids[i].Weight, c.Weight, want)
			}
		}
		if name == "fractional weights" {
			var want float64
			for range 1000 {
				want += 10 / 3.0
			}
			if d.Count() != want {
				t.Errorf("count %v in memory, want %v", d.Count(), want)
			}
		}
	}

	// caio → us.
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 10, 500, 50_000} {
		td, err := tdigest.New(tdigest.Compression(100))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := td.AddWeighted(math.Exp(r.NormFloat64()), uint64(1+r.IntN(3))); err != nil {
				t.Fatal(err)
			}
		}
		p := td.ToBytes(nil)
		var reread tdigest.TDigest // caio's own reading: means rebuilt from float32 deltas
		if err := reread.FromBytes(p); err != nil {
			t.Fatal(err)
		}
		want := caioCentroids(&reread)
		got := decodeOne(t, p)
		if len(got.Centroids) != len(want) {
			t.Fatalf("n=%d: %d centroids, caio wrote %d", n, len(got.Centroids), len(want))
		}
		for i := range want {
			if got.Centroids[i] != want[i] {
				t.Fatalf("n=%d: centroid %d: %v, caio wrote %v", n, i, got.Centroids[i], want[i])
			}
		}
		var d Digest
		d.MergeRun(got)
		if d.Count() != float64(td.Count()) {
			t.Errorf("n=%d: count %v, caio %v", n, d.Count(), td.Count())
		}
	}
}

// TestWireRoundTrip: what a global rebuilds from the wire answers as the
// local did, exact digests exactly.
func TestWireRoundTrip(t *testing.T) {
	for name, d := range testDigests() {
		r := decodeOne(t, d.AppendBinary(nil))
		if r.Exact != d.Exact() {
			t.Errorf("%s: decoded exact %v, digest exact %v", name, r.Exact, d.Exact())
		}
		var g Digest
		g.MergeRun(r)
		if d.Count() == 0 {
			if g.Count() != 0 {
				t.Errorf("%s: count %v from an empty digest", name, g.Count())
			}
			continue
		}
		// Means travel as float32 deltas.
		tolerance := 1e-6 * max(math.Abs(d.Min()), math.Abs(d.Max()))
		if math.Abs(g.Min()-d.Min()) > tolerance || math.Abs(g.Max()-d.Max()) > tolerance {
			t.Errorf("%s: min, max %v, %v after the wire; were %v, %v", name, g.Min(), g.Max(), d.Min(), d.Max())
		}
		switch {
		case name == "fractional weights":
			// Each distinct value's total weight is rounded: the
			// quantiles are exact for the rounded weights.
			var rounded []sample
			for _, c := range d.cs[:d.n] {
				rounded = append(rounded, sample{c.Mean, math.Round(c.Weight)})
			}
			exact := exactQuantiles(rounded)
			for q := 0.0; q <= 1; q += 0.01 {
				if got, want := g.Quantile(q), exact(q); got != want {
					t.Errorf("%s: q=%v: %v after the wire, want %v", name, q, got, want)
				}
			}
			continue
		case d.Exact():
			tolerance = 0 // these test values are float32 numbers
		default:
			tolerance = 0.01 * (d.Max() - d.Min()) // recompressed from rounded weights
		}
		for _, q := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1} {
			if got, want := g.Quantile(q), d.Quantile(q); math.Abs(got-want) > tolerance {
				t.Errorf("%s: q=%v: %v after the wire, %v before", name, q, got, want)
			}
		}
	}

	// The example that motivated exact mode, through a global.
	var local Digest
	local.Add(1, 10)
	local.Add(100, 1)
	var global Digest
	global.MergeRun(decodeOne(t, local.AppendBinary(nil)))
	if global.Quantile(0.25) != 1 || global.Quantile(0.5) != 1 || global.Quantile(0.99) != 100 {
		t.Errorf("p25, p50, p99 = %v, %v, %v after the wire; want 1, 1, 100", global.Quantile(0.25), global.Quantile(0.5), global.Quantile(0.99))
	}
}

// TestWireSmallCompressedDigest: a compressed digest with few centroids
// must not read as exact on the other side.
func TestWireSmallCompressedDigest(t *testing.T) {
	var d Digest
	for i := range ExactLimit + 1 {
		d.Add(float64(i), 1)
	}
	d.Add(ExactLimit/2+0.5, 1e7) // one heavy value: the light ones around it compress
	if d.Exact() || d.n > ExactLimit {
		t.Fatalf("setup: exact %v with %d centroids; want a compressed digest of at most %d", d.Exact(), d.n, ExactLimit)
	}
	r := decodeOne(t, d.AppendBinary(nil))
	if r.Exact {
		t.Fatal("a compressed digest of few centroids reads as exact")
	}
	if len(r.Centroids) != d.n+1 {
		t.Errorf("%d centroids on the wire, want %d with one split", len(r.Centroids), d.n+1)
	}
	var g Digest
	g.MergeRun(r)
	if g.Exact() || g.Count() != d.Count() {
		t.Errorf("rebuilt: exact %v, count %v; want compressed, %v", g.Exact(), g.Count(), d.Count())
	}
}

// wireBytes builds an encoding by hand, for the decoder's error cases.
func wireBytes(compression float64, declared uint32, deltas []float32, counts []uint64) []byte {
	p := binary.BigEndian.AppendUint32(nil, 2)
	p = binary.BigEndian.AppendUint64(p, math.Float64bits(compression))
	p = binary.BigEndian.AppendUint32(p, declared)
	for _, d := range deltas {
		p = binary.BigEndian.AppendUint32(p, math.Float32bits(d))
	}
	for _, c := range counts {
		p = binary.AppendUvarint(p, c)
	}
	return p
}

func TestDecodeRunRejects(t *testing.T) {
	valid := wireBytes(100, 2, []float32{1, 2}, []uint64{1, 2})
	f := func(name string, p []byte, wantErr string) {
		t.Helper()
		arena := make([]Centroid, 3, 8)
		r, got, err := DecodeRun(arena, p)
		if err == nil {
			t.Errorf("%s: accepted, want an error containing %q", name, wantErr)
			return
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %q, want it to contain %q", name, err, wantErr)
		}
		if len(got) != 3 || &got[0] != &arena[0] || r.Centroids != nil {
			t.Errorf("%s: the arena changed on error", name)
		}
	}
	f("empty", nil, "shorter than the 16-byte header")
	f("short header", valid[:15], "shorter than the 16-byte header")
	f("encoding", append([]byte{0, 0, 0, 1}, valid[4:]...), "encoding 1, want 2")
	f("compression 0", wireBytes(0, 2, []float32{1, 2}, []uint64{1, 2}), "compression 0")
	f("compression NaN", wireBytes(math.NaN(), 2, []float32{1, 2}, []uint64{1, 2}), "compression NaN")
	f("compression 2000", wireBytes(2000, 2, []float32{1, 2}, []uint64{1, 2}), "compression 2000")
	f("count beyond the bytes", wireBytes(100, 3, []float32{1, 2}, []uint64{1, 2}), "3 centroids declared in 26 bytes")
	f("huge count", wireBytes(100, 1<<31, []float32{1, 2}, []uint64{1, 2}), "centroids declared")
	f("truncated counts", valid[:len(valid)-1], "centroids declared")
	f("decreasing", wireBytes(100, 2, []float32{1, -0.5}, []uint64{1, 2}), "centroid 1: mean delta -0.5: means must not decrease")
	f("NaN mean", wireBytes(100, 2, []float32{float32(math.NaN()), 1}, []uint64{1, 2}), "centroid 0: mean NaN: not finite")
	f("NaN delta", wireBytes(100, 2, []float32{1, float32(math.NaN())}, []uint64{1, 2}), "centroid 1: mean delta NaN")
	f("infinite mean", wireBytes(100, 2, []float32{float32(math.Inf(1)), 0}, []uint64{1, 2}), "centroid 0: mean +Inf: not finite")
	f("zero count", wireBytes(100, 2, []float32{1, 2}, []uint64{1, 0}), "centroid 1: count 0")
	f("total beyond 2^53", wireBytes(100, 2, []float32{1, 2}, []uint64{1 << 52, 1<<52 + 1}), "centroid 1: total count beyond 2^53")
	f("trailing bytes", append(valid, 1), "1 bytes after the last count")
	f("non-minimal uvarint", append(valid[:len(valid)-1], 0x82, 0x00), "uvarint not minimally encoded")
	f("uvarint overflow", append(append(valid[:len(valid)-1], bytes.Repeat([]byte{0xff}, 9)...), 0x7f), "uvarint overflows 64 bits")
	f("truncated uvarint", append(valid[:len(valid)-1], 0x80, 0x80), "truncated uvarint")
}

func TestDecodeRunAccepts(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     []byte
		n     int
		exact bool
	}{
		{"empty digest", wireBytes(100, 0, nil, nil), 0, true},
		{"large means", wireBytes(100, 2, []float32{math.MaxFloat32, math.MaxFloat32}, []uint64{1, 2}), 2, true},
		{"equal means", wireBytes(1000, 2, []float32{-5, 0}, []uint64{3, 4}), 2, false},
		{"minimum compression", wireBytes(1, 1, []float32{7}, []uint64{1 << 53}), 1, true},
	} {
		r, arena, err := DecodeRun(nil, c.p)
		if err != nil || len(r.Centroids) != c.n || len(arena) != c.n || r.Exact != c.exact {
			t.Errorf("%s: %d centroids, exact %v, err %v; want %d, %v", c.name, len(r.Centroids), r.Exact, err, c.n, c.exact)
		}
	}
}

// TestDecodeRunArena: a batch decodes into one arena, and runs decoded
// before the arena grew stay valid.
func TestDecodeRunArena(t *testing.T) {
	var encoded [][]byte
	var want []*Digest
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 100 {
		d := new(Digest)
		for range 1 + r.IntN(3000) {
			d.Add(float64(i)+r.Float64(), 1)
		}
		encoded = append(encoded, d.AppendBinary(nil))
		want = append(want, d)
	}
	var arena []Centroid
	var runs []Run
	for _, p := range encoded {
		run, a, err := DecodeRun(arena, p)
		if err != nil {
			t.Fatal(err)
		}
		arena, runs = a, append(runs, run)
	}
	for i, run := range runs {
		var g Digest
		g.MergeRun(run)
		if g.Count() != want[i].Count() || math.Abs(g.Quantile(0.5)-want[i].Quantile(0.5)) > 1e-4*want[i].Quantile(0.5) {
			t.Errorf("digest %d: count %v median %v, want %v %v", i, g.Count(), g.Quantile(0.5), want[i].Count(), want[i].Quantile(0.5))
		}
	}
	if raceEnabled {
		return
	}
	if allocs := testing.AllocsPerRun(10, func() {
		arena = arena[:0]
		for _, p := range encoded {
			_, arena, _ = DecodeRun(arena, p)
		}
	}); allocs != 0 {
		t.Errorf("decoding a batch into a large enough arena allocates %v times", allocs)
	}
}

func TestAppendBinaryNoAlloc(t *testing.T) {
	d := testDigests()["lognormal"]
	buf := make([]byte, 0, 4096)
	if allocs := testing.AllocsPerRun(100, func() { buf = d.AppendBinary(buf[:0]) }); allocs != 0 {
		t.Errorf("AppendBinary allocates %v times with room in dst", allocs)
	}
	prefix := []byte("prefix")
	if got := d.AppendBinary(prefix); !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], d.AppendBinary(nil)) {
		t.Error("AppendBinary does not append")
	}
}

// FuzzDecodeRun: hostile input never panics, and what is accepted is
// sorted, finite and positive, re-encodes to the same run, and merges into
// a digest whose own encoding decodes.
//
//	go test ./sketch -run '^$' -fuzz FuzzDecodeRun -fuzztime 60s
func FuzzDecodeRun(f *testing.F) {
	for _, d := range testDigests() {
		f.Add(d.AppendBinary(nil))
	}
	f.Add(wireBytes(100, 2, []float32{1, -0.5}, []uint64{1, 2}))
	f.Add(wireBytes(1, 3, []float32{0, 0, 1e-45}, []uint64{1, 1 << 40, 300}))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, _, err := DecodeRun(nil, p)
		if err != nil {
			return
		}
		for i, c := range r.Centroids {
			if c.Mean-c.Mean != 0 || !(c.Weight >= 1) || (i > 0 && c.Mean < r.Centroids[i-1].Mean) {
				t.Fatalf("accepted centroid %d: %v", i, c)
			}
		}
		again, _, err := DecodeRun(nil, appendRun(nil, r.Centroids, -1))
		if err != nil {
			t.Fatalf("re-encoded run does not decode: %v", err)
		}
		if len(again.Centroids) != len(r.Centroids) || again.Exact != r.Exact {
			t.Fatalf("re-encoded: %d centroids, exact %v; was %d, %v", len(again.Centroids), again.Exact, len(r.Centroids), r.Exact)
		}
		for i, c := range again.Centroids {
			if c != r.Centroids[i] {
				t.Fatalf("re-encoded centroid %d: %v, was %v", i, c, r.Centroids[i])
			}
		}

		var d Digest
		d.MergeRun(r)
		if _, _, err := DecodeRun(nil, d.AppendBinary(nil)); err != nil {
			t.Fatalf("the merged digest's encoding does not decode: %v", err)
		}
		if len(r.Centroids) > 0 {
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				if v := d.Quantile(q); !(v >= d.Min() && v <= d.Max()) {
					t.Fatalf("Quantile(%v) = %v outside [%v, %v]", q, v, d.Min(), d.Max())
				}
			}
		}
	})
}

// TestDecodeTotalBound: one-byte counts after a large one cannot carry the
// total past 2^53 unnoticed.
func TestDecodeTotalBound(t *testing.T) {
	p := binary.BigEndian.AppendUint32(nil, 2)
	p = binary.BigEndian.AppendUint64(p, math.Float64bits(Compression))
	p = binary.BigEndian.AppendUint32(p, 2)
	p = binary.BigEndian.AppendUint32(p, math.Float32bits(1))
	p = binary.BigEndian.AppendUint32(p, math.Float32bits(1))
	p = binary.AppendUvarint(p, 1<<53)
	p = binary.AppendUvarint(p, 1)
	if _, _, err := DecodeRun(nil, p); err == nil || !strings.Contains(err.Error(), "beyond 2^53") {
		t.Errorf("error %v, want the total bound", err)
	}
}
