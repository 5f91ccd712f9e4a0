package metric

import (
	"fmt"
	"math/rand/v2"

	"github.com/axiomhq/hyperloglog"
	"github.com/caio/go-tdigest/v4"
)

// Series is the mergeable state of one series over one interval: what a
// local forwards to the global tier, and what a global merges from every
// host. Digests and sketches are mergeable, counter sums add up and of
// gauges the later value wins, so two states of one Key always merge into
// one.
type Series struct {
	// Key is the series identity across the fleet (SeriesKey): kind, name
	// and tags, without host or scope, so every host's state for one
	// series routes to, and merges on, one global instance.
	Key  string
	Name string
	Tags []string // sorted, deduplicated; no host, magic or extend tags
	Kind Kind
	// Value is a Counter's weighted sum or a Gauge's last value.
	Value  float64
	Digest *tdigest.TDigest    // histogram kinds
	Set    *hyperloglog.Sketch // Set
}

// Merge folds src, a later state of the same series, into s: digests and
// sets merge, counters add up, and src's gauge value wins. src's digest
// and sketch are consumed: the digest is left shuffled (which saves the
// copy a non-destructive merge makes), so the caller must own src and not
// use it afterwards. A nil sketch on either side is adopted or skipped.
func (s *Series) Merge(src *Series) error {
	if s.Kind != src.Kind {
		return fmt.Errorf("merge %s: kind %v into %v", src.Key, src.Kind, s.Kind)
	}
	switch {
	case s.Kind == Counter:
		s.Value += src.Value
	case s.Kind == Gauge:
		s.Value = src.Value
	case s.Kind.IsHistogram():
		switch {
		case s.Digest == nil:
			s.Digest = src.Digest
		case src.Digest == s.Digest:
			// Merging a digest into itself would read it while it grows.
			if err := s.Digest.Merge(src.Digest.Clone()); err != nil {
				return fmt.Errorf("merge digest %s: %w", s.Key, err)
			}
		case src.Digest != nil:
			if err := s.Digest.MergeDestructive(src.Digest); err != nil {
				return fmt.Errorf("merge digest %s: %w", s.Key, err)
			}
		}
	case s.Kind == Set:
		switch {
		case s.Set == nil:
			s.Set = src.Set
		case src.Set != nil:
			if err := s.Set.Merge(src.Set); err != nil {
				return fmt.Errorf("merge set %s: %w", s.Key, err)
			}
		}
	}
	return nil
}

// SetPrecision is the HyperLogLog precision of every set sketch: 2^14
// registers, about 0.8% standard error. Sketches only merge at equal
// precision, so the wire format pins it and globals reject any other.
const SetPrecision = 14

// NewSet returns an empty set sketch at SetPrecision, sparse so that a set
// with a few members stays small.
func NewSet() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(SetPrecision, true)
	if err != nil {
		panic("metric: " + err.Error()) // constant, valid precision
	}
	return sk
}

// DigestCompression trades digest size for accuracy; 100 keeps rank error
// well under 1% at p50–p99.
const DigestCompression = 100

// NewDigest returns an empty t-digest at DigestCompression, with the
// shared goroutine-safe random source and no preallocated centroids.
// Decoders fill it with FromBytes, which then allocates exactly the
// centroids the payload holds: tdigest.FromBytes and tdigest.New would
// each allocate a per-digest random source (about 5 KB) or a 16 KB
// centroid array whatever the payload's size.
func NewDigest() *tdigest.TDigest { return emptyDigest.Clone() }

// emptyDigest is cloned for every new digest: tdigest.New preallocates
// room for 10×compression centroids (16 KB at compression 100); a clone of
// an empty digest starts at zero capacity and grows with the data, which
// matters when most of 100k histogram series see a handful of samples.
var emptyDigest = func() *tdigest.TDigest {
	td, err := tdigest.New(tdigest.Compression(DigestCompression), tdigest.RandomNumberGenerator(sharedRNG{}))
	if err != nil {
		panic("metric: " + err.Error()) // constant, valid options
	}
	return td
}()

// sharedRNG feeds the digests' randomized centroid choices from math/rand/v2's
// goroutine-safe generator. The library's default is a math/rand source per
// digest: about 5 KB each, and not safe to share between digests that are
// used from different goroutines (shards, the forward stage).
type sharedRNG struct{}

func (sharedRNG) Float32() float32 { return rand.Float32() }
func (sharedRNG) Intn(n int) int   { return rand.IntN(n) }
