package sketch

// Benchmarks of every step a histogram sample and a forwarded digest go
// through, with github.com/caio/go-tdigest/v4 (what the project used
// before, configured as metric.NewDigest does) beside them in the same run
// for comparison. Besides ns/op, measureCPU reports the thread's CPU time
// per sample or digest, which is less disturbed by other processes on a
// shared machine. The figures and how they were taken are in RESULTS.md:
//
//	go test ./sketch -run '^$' -bench . -benchmem -count 3

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/caio/go-tdigest/v4"
)

// hostSamples returns n lognormal samples of a host with its own location
// and spread.
func hostSamples(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 17))
	mu, sigma := 2+2*r.Float64(), 0.5+r.Float64()
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = math.Exp(mu + sigma*r.NormFloat64())
	}
	return xs
}

// flushQuantiles are what a flush asks of a histogram by default
// (percentiles 0.5, 0.75, 0.99 and the median aggregate).
var flushQuantiles = []float64{0.5, 0.75, 0.99}

// BenchmarkAdd is the digest's share of a histogram sample: Add for every
// sample of an interval, then the flush's quantiles, per sample. "reused"
// is a series kept across intervals (Reset); "new" allocates its digest.
func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000} {
		xs := hostSamples(n, 1)
		b.Run(fmt.Sprintf("samples=%d/reused", n), func(b *testing.B) {
			var d Digest
			measureCPU(b, n, "sample", func() {
				for range b.N {
					d.Reset()
					for _, x := range xs {
						d.Add(x, 1)
					}
					for _, q := range flushQuantiles {
						_ = d.Quantile(q)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("samples=%d/new", n), func(b *testing.B) {
			measureCPU(b, n, "sample", func() {
				for range b.N {
					d := new(Digest)
					for _, x := range xs {
						d.Add(x, 1)
					}
					for _, q := range flushQuantiles {
						_ = d.Quantile(q)
					}
				}
			})
		})
	}
}

// caioDigest returns an empty caio digest as metric.NewDigest makes them:
// compression 100, the shared goroutine-safe random source.
func caioDigest() *tdigest.TDigest {
	td, err := tdigest.New(tdigest.Compression(100), tdigest.RandomNumberGenerator(sharedRNG{}))
	if err != nil {
		panic(err)
	}
	return td
}

type sharedRNG struct{}

func (sharedRNG) Float32() float32 { return rand.Float32() }
func (sharedRNG) Intn(n int) int   { return rand.IntN(n) }

// BenchmarkCaioAddWeighted is BenchmarkAdd/reused for caio: AddWeighted
// per sample, then the same quantiles.
func BenchmarkCaioAddWeighted(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		xs := hostSamples(n, 1)
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			td := caioDigest()
			measureCPU(b, n, "sample", func() {
				for range b.N {
					td.Reset()
					for _, x := range xs {
						_ = td.AddWeighted(x, 1)
					}
					for _, q := range flushQuantiles {
						_ = td.Quantile(q)
					}
				}
			})
		})
	}
}

// globalSeries is how many series one benchmark batch spreads over: a
// global merges each host's batch into as many running digests, which
// do not all stay in cache.
const globalSeries = 1000

// hostDigests returns globalSeries 500-sample digests, each encoded too.
func hostDigests(seed uint64) ([]*Digest, [][]byte) {
	ds := make([]*Digest, globalSeries)
	enc := make([][]byte, globalSeries)
	for i := range ds {
		ds[i] = new(Digest)
		for _, x := range hostSamples(500, seed*globalSeries+uint64(i)) {
			ds[i].Add(x, 1)
		}
		enc[i] = ds[i].AppendBinary(nil)
	}
	return ds, enc
}

// runningDigests returns globalSeries digests that have each merged a few
// hosts already, as a global's are a moment into an interval.
func runningDigests() []*Digest {
	gs := make([]*Digest, globalSeries)
	for i := range gs {
		gs[i] = new(Digest)
	}
	for host := range uint64(4) {
		ds, _ := hostDigests(100 + host)
		for i, d := range ds {
			gs[i].Merge(d)
		}
	}
	return gs
}

// BenchmarkMerge merges one 500-sample digest into each of
// globalSeries running digests per op; reported per digest.
func BenchmarkMerge(b *testing.B) {
	ds, enc := hostDigests(1)
	gs := runningDigests()
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			for i, d := range ds {
				gs[i].Merge(d)
			}
		}
	})
	b.ReportMetric(float64(len(enc[0])), "bytes/digest")
}

// BenchmarkDecodeMerge is the global's path from a decompressed batch:
// decode every digest of the batch into one arena (all-or-nothing
// validation), then merge each into its series; per digest.
func BenchmarkDecodeMerge(b *testing.B) {
	_, enc := hostDigests(1)
	gs := runningDigests()
	var arena []Centroid
	runs := make([]Run, len(enc))
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			arena = arena[:0]
			for i, p := range enc {
				var err error
				if runs[i], arena, err = DecodeRun(arena, p); err != nil {
					b.Fatal(err)
				}
			}
			for i, r := range runs {
				gs[i].MergeRun(r)
			}
		}
	})
}

// BenchmarkGunzipDecodeMerge is the whole of a global's work per
// forwarded digest that this package can see: gunzip a batch body of
// globalSeries length-prefixed 500-sample digests, decode them all, merge
// each into its series. The target is 250,000 digests per second per core,
// 4 µs each. (The real batch also carries names and tags.)
func BenchmarkGunzipDecodeMerge(b *testing.B) {
	_, enc := hostDigests(1)
	var raw []byte
	for _, p := range enc {
		raw = binary.BigEndian.AppendUint32(raw, uint32(len(p)))
		raw = append(raw, p...)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write(raw); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	gs := runningDigests()
	var arena []Centroid
	runs := make([]Run, len(enc))
	body := make([]byte, 0, len(raw))
	zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			if err := zr.Reset(bytes.NewReader(gz.Bytes())); err != nil {
				b.Fatal(err)
			}
			buf := bytes.NewBuffer(body[:0])
			if _, err := io.Copy(buf, zr); err != nil {
				b.Fatal(err)
			}
			p := buf.Bytes()
			arena = arena[:0]
			for i := range runs {
				n := binary.BigEndian.Uint32(p)
				if runs[i], arena, err = DecodeRun(arena, p[4:4+n]); err != nil {
					b.Fatal(err)
				}
				p = p[4+n:]
			}
			for i, r := range runs {
				gs[i].MergeRun(r)
			}
		}
	})
	b.ReportMetric(float64(gz.Len())/globalSeries, "gzip-bytes/digest")
}

// BenchmarkDecodeRun is the decoding half of BenchmarkDecodeMerge.
func BenchmarkDecodeRun(b *testing.B) {
	_, enc := hostDigests(1)
	var arena []Centroid
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			arena = arena[:0]
			for _, p := range enc {
				var err error
				if _, arena, err = DecodeRun(arena, p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkCaioMergeDestructive merges a caio 500-sample digest into each
// of globalSeries running caio digests, as metric.Series.Merge did.
// MergeDestructive leaves its argument shuffled but whole, so the same
// host digests are merged again every op.
func BenchmarkCaioMergeDestructive(b *testing.B) {
	ds := make([]*tdigest.TDigest, globalSeries)
	gs := make([]*tdigest.TDigest, globalSeries)
	for i := range ds {
		ds[i], gs[i] = caioDigest(), caioDigest()
		for _, x := range hostSamples(500, globalSeries+uint64(i)) {
			_ = ds[i].Add(x)
		}
		for _, x := range hostSamples(2000, 100*globalSeries+uint64(i)) {
			_ = gs[i].Add(x)
		}
	}
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			for i, d := range ds {
				_ = gs[i].MergeDestructive(d)
			}
		}
	})
}

// BenchmarkCaioFromBytes decodes a caio 500-sample digest as wire's
// decodeDigest did: an empty digest, FromBytes, and a walk over the
// centroids to validate them.
func BenchmarkCaioFromBytes(b *testing.B) {
	enc := make([][]byte, globalSeries)
	for i := range enc {
		td := caioDigest()
		for _, x := range hostSamples(500, globalSeries+uint64(i)) {
			_ = td.Add(x)
		}
		enc[i] = td.ToBytes(nil)
	}
	empty := caioDigest()
	measureCPU(b, globalSeries, "digest", func() {
		for range b.N {
			for _, p := range enc {
				td := empty.Clone()
				if err := td.FromBytes(p); err != nil {
					b.Fatal(err)
				}
				td.ForEachCentroid(func(float64, uint64) bool { return true })
			}
		}
	})
	b.ReportMetric(float64(len(enc[0])), "bytes/digest")
}

// BenchmarkAppendBinary encodes a digest into a reused buffer, as a
// local's forwarder does for every histogram series.
func BenchmarkAppendBinary(b *testing.B) {
	for _, n := range []int{500, 100_000} {
		var d Digest
		for _, x := range hostSamples(n, 1) {
			d.Add(x, 1)
		}
		buf := d.AppendBinary(nil)
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			measureCPU(b, 1, "digest", func() {
				for range b.N {
					buf = d.AppendBinary(buf[:0])
				}
			})
		})
	}
}
