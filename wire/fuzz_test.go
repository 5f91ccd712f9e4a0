package wire

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
)

// FuzzDecode checks Decode against arbitrary input:
//   - it never panics: it returns an error wrapping a documented cause, or
//     a batch;
//   - a decoded batch holds no more payload than the input carried, and its
//     centroid arrays stay within a small multiple of it (memory);
//   - a decoded batch encodes, and that encoding decodes to the same batch.
//
// Random bytes rarely pass the checksum, so every input is also tried with
// its trailer recomputed, which lets the fuzzer explore the parser behind it.
//
// Keep minimization short: the golden sets are 16 KB, and minimizing one
// input of that size under the default minute stalls the run.
//
//	go test ./wire -run '^$' -fuzz FuzzDecode -fuzztime 60s -fuzzminimizetime 5s
func FuzzDecode(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add(newRaw(2).counter("a").byte(kindGauge).str("g").uvarint(1).str("t:1").f64(-3).sealed())
	f.Add(newRaw(1).byte(kindTimer).str("t").uvarint(0).blob(digestOf(f, 1, 2, 2, 3, 100).AppendBinary(nil)).sealed())
	f.Add(newRaw(1).byte(kindSet).str("s").uvarint(0).blob([]byte{2, 14, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}).sealed())

	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		checkDecode(t, fixCRC(data))
	})
}

func checkDecode(t *testing.T, data []byte) {
	b, err := Decode(data, Limits{})
	if err != nil {
		if !isCause(err) {
			t.Fatalf("error without a documented cause: %v", err)
		}
		if b != nil {
			t.Fatal("batch returned with an error")
		}
		return
	}
	// A set of another precision (an older local's) decodes without its
	// sketch, to be counted as rejected by the global: nothing to re-encode.
	b.Series = slices.DeleteFunc(b.Series, func(s metric.Series) bool { return s.Kind == metric.Set && s.Set == nil })
	if payload, centroidBytes := decodedSize(t, b); payload > len(data) || centroidBytes > 4*len(data) {
		t.Fatalf("%d input bytes decoded into %d payload bytes and %d bytes of centroids", len(data), payload, centroidBytes)
	}
	enc, err := AppendEncode(nil, b)
	if err != nil {
		t.Fatalf("decoded batch does not encode: %v", err)
	}
	again, err := Decode(enc, Limits{})
	if err != nil {
		t.Fatalf("re-encoded batch does not decode: %v", err)
	}
	sameBatch(t, b, again, false)
}

// decodedSize returns the payload a batch holds, counted as the format
// counts it (names, tags, 8-byte values, digests and sketches in their
// libraries' encodings), and the memory its centroid arrays take.
func decodedSize(t *testing.T, b *Batch) (payload, centroidBytes int) {
	payload = len(b.Source)
	for _, s := range b.Series {
		payload += len(s.Name)
		for _, tag := range s.Tags {
			payload += len(tag)
		}
		switch {
		case s.Digest != nil:
			payload += len(s.Digest.AppendBinary(nil))
			centroidBytes += 16 * len(s.Digest.Centroids()) // a float64 mean and weight
		case s.Dist != nil:
			payload += len(s.Dist.AppendBinary(nil))
		case s.Set != nil:
			p, err := s.Set.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			payload += len(p)
		case s.Kind == metric.Counter || s.Kind == metric.Gauge:
			payload += 8
		default:
			t.Fatal(errors.New("series without its payload"))
		}
	}
	return payload, centroidBytes
}
