package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

var update = flag.Bool("update", false, "rewrite the golden payloads in testdata/")

// goldenBatches are the payloads kept in testdata/. They are built from
// seeded data; the digests' centroid layout still depends on the shared
// random source, which is why the files, not this code, are the reference.
func goldenBatches(t testing.TB) map[string]*Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	values := func(n int, f func() float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	hist := series(metric.Histogram, "api.payload_bytes", "env:prod")
	hist.Digest = digestOf(t, values(500, func() float64 { return rng.Float64() * 100 })...)
	timer := series(metric.Histogram, "api.latency", "endpoint:/v1/x", "env:prod")
	timer.Digest = digestOf(t, values(2000, func() float64 { return math.Exp(rng.NormFloat64()) })...)
	dist := series(metric.Histogram, "queue.depth")
	dist.Digest = digestOf(t, 1, 2, 3)
	small := series(metric.Set, "users.unique", "env:prod")
	small.Set = setOf("user-", 50)
	dense := series(metric.Set, "sessions.unique")
	dense.Set = setOf("session-", 10_000)
	counter := series(metric.Counter, "jobs.done", "queue:a", "region:eu")
	counter.Value = 12.5
	gauge := series(metric.Gauge, "pool.size")
	gauge.Value = -4
	// A d series since it is a kind of its own: kind 7, the Agent's sketch.
	distribution := series(metric.Distribution, "req.latency", "env:prod")
	distribution.Dist = new(agentsketch.Sketch)
	for _, v := range []float64{1, 2, 2, 3, 250, -0.5, 0} {
		distribution.Dist.Insert(v, 2)
	}

	start := testStart
	return map[string]*Batch{
		"empty.bin":      {IntervalStart: start, Interval: 10 * time.Second, Source: "host-a"},
		"scalars.bin":    {IntervalStart: start, Interval: 10 * time.Second, Source: "host-a", Series: []metric.Series{counter, gauge}},
		"histograms.bin": {IntervalStart: start, Interval: 10 * time.Second, Source: "host-b", Series: []metric.Series{hist, timer, dist}},
		"sets.bin":       {IntervalStart: start, Interval: 2 * time.Second, Source: "host-c", Series: []metric.Series{small, dense}},
		"distributions.bin": {IntervalStart: start, Interval: 10 * time.Second, Source: "host-d",
			Series: []metric.Series{distribution, dist}},
	}
}

func TestGolden(t *testing.T) {
	for name, want := range goldenBatches(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, mustEncode(t, want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			got, err := Decode(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			// The sketches' content, not their random layout, is what the
			// code pins: compare what is deterministic.
			if !got.IntervalStart.Equal(want.IntervalStart) || got.Interval != want.Interval || got.Source != want.Source || len(got.Series) != len(want.Series) {
				t.Fatalf("header or series count differ: %+v", got)
			}
			for i := range want.Series {
				w, g := want.Series[i], got.Series[i]
				if g.Key != w.Key || g.Name != w.Name || g.Kind != w.Kind || g.Value != w.Value || strings.Join(g.Tags, ",") != strings.Join(w.Tags, ",") {
					t.Errorf("series %d: got %+v, want %+v", i, g, w)
				}
				if w.Digest != nil && g.Digest.Count() != w.Digest.Count() {
					t.Errorf("series %d: digest count %v, want %v", i, g.Digest.Count(), w.Digest.Count())
				}
				if w.Set != nil && g.Set.Estimate() != w.Set.Estimate() {
					t.Errorf("series %d: set estimate %d, want %d", i, g.Set.Estimate(), w.Set.Estimate())
				}
			}
			// Decoding then encoding reproduces the file byte for byte.
			if again := mustEncode(t, got); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs from the golden file (%d vs %d bytes)", len(again), len(data))
			}
		})
	}
}

// TestLayout pins the format to FORMAT.md with a batch assembled by hand.
func TestLayout(t *testing.T) {
	s := series(metric.Counter, "a", "b:1")
	s.Value = 2.5
	got := mustEncode(t, &Batch{IntervalStart: time.Unix(0, 0x0102030405060708), Interval: 10 * time.Second, Source: "h", Series: []metric.Series{s}})
	want := []byte{
		'V', 'L', 'F', 'B', // magic
		1,                                              // version
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // interval start, unix ns
		0x00, 0x00, 0x00, 0x02, 0x54, 0x0b, 0xe4, 0x00, // interval, ns (10 s)
		1, 'h', // source
		1,      // series count
		1,      // kind: counter
		1, 'a', // name
		1,                // tag count
		3, 'b', ':', '1', // tag
		0x40, 0x04, 0, 0, 0, 0, 0, 0, // 2.5
	}
	want = binary.BigEndian.AppendUint32(want, 0x5d1e2f7a) // CRC32-C, checked below
	if !bytes.Equal(got[:len(got)-4], want[:len(want)-4]) {
		t.Fatalf("layout:\n got %x\nwant %x", got, want)
	}
	if crc := binary.BigEndian.Uint32(got[len(got)-4:]); crc != binary.BigEndian.Uint32(fixCRC(want)[len(want)-4:]) {
		t.Fatalf("trailer %08x is not the CRC32-C of the body", crc)
	}
}

func TestRoundTrip(t *testing.T) {
	for name, b := range goldenBatches(t) {
		t.Run(name, func(t *testing.T) {
			enc := mustEncode(t, b)
			got, err := Decode(enc, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			// Means travel as float32 deltas: close, not equal.
			sameBatch(t, b, got, false)
		})
	}
	t.Run("appends", func(t *testing.T) {
		b := goldenBatches(t)["scalars.bin"]
		prefix := []byte("prefix")
		enc, err := AppendEncode(prefix, b)
		if err != nil || !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatalf("AppendEncode must append: %v", err)
		}
		if _, err := Decode(enc[len(prefix):], Limits{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDecoderReuse: a Decoder hands each batch digests equal to a fresh
// decode's, whether the batch fits the memory kept from the last one or
// needs more (several digest and centroid chunks), and a failed decode
// leaves it usable.
func TestDecoderReuse(t *testing.T) {
	small := goldenBatches(t)["histograms.bin"]
	if small == nil {
		t.Fatal("golden batch histograms.bin is missing")
	}
	big := &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "big"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range digestChunkLen + 300 { // two digest chunks
		s := series(metric.Histogram, "lat", fmt.Sprintf("i:%d", i))
		s.Digest = new(sketch.Digest)
		for range 200 { // past ExactLimit: ~100 centroids each, several centroid chunks
			s.Digest.Add(rng.NormFloat64(), 1)
		}
		big.Series = append(big.Series, s)
	}
	var dec Decoder
	for round, b := range []*Batch{small, big, small, big} {
		enc := mustEncode(t, b)
		if _, err := dec.Decode(enc[:len(enc)-1], Limits{}); err == nil {
			t.Fatal("a truncated batch decoded")
		}
		got, err := dec.Decode(enc, Limits{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		fresh, err := Decode(enc, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		sameBatch(t, fresh, got, true)
	}
	if n := len(dec.centroids.all); n > keptChunks+1 {
		t.Errorf("decoder holds %d centroid chunks after a reset, want ≤ %d", n, keptChunks+1)
	}
}

func TestEncodeRejects(t *testing.T) {
	ok := series(metric.Counter, "x")
	for _, tc := range []struct {
		name string
		b    Batch
		want string
	}{
		{"zero interval", Batch{IntervalStart: testStart}, "interval 0s"},
		{"huge interval", Batch{IntervalStart: testStart, Interval: 48 * time.Hour}, "interval 48h"},
		{"start before 1970", Batch{IntervalStart: time.Unix(-10, 0), Interval: time.Second}, "interval start"},
		{"long source", Batch{IntervalStart: testStart, Interval: time.Second, Source: strings.Repeat("h", MaxSourceBytes+1)}, "source of"},
		{"bad kind", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{{Name: "x", Kind: 0}}}, "cannot be forwarded"},
		{"empty name", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{{Kind: metric.Counter}}}, "empty name"},
		{"unsorted tags", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{series(metric.Counter, "x", "b", "a")}}, "not sorted"},
		{"repeated tag", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{series(metric.Counter, "x", "a", "a")}}, "repeated"},
		{"comma in tag", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{series(metric.Counter, "x", "a,b")}}, "contains ','"},
		{"nan", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{{Name: "x", Kind: metric.Gauge, Value: math.NaN()}}}, "not finite"},
		{"no digest", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{ok, series(metric.Histogram, "t")}}, "series 1"},
		{"no sketch", Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{series(metric.Set, "s")}}, "without a sketch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendEncode(dst, &tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed on error: %q", out)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := mustEncode(t, goldenBatches(t)["scalars.bin"])
	digest := digestOf(t, 1, 2, 3).AppendBinary(nil)
	set := setOf("m", 10)
	setBytes, _ := set.MarshalBinary()
	mutDigest := func(f func(p []byte) []byte) []byte { return f(append([]byte(nil), digest...)) }
	flipped := append([]byte(nil), good...)
	flipped[30] ^= 0x10

	for _, tc := range []struct {
		name  string
		data  []byte
		lim   Limits
		cause error
		want  string
	}{
		{"empty", nil, Limits{}, ErrMagic, ""},
		{"bad magic", append([]byte("VLFX"), good[4:]...), Limits{}, ErrMagic, ""},
		{"json", []byte(`{"series":[]}`), Limits{}, ErrMagic, ""},
		{"unknown version", append(append([]byte("VLFB"), 2), good[5:]...), Limits{}, ErrVersion, "version 2"},
		{"magic only", []byte("VLFB"), Limits{}, ErrMalformed, "shorter than the smallest batch"},
		{"bad crc", append(good[:len(good)-1:len(good)-1], good[len(good)-1]^1), Limits{}, ErrChecksum, "trailer says"},
		{"bit flip", flipped, Limits{}, ErrChecksum, ""},
		{"unknown kind", newRaw(1).byte(9).str("x").uvarint(0).f64(1).sealed(), Limits{}, ErrMalformed, "unknown kind 9"},
		{"kind zero", newRaw(1).byte(0).str("x").uvarint(0).f64(1).sealed(), Limits{}, ErrMalformed, "unknown kind 0"},
		{"too many series", newRaw(3).counter("a").counter("b").counter("c").sealed(), Limits{MaxSeries: 2}, ErrLimit, "3 series: at most 2"},
		{"series count overflow", newRaw(1 << 62).sealed(), Limits{MaxSeries: math.MaxInt}, ErrMalformed, "declared in"},
		{"series count beyond bytes", newRaw(1000).counter("a").sealed(), Limits{}, ErrMalformed, "1000 series declared"},
		{"fewer series than declared", newRaw(3).counter("a").counter("b").bytes(make([]byte, 12)...).sealed(), Limits{}, ErrMalformed, "series 2"},
		{"trailing bytes", newRaw(1).counter("a").bytes(0).sealed(), Limits{}, ErrMalformed, "after the last series"},
		{"uvarint overflow", newRaw(1).byte(kindCounter).bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01).uvarint(0).f64(1).sealed(), Limits{}, ErrMalformed, "overflows"},
		{"non-minimal uvarint", newRaw(1).byte(kindCounter).bytes(0x81, 0x00, 'x').uvarint(0).f64(1).sealed(), Limits{}, ErrMalformed, "minimally"},
		{"name length overflow", newRaw(1).byte(kindCounter).uvarint(1 << 40).counter("pad").sealed(), Limits{}, ErrLimit, "name of 1099511627776 bytes"},
		{"name length beyond bytes", newRaw(1).byte(kindCounter).uvarint(100).bytes('x').uvarint(0).f64(1).sealed(), Limits{}, ErrMalformed, "only"},
		{"long name", newRaw(1).counter(strings.Repeat("n", 20)).sealed(), Limits{MaxNameBytes: 10}, ErrLimit, "name of 20 bytes"},
		{"empty name", newRaw(1).byte(kindCounter).str("").uvarint(0).f64(1).bytes(0).sealed(), Limits{}, ErrMalformed, "empty name"},
		{"too many tags", newRaw(1).byte(kindCounter).str("x").uvarint(3).str("a").str("b").str("c").f64(1).sealed(), Limits{MaxTags: 2}, ErrLimit, "3 tags"},
		{"tag count beyond bytes", newRaw(1).byte(kindCounter).str("x").uvarint(500).f64(1).sealed(), Limits{}, ErrMalformed, "500 tags declared"},
		{"tag bytes", newRaw(1).byte(kindCounter).str("x").uvarint(2).str("aaaa").str("bbbb").f64(1).sealed(), Limits{MaxTagBytes: 6}, ErrLimit, "tags of 8 bytes"},
		{"unsorted tags", newRaw(1).byte(kindCounter).str("x").uvarint(2).str("b").str("a").f64(1).sealed(), Limits{}, ErrMalformed, "not sorted"},
		{"empty tag", newRaw(1).byte(kindCounter).str("x").uvarint(1).str("").f64(1).bytes(0).sealed(), Limits{}, ErrMalformed, "empty"},
		{"comma tag", newRaw(1).byte(kindCounter).str("x").uvarint(1).str("a,b").f64(1).sealed(), Limits{}, ErrMalformed, "contains ','"},
		{"nan value", newRaw(1).byte(kindGauge).str("x").uvarint(0).f64(math.NaN()).sealed(), Limits{}, ErrMalformed, "not finite"},
		{"inf value", newRaw(1).byte(kindCounter).str("x").uvarint(0).f64(math.Inf(1)).sealed(), Limits{}, ErrMalformed, "not finite"},
		{"zero interval", func() []byte {
			r := newRaw(0)
			binary.BigEndian.PutUint64(r.b[13:], 0)
			return r.sealed()
		}(), Limits{}, ErrMalformed, "interval 0s"},
		{"negative start", func() []byte {
			r := newRaw(0)
			binary.BigEndian.PutUint64(r.b[5:], math.MaxUint64)
			return r.sealed()
		}(), Limits{}, ErrMalformed, "negative"},
		{"distribution sketch malformed", newRaw(1).byte(kindDistributionSeries).str("d").uvarint(0).blob(append(append([]byte{1}, make([]byte, 32)...), 0)).sealed(), Limits{}, ErrMalformed, "agent sketch"},
		{"distribution sketch too large", newRaw(1).byte(kindDistributionSeries).str("d").uvarint(0).blob(make([]byte, 64)).sealed(), Limits{MaxDigestBytes: 63}, ErrLimit, "distribution sketch of"},
		{"digest length beyond bytes", newRaw(1).byte(kindTimer).str("t").uvarint(0).u32(1 << 30).bytes(make([]byte, 16)...).sealed(), Limits{MaxDigestBytes: math.MaxInt32}, ErrMalformed, "only"},
		{"oversize digest", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(digest).sealed(), Limits{MaxDigestBytes: len(digest) - 1}, ErrLimit, "digest of"},
		{"digest encoding", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte { p[3] = 3; return p })).sealed(), Limits{}, ErrMalformed, "encoding 3"},
		{"digest compression nan", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte {
			binary.BigEndian.PutUint64(p[4:], math.Float64bits(math.NaN()))
			return p
		})).sealed(), Limits{}, ErrMalformed, "compression NaN"},
		{"digest centroid count", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[12:], 1<<22)
			return p
		})).sealed(), Limits{}, ErrMalformed, "4194304 centroids declared"},
		{"digest trailing bytes", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(append(append([]byte(nil), digest...), 1)).sealed(), Limits{}, ErrMalformed, "after the last count"},
		{"digest zero count", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte { p[len(p)-1] = 0; return p })).sealed(), Limits{}, ErrMalformed, "count 0"},
		{"digest unsorted", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[20:], math.Float32bits(-0.5)) // second mean delta
			return p
		})).sealed(), Limits{}, ErrMalformed, "means must not decrease"},
		{"digest nan mean", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(mutDigest(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[16:], math.Float32bits(float32(math.NaN())))
			return p
		})).sealed(), Limits{}, ErrMalformed, "not finite"},
		{"digest count overflow", newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(func() []byte {
			p := append([]byte(nil), digest[:16]...)
			binary.BigEndian.PutUint32(p[12:], 2)
			p = binary.BigEndian.AppendUint32(p, math.Float32bits(1))
			p = binary.BigEndian.AppendUint32(p, math.Float32bits(1))
			p = binary.AppendUvarint(p, 1<<53)
			return binary.AppendUvarint(p, 1)
		}()).sealed(), Limits{}, ErrMalformed, "beyond 2^53"},
		{"oversize set", newRaw(1).byte(kindSet).str("s").uvarint(0).blob(setBytes).sealed(), Limits{MaxSetBytes: len(setBytes) - 1}, ErrLimit, "set of"},
		{"set version 1", newRaw(1).byte(kindSet).str("s").uvarint(0).blob(func() []byte {
			p := append([]byte(nil), setBytes...)
			p[0] = 1
			return p
		}()).sealed(), Limits{}, ErrMalformed, "encoding version 1"},
		{"set garbage", newRaw(1).byte(kindSet).str("s").uvarint(0).blob([]byte{2, 14, 0, 1, 0xff, 0xff, 0xff, 0xff}).sealed(), Limits{}, ErrMalformed, "hyperloglog"},
		{"set short", newRaw(1).byte(kindSet).str("ssssss").uvarint(0).blob([]byte{2, 14}).sealed(), Limits{}, ErrMalformed, "shorter than its header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Decode(tc.data, tc.lim)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", b)
			}
			if !errors.Is(err, tc.cause) {
				t.Fatalf("error %q does not wrap %q", err, tc.cause)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "decode batch: ") {
				t.Fatalf("error %q: want it to contain %q", err, tc.want)
			}
			if b != nil {
				t.Fatal("a batch came back with the error")
			}
		})
	}
}

// TestTruncatedAndFlipped cuts a batch at every offset and flips every bit
// of it: each variant is rejected with a documented cause.
func TestTruncatedAndFlipped(t *testing.T) {
	b := goldenBatches(t)["histograms.bin"]
	b.Series = append(b.Series, goldenBatches(t)["scalars.bin"].Series...)
	small := series(metric.Set, "s")
	small.Set = setOf("m", 20)
	b.Series = append(b.Series, small)
	data := mustEncode(t, b)
	for n := range len(data) {
		if _, err := Decode(data[:n], Limits{}); err == nil || !isCause(err) {
			t.Fatalf("truncated to %d of %d bytes: err %v", n, len(data), err)
		}
	}
	flipped := make([]byte, len(data))
	for i := range data {
		for bit := range 8 {
			copy(flipped, data)
			flipped[i] ^= 1 << bit
			if _, err := Decode(flipped, Limits{}); err == nil || !isCause(err) {
				t.Fatalf("bit %d of byte %d flipped: err %v", bit, i, err)
			}
		}
	}
}

// TestDecodeAllocationBound feeds inputs built to make a careless decoder
// allocate far beyond their size, and measures what Decode allocates.
func TestDecodeAllocationBound(t *testing.T) {
	manyCounters := newRaw(20_000)
	for i := range 20_000 {
		manyCounters.counter(string(rune('a' + i%26)))
	}
	bigClaims := func() []byte {
		// A digest declaring as many centroids as the library allows,
		// padded so that the declared count would fit 4-byte means only.
		p := make([]byte, 16+4*(1<<15))
		binary.BigEndian.PutUint32(p, 2) // the encoding
		binary.BigEndian.PutUint64(p[4:], math.Float64bits(100))
		binary.BigEndian.PutUint32(p[12:], 1<<15)
		return newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(p).sealed()
	}()
	sparseClaim := newRaw(1).byte(kindSet).str("s").uvarint(0).blob([]byte{2, 14, 0, 1, 0, 0, 0x40, 0}).sealed()
	manyTags := newRaw(1).byte(kindCounter).str("x").uvarint(60_000).bytes(make([]byte, 100)...).sealed()
	dense := series(metric.Set, "s")
	dense.Set = setOf("m", 20_000)
	denseSet := mustEncode(t, &Batch{IntervalStart: testStart, Interval: time.Second, Series: []metric.Series{dense}})

	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"20k tiny counters", manyCounters.sealed(), true},
		{"digest claiming 32768 centroids", bigClaims, false},
		{"sparse set claiming 16k keys", sparseClaim, false},
		{"60k tags claimed", manyTags, false},
		{"dense set", denseSet, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Decode(tc.data, Limits{MaxTags: 100_000})
			runtime.ReadMemStats(&after)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			// 16× covers the worst case, a batch of minimal counter
			// series (an 88-byte metric.Series and two small strings
			// per 12 wire bytes); the constant covers fixed overhead.
			if limit := 16*uint64(len(tc.data)) + 64<<10; alloc > limit {
				t.Fatalf("allocated %d bytes decoding %d (limit %d)", alloc, len(tc.data), limit)
			}
			t.Logf("%d bytes in, %d bytes allocated, err=%v", len(tc.data), alloc, err)
		})
	}
}

// TestPayloadSizes reports what forwarding one series costs on the wire
// (go test ./wire -run TestPayloadSizes -v).
func TestPayloadSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	td := new(sketch.Digest)
	for range 10_000 {
		td.Add(rng.ExpFloat64()*50, 1)
	}
	hist := series(metric.Histogram, "api.latency", "env:prod")
	hist.Digest = td
	set := series(metric.Set, "users.unique", "env:prod")
	set.Set = setOf("user-", 10_000)
	small := series(metric.Set, "users.unique", "env:prod")
	small.Set = setOf("user-", 100)
	empty := mustEncode(t, &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "host"})
	for _, s := range []metric.Series{hist, set, small} {
		enc := mustEncode(t, &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "host", Series: []metric.Series{s}})
		per := len(enc) - len(empty)
		switch {
		case s.Digest != nil:
			t.Logf("digest of 10k samples: %d centroids, %d bytes per series on the wire", len(must(centroids(s.Digest))), per)
		default:
			t.Logf("set with estimate %d: %d bytes per series on the wire", s.Set.Estimate(), per)
		}
		if per > 24_000 { // a dense set at precision 17 takes 128 KiB: this one is still sparse
			t.Errorf("series of %d bytes: more than expected", per)
		}
	}
}

func must[T, U any](v T, _ U) T { return v }

// BenchmarkDecode measures decoding a batch of 1000 timer digests of
// 1000 samples each.
//
//	go test ./wire -run '^$' -bench . -benchmem -count 6
func BenchmarkDecode(b *testing.B) {
	data := benchBatch(b)
	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(data, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reused", func(b *testing.B) {
		var dec Decoder
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dec.Decode(data, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	data := benchBatch(b)
	batch, _ := Decode(data, Limits{})
	buf := make([]byte, 0, len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendEncode(buf[:0], batch); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBatch(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	batch := &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "host"}
	for i := range 1000 {
		s := series(metric.Histogram, "api.latency", "endpoint:"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		s.Digest = new(sketch.Digest)
		for range 1000 {
			s.Digest.Add(rng.ExpFloat64(), 1)
		}
		batch.Series = append(batch.Series, s)
	}
	return mustEncode(b, batch)
}

// TestKeysAgreeWithAggregator: what a local aggregator forwards decodes to
// the same keys, names and tags, and merges on a global aggregator.
func TestKeysAgreeWithAggregator(t *testing.T) {
	local, err := aggregate.New(aggregate.Config{Hostname: "l1"})
	if err != nil {
		t.Fatal(err)
	}
	var samples []metric.Sample
	for _, line := range []struct {
		name, tags, member string
		kind               metric.Kind
	}{
		{"lat", "svc:api,env:prod", "", metric.Histogram},
		{"lat", "env:prod,svc:api", "", metric.Histogram},
		{"size", "", "", metric.Histogram},
		{"users", "host:other,env:prod", "alice", metric.Set},
		{"jobs", "veneurglobalonly,z:1,a:1", "", metric.Counter},
		{"temp", "veneurglobalonly", "", metric.Gauge},
	} {
		samples = append(samples, metric.Sample{Name: []byte(line.name), Tags: []byte(line.tags), SetMember: []byte(line.member), Value: 3, Rate: 1, Kind: line.kind})
	}
	local.Push(samples)
	fwd := local.Flush(testStart.Add(10*time.Second), 10*time.Second).Forward
	if len(fwd) != 5 { // the two "lat" lines are one series
		t.Fatalf("forwarded %d series", len(fwd))
	}
	got, err := Decode(mustEncode(t, &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "l1", Series: fwd}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range got.Series {
		if s.Key != fwd[i].Key || s.Name != fwd[i].Name || strings.Join(s.Tags, ",") != strings.Join(fwd[i].Tags, ",") {
			t.Errorf("series %d: decoded %q %q %q, forwarded %q %q %q", i, s.Key, s.Name, s.Tags, fwd[i].Key, fwd[i].Name, fwd[i].Tags)
		}
	}
	fleet, err := global.New(global.Config{Interval: 10 * time.Second, Percentiles: metric.MustPercentiles(0.5), Now: func() time.Time { return testStart.Add(11 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	fleet.Import(got.IntervalStart, got.Interval, got.Series)
	points, _ := fleet.Flush(testStart.Add(20*time.Second), 10*time.Second)
	if len(points) != 5 { // 2 percentiles, a set, a counter, a gauge
		t.Fatalf("global flushed %d points: %+v", len(points), points)
	}
	for _, p := range points {
		if p.Host != "" {
			t.Errorf("point %s has host %q", p.Name, p.Host)
		}
	}
}

// TestOlderKindCodesDecodeAsHistograms: batches from locals that still
// tell timers (4) and distributions (5) from histograms (3) decode into
// the one histogram kind, keyed alike, so they merge with new locals'.
func TestOlderKindCodesDecodeAsHistograms(t *testing.T) {
	for _, code := range []byte{kindHistogram, kindTimer, kindDistribution} {
		s := series(metric.Histogram, "lat", "env:prod")
		s.Digest = new(sketch.Digest)
		s.Digest.Add(1, 1)
		data := mustEncode(t, &Batch{IntervalStart: testStart, Interval: 10 * time.Second, Source: "old", Series: []metric.Series{s}})
		// The kind byte follows the header, the 3-byte source and the
		// series count; the CRC is recomputed over the patched body.
		data[headerFixedLen+1+len("old")+1] = code
		body := data[:len(data)-trailerLen]
		binary.BigEndian.PutUint32(data[len(body):], crc32.Checksum(body, castagnoli))
		got, err := Decode(data, Limits{})
		if err != nil {
			t.Fatalf("kind %d: %v", code, err)
		}
		if g := got.Series[0]; g.Kind != metric.Histogram || g.Key != "histogram|lat|env:prod" {
			t.Errorf("kind %d: decoded %v %q, want histogram|lat|env:prod", code, g.Kind, g.Key)
		}
	}
}

// TestOlderLocalBatches: batches an older local wrote still decode: its
// digests (written by the t-digest library itself) with every sample, and
// its precision-14 sets without their sketch, so that a global merges the
// rest of the batch and counts those sets as rejected.
func TestOlderLocalBatches(t *testing.T) {
	hist, err := os.ReadFile(filepath.Join("testdata", "older-histograms-caio.bin"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(hist, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := goldenBatches(t)["histograms.bin"]
	for i, s := range b.Series {
		if s.Digest == nil || s.Digest.Count() != want.Series[i].Digest.Count() {
			t.Errorf("series %d: digest %v, want the count %v", i, s.Digest, want.Series[i].Digest.Count())
		}
	}
	sets, err := os.ReadFile(filepath.Join("testdata", "older-sets-p14.bin"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = Decode(sets, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range b.Series {
		if s.Kind != metric.Set || s.Set != nil || s.Key == "" {
			t.Errorf("series %d: %+v, want a keyed set without its sketch", i, s)
		}
	}
}
