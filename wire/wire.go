// Package wire is the versioned binary format of one forwarded batch: the
// mergeable state (t-digests, HyperLogLog sketches, veneurglobalonly counter
// sums and gauge values) that a local instance sends to a global instance's
// import endpoint for one of its intervals. FORMAT.md documents it byte by
// byte.
//
//	local:  []metric.Series ─AppendEncode─▶ bytes ─(zstd, POST)─▶
//	global: bytes ─Decode(Limits)─▶ Batch ─▶ global.Windows.Import
//
// Digests and sketches travel in their libraries' own serialization (the
// t-digest in github.com/caio/go-tdigest's, which package sketch writes
// and reads; hyperloglog MarshalBinary), framed by lengths and
// checked by a CRC32-C trailer. Decode treats its input as hostile: it
// rejects anything malformed with an error saying what was wrong, never
// panics, and allocates at most a small constant times len(data) plus the
// per-series overhead that Limits.MaxSeries bounds.
package wire

import (
	"errors"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
)

// ContentType is the media type of an encoded batch.
const ContentType = "application/x-veneur-lite-batch"

// HeaderIdempotencyKey carries the key that identifies a batch across its
// retries, so the global merges it once however often it arrives.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderAuthorization carries the import token, as
// BearerPrefix + token, when the global requires one.
const (
	HeaderAuthorization = "Authorization"
	BearerPrefix        = "Bearer "
)

// Version is the format version this package writes and reads.
const Version = 1

// magic opens every batch: "VLFB", veneur-lite forwarded batch.
var magic = [4]byte{'V', 'L', 'F', 'B'}

// Fixed sizes of the format, in bytes (see FORMAT.md).
const (
	headerFixedLen = len(magic) + 1 + 8 + 8 // magic, version, start, interval
	trailerLen     = 4                      // CRC32-C
	// minSeriesLen is the smallest encoded series: kind, a one-byte name
	// with its length, a zero tag count, an 8-byte value. Decode checks a
	// declared series count against it before allocating anything.
	minSeriesLen = 1 + 1 + 1 + 1 + 8
	// minSetLen is hyperloglog's header.
	minSetLen = 8
)

// Bounds that are properties of the format rather than tunables.
const (
	// MaxSourceBytes bounds Batch.Source, a hostname (at most 253 bytes
	// in DNS) with room to spare.
	MaxSourceBytes = 1024
	// MaxInterval bounds Batch.Interval; flush intervals are seconds to
	// minutes.
	MaxInterval = 24 * time.Hour
	// setEncoding is the hyperloglog serialization version accepted.
	setEncoding = 2
)

// Batch is one forwarded batch: series a local aggregated in one interval.
type Batch struct {
	IntervalStart time.Time     // start of the local interval the series were aggregated in
	Interval      time.Duration // the local's interval length
	Source        string        // sending instance's hostname (for logs/metrics only)
	Series        []metric.Series
}

// Limits bounds what Decode accepts. A zero field means its DefaultLimits
// value, so Limits{} is usable.
type Limits struct {
	// MaxSeries bounds the series in one batch; with it the per-series
	// overhead (a metric.Series, its key and tag slice, ~200 bytes) of a
	// decoded batch is bounded whatever the series look like.
	MaxSeries int
	// MaxNameBytes bounds one series name.
	MaxNameBytes int
	// MaxTags bounds the tags of one series.
	MaxTags int
	// MaxTagBytes bounds the total bytes of one series' tags.
	MaxTagBytes int
	// MaxDigestBytes bounds one serialized t-digest.
	MaxDigestBytes int
	// MaxSetBytes bounds one serialized HyperLogLog sketch.
	MaxSetBytes int
}

// DefaultLimits returns limits that every batch a veneur-lite local sends
// fits comfortably.
//
// A digest (package sketch) holds its centroids plus at most a buffer of
// samples, and folds before it is encoded: a few hundred centroids, a few
// KB. A set sketch at sketch.SetPrecision (17) is 128 KiB dense (131,080
// bytes with its header) and about as much sparse (it turns dense past
// that). Names and tags come from DogStatsD lines of at most
// metric_max_length (4096 by default) bytes.
func DefaultLimits() Limits {
	return Limits{
		MaxSeries:      100_000,
		MaxNameBytes:   16 << 10,
		MaxTags:        1000,
		MaxTagBytes:    64 << 10,
		MaxDigestBytes: 256 << 10,
		MaxSetBytes:    256 << 10,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	return Limits{
		MaxSeries:      pick(l.MaxSeries, d.MaxSeries),
		MaxNameBytes:   pick(l.MaxNameBytes, d.MaxNameBytes),
		MaxTags:        pick(l.MaxTags, d.MaxTags),
		MaxTagBytes:    pick(l.MaxTagBytes, d.MaxTagBytes),
		MaxDigestBytes: pick(l.MaxDigestBytes, d.MaxDigestBytes),
		MaxSetBytes:    pick(l.MaxSetBytes, d.MaxSetBytes),
	}
}

// The causes Decode's errors wrap, for callers that count rejects by cause
// (errors.Is). Every Decode error wraps exactly one of them.
var (
	// ErrChecksum: the body is truncated, corrupted or not a batch at all
	// (its CRC32-C trailer does not match).
	ErrChecksum = errors.New("checksum mismatch")
	// ErrMagic: the body does not start with the batch magic.
	ErrMagic = errors.New("not a veneur-lite batch")
	// ErrVersion: a format version this build does not read.
	ErrVersion = errors.New("unsupported version")
	// ErrLimit: well-formed but beyond a Limits bound.
	ErrLimit = errors.New("limit exceeded")
	// ErrMalformed: anything else that is wrong with the bytes.
	ErrMalformed = errors.New("malformed")
)

// Wire kind codes. They are the format's own, not metric.Kind's values,
// so reordering that enum can never change the format.
const (
	kindCounter      byte = 1
	kindGauge        byte = 2
	kindHistogram    byte = 3
	kindTimer        byte = 4
	kindDistribution byte = 5
	kindSet          byte = 6
	// kindDistributionSeries is a d series since it became a kind of its
	// own (a t-digest, as histograms); 5 stays what older locals wrote.
	kindDistributionSeries byte = 7
)

func wireKind(k metric.Kind) (byte, bool) {
	switch k {
	case metric.Counter:
		return kindCounter, true
	case metric.Gauge:
		return kindGauge, true
	case metric.Histogram:
		return kindHistogram, true
	case metric.Set:
		return kindSet, true
	case metric.Distribution:
		return kindDistributionSeries, true
	}
	return 0, false
}

func aggregateKind(b byte) (metric.Kind, bool) {
	switch b {
	case kindCounter:
		return metric.Counter, true
	case kindGauge:
		return metric.Gauge, true
	case kindHistogram, kindTimer, kindDistribution:
		// Timers and distributions are histograms (metric.Kind); the
		// codes stay readable for batches from older locals.
		return metric.Histogram, true
	case kindSet:
		return metric.Set, true
	case kindDistributionSeries:
		return metric.Distribution, true
	}
	return metric.KindInvalid, false
}
