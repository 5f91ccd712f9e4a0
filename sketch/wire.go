package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The wire form of a digest is github.com/caio/go-tdigest/v4's
// serialization ("encoding 2", its ToBytes and FromBytes), so that a
// global of either implementation reads a local of the other:
//
//	offset  size       field
//	0       4          uint32 BE encoding = 2
//	4       8          float64 BE compression
//	12      4          uint32 BE centroid count C
//	16      4×C        float32 BE mean deltas, the first from 0
//	        C uvarint  counts, each >= 1
//
// Counts are integers there: AppendBinary rounds each centroid's weight to
// the nearest integer, at least 1, so fractional weights (3.333 for rate
// 0.3) are exact in memory and rounded on the wire. Means travel as
// float32 deltas, so a value comes back within about 1e-7 of its
// magnitude plus that of the values before it, and values beyond float32's
// range (±3.4e38) do not come back at all (they are clamped into it).
//
// The format has no field for the minimum, maximum or exactness. A Digest
// does not need one: its first and last centroids are its minimum and
// maximum, and a digest is written as exact exactly when its means strictly
// increase and there are at most ExactLimit of them (a compressed digest
// that small is written with one centroid split in two halves of equal
// mean; if all its counts round to 1 it reads as exact, which it nearly
// is). DecodeRun reads them back that way; a caio digest of few, distinct
// centroids reads as exact too, as caio keeps small digests' samples.
//
// The decoder rejects a total count beyond 2^53, so a digest of more total
// weight than that (9e15) cannot travel.
const (
	wireEncoding    = 2
	wireHeaderLen   = 16
	minCentroidLen  = 5 // a float32 delta and a one-byte count
	minCompression  = 1
	maxCompression  = 1000
	maxWireCount    = 1 << 53 // total count: beyond it float64 weights lose integers
	wireCompression = float64(Compression)
)

// AppendBinary appends the wire form of d to dst and returns it. It
// allocates only when dst lacks room. It folds pending samples first.
func (d *Digest) AppendBinary(dst []byte) []byte {
	d.fold()
	cs := d.cs[:d.n]
	split := -1
	if d.compressed && len(cs) <= ExactLimit {
		// It would read as exact: write its heaviest centroid as two.
		heaviest := 0.0
		for i, c := range cs {
			if wireCount(c.Weight) >= 2 && c.Weight > heaviest {
				split, heaviest = i, c.Weight
			}
		}
	}
	return appendRun(dst, cs, split)
}

// appendRun appends the wire form of the sorted centroids cs, writing
// cs[split] (if split >= 0) as two centroids of the same mean.
func appendRun(dst []byte, cs []Centroid, split int) []byte {
	n := len(cs)
	size := wireHeaderLen + 4*n
	for _, c := range cs {
		size += uvarintLen(wireCount(c.Weight))
	}
	if split >= 0 {
		n++
		w := wireCount(cs[split].Weight)
		size += 4 + uvarintLen(w/2) + uvarintLen(w-w/2) - uvarintLen(w)
	}
	start := len(dst)
	if cap(dst)-start < size {
		grown := make([]byte, start, start+size)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+size]
	p := dst[start:]

	binary.BigEndian.PutUint32(p, wireEncoding)
	binary.BigEndian.PutUint64(p[4:], math.Float64bits(wireCompression))
	binary.BigEndian.PutUint32(p[12:], uint32(n))
	deltas := p[wireHeaderLen : wireHeaderLen+4*n]
	// Deltas from the previous float64 mean, as caio's ToBytes computes
	// them, so that both write the same bytes for the same centroids.
	var prev float64
	k := 0
	for i, c := range cs {
		// Beyond float32's range a delta would be infinite, which no
		// decoder accepts: one absurd sample must not get a whole batch
		// rejected, so it is written as the largest float32 instead.
		delta := min(max(c.Mean-prev, -math.MaxFloat32), math.MaxFloat32)
		binary.BigEndian.PutUint32(deltas[k:], math.Float32bits(float32(delta)))
		k += 4
		prev = c.Mean
		if i == split {
			binary.BigEndian.PutUint32(deltas[k:], 0)
			k += 4
		}
	}
	counts := p[wireHeaderLen+4*n:]
	k = 0
	for i, c := range cs {
		w := wireCount(c.Weight)
		if i == split {
			k += binary.PutUvarint(counts[k:], w/2)
			w -= w / 2
		}
		if w < 0x80 {
			counts[k] = byte(w)
			k++
			continue
		}
		k += binary.PutUvarint(counts[k:], w)
	}
	return dst
}

// wireCount rounds a weight to the wire's integer count: the nearest
// integer, at least 1, at most the decoder's bound on a total.
func wireCount(w float64) uint64 {
	// Through int64: one instruction, where converting to uint64 branches.
	return uint64(int64(min(max(w, 1), maxWireCount) + 0.5))
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// DecodeRun decodes the wire form of a digest (see AppendBinary), treating
// it as hostile, and appends its centroids to arena. It returns the run,
// whose Centroids alias the returned arena, and the arena. Decoding a
// batch's digests into one arena costs an allocation per arena growth, not
// per digest; a run stays valid when later appends move the arena, as it
// keeps the old array alive.
//
// The run's Min and Max are the first and last means (exact for a
// Digest's encoding, up to float32 rounding), and it is Exact when the
// means strictly increase and there are at most ExactLimit of them. On
// error, arena is returned unchanged and nothing was appended.
//
// Checks: the 16-byte header, encoding 2, compression in [1, 1000], the
// centroid count against the bytes present (before allocating), finite
// means that never decrease, counts >= 1 in minimal uvarints, a total
// count <= 2^53, and no bytes after the counts.
func DecodeRun(arena []Centroid, p []byte) (Run, []Centroid, error) {
	if len(p) < wireHeaderLen {
		return Run{}, arena, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(p), wireHeaderLen)
	}
	if enc := binary.BigEndian.Uint32(p); enc != wireEncoding {
		return Run{}, arena, fmt.Errorf("encoding %d, want %d", enc, wireEncoding)
	}
	compression := math.Float64frombits(binary.BigEndian.Uint64(p[4:]))
	if !(compression >= minCompression && compression <= maxCompression) { // NaN fails too
		return Run{}, arena, fmt.Errorf("compression %v, want [%d, %d]", compression, minCompression, maxCompression)
	}
	n := int(binary.BigEndian.Uint32(p[12:]))
	if n > (len(p)-wireHeaderLen)/minCentroidLen {
		return Run{}, arena, fmt.Errorf("%d centroids declared in %d bytes", n, len(p))
	}
	start, orig := len(arena), arena
	if cap(arena)-start < n {
		grown := make([]Centroid, start, max(start+n, 2*cap(arena)))
		copy(grown, arena)
		arena = grown
	}
	cs := arena[start : start+n]
	fail := func(err error) (Run, []Centroid, error) { return Run{}, orig, err }

	strict := true
	var mean float64
	deltas := p[wireHeaderLen : wireHeaderLen+4*n]
	for i := range cs {
		delta := math.Float32frombits(binary.BigEndian.Uint32(deltas[4*i:]))
		switch {
		case i == 0 && delta-delta != 0:
			return fail(fmt.Errorf("centroid 0: mean %v: not finite", delta))
		case i > 0 && !(delta >= 0):
			return fail(fmt.Errorf("centroid %d: mean delta %v: means must not decrease", i, delta))
		case delta > math.MaxFloat32:
			return fail(fmt.Errorf("centroid %d: mean delta %v: not finite", i, delta))
		}
		// The sum of at most 2^32 finite float32s is a finite float64.
		prev := mean
		mean += float64(delta)
		// A positive delta can vanish in the sum: strictness is of the
		// means.
		strict = strict && (i == 0 || mean > prev)
		cs[i].Mean = mean
	}
	off := wireHeaderLen + 4*n
	var total uint64
	for i := range cs {
		if off < len(p) && p[off] < 0x80 && p[off] > 0 {
			// One byte, the usual count: 2^32 of them stay far below
			// 2^53.
			cs[i].Weight = float64(p[off])
			total += uint64(p[off])
			off++
			continue
		}
		c, err := readCount(p[off:])
		if err != nil {
			return fail(fmt.Errorf("centroid %d: count: %w", i, err))
		}
		off += uvarintLen(c)
		if c == 0 {
			return fail(fmt.Errorf("centroid %d: count 0", i))
		}
		if c > maxWireCount-total {
			return fail(fmt.Errorf("centroid %d: total count beyond 2^53", i))
		}
		total += c
		cs[i].Weight = float64(c)
	}
	if off != len(p) {
		return fail(fmt.Errorf("%d bytes after the last count", len(p)-off))
	}
	// The one-byte counts skip the check on the way: a run of them can
	// still carry a total past the bound after a large count.
	if total > maxWireCount {
		return fail(errors.New("total count beyond 2^53"))
	}
	r := Run{Centroids: cs, Exact: strict && n <= ExactLimit}
	if n > 0 {
		r.Min, r.Max = cs[0].Mean, cs[n-1].Mean
	}
	return r, arena[:start+n], nil
}

var (
	errTruncated  = errors.New("truncated uvarint")
	errOverflow   = errors.New("uvarint overflows 64 bits")
	errNonMinimal = errors.New("uvarint not minimally encoded")
)

// readCount reads a minimally encoded uvarint; nearly every count fits in
// one byte, which it reads without a call.
func readCount(p []byte) (uint64, error) {
	if len(p) > 0 && p[0] < 0x80 {
		return uint64(p[0]), nil
	}
	v, n := binary.Uvarint(p)
	switch {
	case n == 0:
		return 0, errTruncated
	case n < 0:
		return 0, errOverflow
	case p[n-1] == 0: // a final zero group adds nothing: a shorter form exists
		return 0, errNonMinimal
	}
	return v, nil
}
