package agentsketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The forwarding form of a sketch (wire/FORMAT.md, kind 7): what a local
// sends its global for a d series.
//
//	uvarint  count
//	8 × 4    min, max, sum, avg: float64 bits, big-endian, finite, min <= max
//	uvarint  B, the keys with a count
//	B ×      zigzag varint key minus the previous key (the first minus 0),
//	         then uvarint count >= 1; keys strictly increasing within
//	         ±InfKey, counts adding up to count
//
// Every varint is minimally encoded, so that a form has one encoding.
// Counts are whole (a key's total, not split at MaxBinCount). An empty
// sketch is count 0, zeros and no keys.

// ErrMalformed is wrapped by every DecodeBinary error.
var ErrMalformed = errors.New("malformed agent sketch")

// AppendBinary appends s's forwarding form to dst.
func (s *Sketch) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(s.cnt))
	for _, f := range [...]float64{s.min, s.max, s.sum, s.avg} {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	}
	keys := 0
	s.each(func(Key, uint64) { keys++ })
	dst = binary.AppendUvarint(dst, uint64(keys))
	prev := 0
	s.each(func(k Key, n uint64) {
		dst = binary.AppendVarint(dst, int64(int(k)-prev))
		dst = binary.AppendUvarint(dst, n)
		prev = int(k)
	})
	return dst
}

// DecodeBinary replaces s with the sketch b holds, which must be exactly
// one forwarding form; on error s is empty.
func (s *Sketch) DecodeBinary(b []byte) error {
	s.Reset()
	if err := s.decode(b); err != nil {
		s.Reset()
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (s *Sketch) decode(b []byte) error {
	cnt, n := binary.Uvarint(b)
	if n <= 0 || !minimal(n, cnt) || cnt > math.MaxInt64 {
		return errors.New("count")
	}
	b = b[n:]
	if len(b) < 32 {
		return errors.New("summary truncated")
	}
	var f [4]float64
	for i := range f {
		f[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
		if math.IsNaN(f[i]) || math.IsInf(f[i], 0) {
			return fmt.Errorf("summary value %d not finite", i)
		}
	}
	b = b[32:]
	if f[0] > f[1] {
		return fmt.Errorf("min %v > max %v", f[0], f[1])
	}
	keys, n := binary.Uvarint(b)
	// Each key takes at least two bytes.
	if n <= 0 || !minimal(n, keys) || keys > uint64(len(b)-n)/2 {
		return errors.New("key count")
	}
	b = b[n:]
	var total uint64
	prev := 0
	for i := range keys {
		delta, n := binary.Varint(b)
		if n <= 0 || !minimal(n, uint64(delta)<<1^uint64(delta>>63)) {
			return fmt.Errorf("key %d truncated", i)
		}
		b = b[n:]
		count, n := binary.Uvarint(b)
		if n <= 0 || !minimal(n, count) || count == 0 {
			return fmt.Errorf("count of key %d", i)
		}
		b = b[n:]
		k := int64(prev) + delta
		if (i > 0 && delta <= 0) || k < -int64(InfKey) || k > int64(InfKey) {
			return fmt.Errorf("key %d: %d out of order or range", i, k)
		}
		if total+count < total {
			return errors.New("counts overflow")
		}
		total += count
		prev = int(k)
		s.add(Key(k), count)
	}
	if len(b) != 0 {
		return fmt.Errorf("%d bytes after the last key", len(b))
	}
	if total != cnt {
		return fmt.Errorf("keys count %d, sketch %d", total, cnt)
	}
	s.cnt, s.min, s.max, s.sum, s.avg = int64(cnt), f[0], f[1], f[2], f[3]
	return nil
}

// minimal reports whether n bytes is the shortest uvarint of v.
func minimal(n int, v uint64) bool {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v) == n
}
