package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

// Decode parses one encoded batch, checking it against lim (zero fields
// take their DefaultLimits value). It returns either the whole batch,
// every series validated, or an error wrapping one of ErrChecksum,
// ErrMagic, ErrVersion, ErrLimit or ErrMalformed that says what was wrong
// and where; never a partial batch.
//
// Every declared count and length is checked against the bytes that remain
// before anything is allocated from it, so hostile input cannot make Decode
// allocate more than a small constant times len(data). The result does not
// refer to data, which the caller may reuse. Each series' Key is built with
// metric.SeriesKey, as the aggregator builds it.
func Decode(data []byte, lim Limits) (*Batch, error) {
	return new(Decoder).Decode(data, lim)
}

// Decoder decodes batches into memory it keeps for the next: the batch's
// digests and their centroids live in arrays a Decoder reuses, so that a
// busy global does not allocate (and zero) them for every batch. The zero
// value is ready; it is not safe for concurrent use.
type Decoder struct {
	digests   chunks[sketch.Digest]
	centroids chunks[sketch.Centroid]
}

// Decode is the package's Decode, with one difference: the digests of the
// batch it returns are valid only until the next Decode on d. Everything
// else (keys, names, tags, sketches) is the batch's own.
func (d *Decoder) Decode(data []byte, lim Limits) (*Batch, error) {
	d.digests.reset()
	d.centroids.reset()
	b, err := decode(data, lim.withDefaults(), d)
	if err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}

// chunks hands out room from arrays that never grow, so that what was
// handed out stays where it is, and are reused from the start by reset.
type chunks[T any] struct {
	all  [][]T
	next int // the chunk being filled
}

// Chunk sizes: a 1,000-digest batch of 500-sample digests takes one digest
// chunk and two centroid chunks.
const (
	digestChunkLen   = 1024
	centroidChunkLen = 64 << 10
)

// keptChunks bounds what a Decoder keeps between batches: one outsized
// batch must not pin its memory for the life of the Decoder.
const keptChunks = 4

func (c *chunks[T]) reset() {
	if len(c.all) > keptChunks {
		clear(c.all[keptChunks:])
		c.all = c.all[:keptChunks]
	}
	for i := range c.all {
		clear(c.all[i]) // drop what the last batch's values referred to
		c.all[i] = c.all[i][:0]
	}
	c.next = 0
}

// room returns an empty slice with room for n values, from the current
// chunk or the next one; size is the length of a new chunk.
func (c *chunks[T]) room(n, size int) []T {
	for ; c.next < len(c.all); c.next++ {
		if cur := c.all[c.next]; cap(cur)-len(cur) >= n {
			return cur[len(cur):len(cur):cap(cur)]
		}
	}
	c.all = append(c.all, make([]T, 0, max(n, size)))
	return c.all[c.next][:0]
}

// take marks the n values after the current chunk's end as handed out.
func (c *chunks[T]) take(n int) {
	cur := c.all[c.next]
	c.all[c.next] = cur[:len(cur)+n]
}

func decode(data []byte, lim Limits, mem *Decoder) (*Batch, error) {
	// Magic and version are checked before the checksum so that a peer
	// speaking another protocol or version is told so plainly.
	if !bytes.HasPrefix(data, magic[:min(len(data), len(magic))]) || len(data) == 0 {
		return nil, ErrMagic
	}
	if len(data) > len(magic) && data[len(magic)] != Version {
		return nil, fmt.Errorf("version %d (this build reads %d): %w", data[len(magic)], Version, ErrVersion)
	}
	if len(data) < headerFixedLen+1+1+trailerLen { // + empty source, + series count
		return nil, fmt.Errorf("%d bytes, shorter than the smallest batch: %w", len(data), ErrMalformed)
	}
	body := data[:len(data)-trailerLen]
	want := binary.BigEndian.Uint32(data[len(body):])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, fmt.Errorf("crc32c %08x, trailer says %08x (truncated or corrupted): %w", got, want, ErrChecksum)
	}

	d := decoder{buf: body, off: headerFixedLen, mem: mem}
	b := &Batch{}
	start := int64(binary.BigEndian.Uint64(body[5:13]))
	if start < 0 {
		return nil, fmt.Errorf("interval start %d: negative: %w", start, ErrMalformed)
	}
	b.IntervalStart = time.Unix(0, start)
	b.Interval = time.Duration(binary.BigEndian.Uint64(body[13:21]))
	if b.Interval <= 0 || b.Interval > MaxInterval {
		return nil, fmt.Errorf("interval %v: must be in (0, %v]: %w", b.Interval, MaxInterval, ErrMalformed)
	}
	source, err := d.bytes("source", MaxSourceBytes)
	if err != nil {
		return nil, err
	}
	b.Source = string(source)

	n, err := d.uvarint("series count")
	if err != nil {
		return nil, err
	}
	if n > uint64(lim.MaxSeries) {
		return nil, fmt.Errorf("%d series: at most %d: %w", n, lim.MaxSeries, ErrLimit)
	}
	if n > uint64(d.remaining()/minSeriesLen) {
		return nil, fmt.Errorf("%d series declared in %d bytes: %w", n, d.remaining(), ErrMalformed)
	}
	b.Series = make([]metric.Series, n)
	for i := range b.Series {
		if err := d.series(&b.Series[i], lim, len(b.Series)-i); err != nil {
			return nil, fmt.Errorf("series %d: %w", i, err)
		}
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("%d bytes after the last series: %w", d.remaining(), ErrMalformed)
	}
	return b, nil
}

// decoder reads the body of a batch whose checksum matched.
type decoder struct {
	buf  []byte
	off  int
	tags [][]byte // scratch: the current series' tags, aliasing buf
	mem  *Decoder // where the digests and centroids go
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

// uvarint reads a minimally encoded uvarint: the format is canonical, so
// an encoding is never re-read differently.
func (d *decoder) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.buf[d.off:])
	switch {
	case n == 0:
		return 0, fmt.Errorf("%s: truncated uvarint: %w", what, ErrMalformed)
	case n < 0:
		return 0, fmt.Errorf("%s: uvarint overflows 64 bits: %w", what, ErrMalformed)
	case n > 1 && d.buf[d.off+n-1] == 0: // a final zero group adds nothing: a shorter form exists
		return 0, fmt.Errorf("%s: uvarint not minimally encoded: %w", what, ErrMalformed)
	}
	d.off += n
	return v, nil
}

// bytes reads a uvarint-length-prefixed field of at most limit bytes. The
// result aliases the input.
func (d *decoder) bytes(what string, limit int) ([]byte, error) {
	n, err := d.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%s of %d bytes: at most %d: %w", what, n, limit, ErrLimit)
	}
	if n > uint64(d.remaining()) {
		return nil, fmt.Errorf("%s of %d bytes: only %d remain: %w", what, n, d.remaining(), ErrMalformed)
	}
	p := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

// blob reads a uint32-length-prefixed payload of at most limit bytes.
func (d *decoder) blob(what string, limit int) ([]byte, error) {
	if d.remaining() < 4 {
		return nil, fmt.Errorf("%s length: truncated: %w", what, ErrMalformed)
	}
	n := binary.BigEndian.Uint32(d.buf[d.off:])
	d.off += 4
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%s of %d bytes: at most %d: %w", what, n, limit, ErrLimit)
	}
	if uint64(n) > uint64(d.remaining()) {
		return nil, fmt.Errorf("%s of %d bytes: only %d remain: %w", what, n, d.remaining(), ErrMalformed)
	}
	p := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

func (d *decoder) series(s *metric.Series, lim Limits, left int) error {
	if d.remaining() < 1 {
		return fmt.Errorf("kind: truncated: %w", ErrMalformed)
	}
	kb := d.buf[d.off]
	d.off++
	kind, ok := aggregateKind(kb)
	if !ok {
		return fmt.Errorf("unknown kind %d: %w", kb, ErrMalformed)
	}
	name, err := d.bytes("name", lim.MaxNameBytes)
	if err != nil {
		return err
	}
	if len(name) == 0 {
		return fmt.Errorf("empty name: %w", ErrMalformed)
	}

	nt, err := d.uvarint("tag count")
	if err != nil {
		return err
	}
	if nt > uint64(lim.MaxTags) {
		return fmt.Errorf("%d tags: at most %d: %w", nt, lim.MaxTags, ErrLimit)
	}
	if nt > uint64(d.remaining()/2) { // a tag is at least a length byte and one byte
		return fmt.Errorf("%d tags declared in %d bytes: %w", nt, d.remaining(), ErrMalformed)
	}
	// The tags alias the input until metric.KeyedSeries copies them, with the
	// name, into the key: name and tags are substrings of the key.
	tags := d.tags[:0]
	tagBytes := 0
	for i := range int(nt) {
		tag, err := d.bytes("tag", lim.MaxTagBytes)
		if err != nil {
			return fmt.Errorf("tag %d: %w", i, err)
		}
		if tagBytes += len(tag); tagBytes > lim.MaxTagBytes {
			return fmt.Errorf("tags of %d bytes or more: at most %d: %w", tagBytes, lim.MaxTagBytes, ErrLimit)
		}
		tags = append(tags, tag)
	}
	d.tags = tags
	if err := checkTagBytes(tags); err != nil {
		return fmt.Errorf("%w: %w", err, ErrMalformed)
	}
	*s = metric.KeyedSeries(kind, name, tags)

	switch {
	case kind == metric.Counter || kind == metric.Gauge:
		if d.remaining() < 8 {
			return fmt.Errorf("value: truncated: %w", ErrMalformed)
		}
		s.Value = math.Float64frombits(binary.BigEndian.Uint64(d.buf[d.off:]))
		d.off += 8
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			return fmt.Errorf("value %v: not finite: %w", s.Value, ErrMalformed)
		}
	case kind == metric.Distribution:
		p, err := d.blob("distribution sketch", lim.MaxDigestBytes)
		if err != nil {
			return err
		}
		s.Dist = new(agentsketch.Sketch)
		if err := s.Dist.DecodeBinary(p); err != nil {
			return fmt.Errorf("%w: %w", err, ErrMalformed)
		}
	case kind.IsHistogram():
		p, err := d.blob("digest", lim.MaxDigestBytes)
		if err != nil {
			return err
		}
		// The declared centroid count, checked against the payload's size
		// by DecodeRun, sizes the room; a lie only costs the decode.
		n := 0
		if len(p) >= 16 {
			n = min(int(binary.BigEndian.Uint32(p[12:16])), len(p)/5)
		}
		// A new chunk is sized for what is left of the batch (a centroid
		// takes 5 bytes on the wire at least), up to centroidChunkLen.
		room := d.mem.centroids.room(n, min((len(p)+d.remaining())/5, centroidChunkLen))
		run, _, err := sketch.DecodeRun(room, p)
		if err != nil {
			return fmt.Errorf("digest: %w: %w", err, ErrMalformed)
		}
		if len(run.Centroids) <= cap(room) { // else DecodeRun grew its own array
			d.mem.centroids.take(len(run.Centroids))
		}
		digest := d.mem.digests.room(1, min(left, digestChunkLen))[:1]
		d.mem.digests.take(1)
		digest[0] = sketch.FromRun(run)
		s.Digest = &digest[0]
	default: // Set
		p, err := d.blob("set", lim.MaxSetBytes)
		if err != nil {
			return err
		}
		if s.Set, err = decodeSet(p); err != nil && !errors.Is(err, errSetPrecision) {
			return fmt.Errorf("set: %w", err)
		}
	}
	return nil
}

// errSetPrecision marks a set sketch of another precision.
var errSetPrecision = errors.New("set of another precision")

// decodeSet checks the precision before handing the payload to the
// library: sketches of different precisions don't merge, and the merge on
// the global must not fail after the batch was accepted. UnmarshalBinary
// validates the rest and sizes its allocations from lengths it checks
// against the payload first.
func decodeSet(p []byte) (*hyperloglog.Sketch, error) {
	if len(p) < minSetLen {
		return nil, fmt.Errorf("%d bytes, shorter than its header: %w", len(p), ErrMalformed)
	}
	// Version 1 packs two registers per byte and would unpack to twice its
	// size; no current writer produces it.
	if p[0] != setEncoding {
		return nil, fmt.Errorf("encoding version %d (want %d): %w", p[0], setEncoding, ErrMalformed)
	}
	sk := new(hyperloglog.Sketch)
	if err := sk.UnmarshalBinary(p); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrMalformed)
	}
	if p[1] != sketch.SetPrecision {
		// Well formed, but it cannot merge: an older local's (theirs was
		// 14). The series is decoded without its sketch, which the global
		// counts as rejected, and the rest of the batch merges, so a
		// rolling upgrade loses only these sets.
		return nil, fmt.Errorf("precision %d (want %d): %w", p[1], sketch.SetPrecision, errSetPrecision)
	}
	return sk, nil
}

// checkTagBytes is checkTags for tags still in the read buffer.
func checkTagBytes(tags [][]byte) error {
	for i, tag := range tags {
		if len(tag) == 0 {
			return fmt.Errorf("tag %d: empty", i)
		}
		if bytes.IndexByte(tag, ',') >= 0 {
			return fmt.Errorf("tag %d (%q): contains ','", i, tag)
		}
		if i > 0 && bytes.Compare(tags[i-1], tag) >= 0 {
			return fmt.Errorf("tag %d (%q): not sorted after %q, or repeated", i, tag, tags[i-1])
		}
	}
	return nil
}
