package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
)

// castagnoli is the CRC32-C table; the polynomial has hardware support on
// amd64 and arm64, so the trailer costs next to nothing.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendEncode appends the uncompressed encoding of b to dst and returns
// the extended slice. It reads b's digests and sketches without changing
// them.
//
// It refuses what Decode would reject for its form (an invalid kind, an
// empty name, unsorted or empty tags, a missing or non-finite payload, a
// sketch of another precision), so a local learns of a bug when encoding
// rather than from a global's 400. It does not apply Limits, which are the
// receiver's: a sender keeps its batches under DefaultLimits().MaxSeries.
// On error dst is returned unextended.
func AppendEncode(dst []byte, b *Batch) ([]byte, error) {
	if b.Interval <= 0 || b.Interval > MaxInterval {
		return dst, fmt.Errorf("encode batch: interval %v: must be in (0, %v]", b.Interval, MaxInterval)
	}
	start := b.IntervalStart.UnixNano()
	if start < 0 || !time.Unix(0, start).Equal(b.IntervalStart) {
		return dst, fmt.Errorf("encode batch: interval start %v: not representable as non-negative unix nanoseconds", b.IntervalStart)
	}
	if len(b.Source) > MaxSourceBytes {
		return dst, fmt.Errorf("encode batch: source of %d bytes: at most %d", len(b.Source), MaxSourceBytes)
	}
	orig := len(dst)
	dst = append(dst, magic[:]...)
	dst = append(dst, Version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(start))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Interval))
	dst = appendString(dst, b.Source)
	dst = binary.AppendUvarint(dst, uint64(len(b.Series)))
	for i := range b.Series {
		var err error
		if dst, err = appendSeries(dst, &b.Series[i]); err != nil {
			return dst[:orig], fmt.Errorf("encode batch: series %d (%q): %w", i, b.Series[i].Name, err)
		}
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[orig:], castagnoli)), nil
}

func appendSeries(dst []byte, s *metric.Series) ([]byte, error) {
	kind, ok := wireKind(s.Kind)
	if !ok {
		return dst, fmt.Errorf("kind %v: cannot be forwarded", s.Kind)
	}
	if s.Name == "" {
		return dst, errors.New("empty name")
	}
	if err := checkTags(s.Tags); err != nil {
		return dst, err
	}
	dst = append(dst, kind)
	dst = appendString(dst, s.Name)
	dst = binary.AppendUvarint(dst, uint64(len(s.Tags)))
	for _, tag := range s.Tags {
		dst = appendString(dst, tag)
	}
	switch {
	case s.Kind == metric.Counter || s.Kind == metric.Gauge:
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			return dst, fmt.Errorf("value %v: not finite", s.Value)
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(s.Value)), nil
	case s.Kind == metric.Distribution:
		if s.Dist == nil {
			return dst, errors.New("distribution without its sketch")
		}
		lenAt := len(dst)
		dst = s.Dist.AppendBinary(append(dst, 0, 0, 0, 0)) // length, patched below
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
		return dst, nil
	case s.Kind.IsHistogram():
		if s.Digest == nil {
			return dst, errors.New("histogram without a digest")
		}
		return appendDigest(dst, s)
	default: // Set
		if s.Set == nil {
			return dst, errors.New("set without a sketch")
		}
		return appendSet(dst, s)
	}
}

// appendDigest frames the digest's wire form (package sketch: the
// serialization of github.com/caio/go-tdigest) with a uint32 length,
// written straight into dst.
func appendDigest(dst []byte, s *metric.Series) ([]byte, error) {
	lenAt := len(dst)
	dst = s.Digest.AppendBinary(append(dst, 0, 0, 0, 0)) // length, patched below
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst, nil
}

// appendSet frames hyperloglog's own serialization with a uint32 length.
func appendSet(dst []byte, s *metric.Series) ([]byte, error) {
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0) // length, patched below
	out, err := s.Set.AppendBinary(dst)
	if err != nil {
		return dst[:lenAt], fmt.Errorf("marshal set: %w", err)
	}
	enc := out[lenAt+4:]
	if len(enc) < minSetLen {
		return dst[:lenAt], fmt.Errorf("marshal set: %d bytes, shorter than its header", len(enc))
	}
	if enc[0] != setEncoding {
		return dst[:lenAt], fmt.Errorf("set encoding version %d: want %d", enc[0], setEncoding)
	}
	if enc[1] != sketch.SetPrecision {
		return dst[:lenAt], fmt.Errorf("set precision %d: want %d", enc[1], sketch.SetPrecision)
	}
	binary.BigEndian.PutUint32(out[lenAt:], uint32(len(enc)))
	return out, nil
}

// checkTags enforces the canonical tag form the series key relies on:
// non-empty, free of ',', strictly increasing (so sorted and unique).
func checkTags(tags []string) error {
	for i, tag := range tags {
		if tag == "" {
			return fmt.Errorf("tag %d: empty", i)
		}
		if strings.IndexByte(tag, ',') >= 0 {
			return fmt.Errorf("tag %d (%q): contains ','", i, tag)
		}
		if i > 0 && tags[i-1] >= tag {
			return fmt.Errorf("tag %d (%q): not sorted after %q, or repeated", i, tag, tags[i-1])
		}
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
