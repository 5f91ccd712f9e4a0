package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
)

// testStart is a fixed, aligned interval start for reproducible payloads.
var testStart = time.Unix(1_700_000_000, 0)

// digestOf returns a digest of values, as the aggregator would hold it.
func digestOf(t testing.TB, values ...float64) *sketch.Digest {
	t.Helper()
	td := new(sketch.Digest)
	for _, v := range values {
		td.Add(v, 1)
	}
	return td
}

// setOf returns a sketch of members "<prefix>0" … "<prefix>n-1", compacted
// (Estimate drains the unsorted temporary set into the sorted list) so that
// its encoding is canonical and golden files re-encode byte for byte.
func setOf(prefix string, n int) *hyperloglog.Sketch {
	sk := sketch.NewSet()
	for i := range n {
		sk.Insert(fmt.Appendf(nil, "%s%d", prefix, i))
	}
	sk.Estimate()
	return sk
}

func series(kind metric.Kind, name string, tags ...string) metric.Series {
	return metric.Series{Key: metric.SeriesKey(kind, name, tags), Name: name, Tags: tags, Kind: kind}
}

func mustEncode(t testing.TB, b *Batch) []byte {
	t.Helper()
	enc, err := AppendEncode(nil, b)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return enc
}

// fixCRC returns a copy of data with its trailer recomputed, so that tests
// and the fuzzer reach the parsing behind the checksum.
func fixCRC(data []byte) []byte {
	if len(data) < trailerLen {
		return slices.Clone(data)
	}
	out := slices.Clone(data)
	body := out[:len(out)-trailerLen]
	binary.BigEndian.PutUint32(out[len(body):], crc32.Checksum(body, castagnoli))
	return out
}

// raw assembles a batch by hand, for inputs AppendEncode refuses to write.
type raw struct{ b []byte }

func newRaw(nSeries uint64) *raw {
	r := &raw{b: append([]byte(nil), magic[:]...)}
	r.b = append(r.b, Version)
	r.b = binary.BigEndian.AppendUint64(r.b, uint64(testStart.UnixNano()))
	r.b = binary.BigEndian.AppendUint64(r.b, uint64(10*time.Second))
	r.str("src")
	r.uvarint(nSeries)
	return r
}

func (r *raw) byte(v byte) *raw      { r.b = append(r.b, v); return r }
func (r *raw) bytes(v ...byte) *raw  { r.b = append(r.b, v...); return r }
func (r *raw) uvarint(v uint64) *raw { r.b = binary.AppendUvarint(r.b, v); return r }
func (r *raw) str(s string) *raw     { r.uvarint(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) u32(v uint32) *raw     { r.b = binary.BigEndian.AppendUint32(r.b, v); return r }
func (r *raw) f64(v float64) *raw {
	r.b = binary.BigEndian.AppendUint64(r.b, math.Float64bits(v))
	return r
}
func (r *raw) blob(p []byte) *raw { r.u32(uint32(len(p))); r.b = append(r.b, p...); return r }
func (r *raw) sealed() []byte {
	return binary.BigEndian.AppendUint32(slices.Clone(r.b), crc32.Checksum(r.b, castagnoli))
}
func (r *raw) counter(name string) *raw { return r.byte(kindCounter).str(name).uvarint(0).f64(1) }

// isCause reports whether err wraps one of the documented causes.
func isCause(err error) bool {
	for _, c := range []error{ErrChecksum, ErrMagic, ErrVersion, ErrLimit, ErrMalformed} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// centroids lists a digest's centroids.
func centroids(td *sketch.Digest) (means, weights []float64) {
	for _, c := range td.Centroids() {
		means = append(means, c.Mean)
		weights = append(weights, c.Weight)
	}
	return means, weights
}

// canonicalSet returns a sketch's encoding after compaction, so that two
// sketches holding the same registers compare equal.
func canonicalSet(t testing.TB, sk *hyperloglog.Sketch) []byte {
	t.Helper()
	c := sk.Clone()
	c.Estimate()
	p, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sameBatch compares two batches. Digest means are compared with a
// tolerance when exact is false: they travel as float32 deltas, so a
// decode–encode round trip may move a mean by a float32 rounding step.
func sameBatch(t testing.TB, want, got *Batch, exact bool) {
	t.Helper()
	if !want.IntervalStart.Equal(got.IntervalStart) || want.Interval != got.Interval || want.Source != got.Source {
		t.Fatalf("header: want %v/%v/%q, got %v/%v/%q", want.IntervalStart, want.Interval, want.Source, got.IntervalStart, got.Interval, got.Source)
	}
	if len(want.Series) != len(got.Series) {
		t.Fatalf("want %d series, got %d", len(want.Series), len(got.Series))
	}
	for i := range want.Series {
		w, g := &want.Series[i], &got.Series[i]
		if w.Key != g.Key || w.Name != g.Name || w.Kind != g.Kind || !slices.Equal(w.Tags, g.Tags) {
			t.Fatalf("series %d: want %q %q %v %q, got %q %q %v %q", i, w.Key, w.Name, w.Kind, w.Tags, g.Key, g.Name, g.Kind, g.Tags)
		}
		if math.Float64bits(w.Value) != math.Float64bits(g.Value) {
			t.Fatalf("series %d: value want %v, got %v", i, w.Value, g.Value)
		}
		if (w.Digest == nil) != (g.Digest == nil) || (w.Set == nil) != (g.Set == nil) {
			t.Fatalf("series %d: payload presence differs", i)
		}
		if w.Digest != nil {
			wm, wc := centroids(w.Digest)
			gm, gc := centroids(g.Digest)
			if !slices.Equal(wc, gc) || len(wm) != len(gm) {
				t.Fatalf("series %d: centroid counts differ: %v vs %v", i, wc, gc)
			}
			scale := 0.0
			for _, m := range wm {
				scale = max(scale, math.Abs(m))
			}
			for j := range wm {
				if exact && wm[j] != gm[j] || !exact && math.Abs(wm[j]-gm[j]) > 1e-6*scale+1e-300 {
					t.Fatalf("series %d: centroid %d mean %v vs %v", i, j, wm[j], gm[j])
				}
			}
		}
		if w.Set != nil && !slices.Equal(canonicalSet(t, w.Set), canonicalSet(t, g.Set)) {
			t.Fatalf("series %d: sets differ", i)
		}
	}
}
