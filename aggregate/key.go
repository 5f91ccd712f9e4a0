package aggregate

import (
	"github.com/axiomhq/hyperloglog"
	"github.com/caio/go-tdigest/v4"
)

// SetPrecision is the HyperLogLog precision of every set sketch: 2^14
// registers, about 0.8% standard error. Sketches only merge at equal
// precision, so the wire format pins it and globals reject any other.
const SetPrecision = 14

// SeriesKey returns the fleet-wide identity of a series, the
// ForwardSeries.Key format "<kind>|<name>|<tag>,<tag>…", for tags that are
// already sorted and deduplicated. Host and scope are not part of it, so
// every host's state for one series routes to, and merges on, one global
// instance. Locals build it at flush and globals when decoding a batch; both
// must use this function so their keys agree byte for byte.
//
// Names can hold '|' but tags cannot (DogStatsD ends the tag section at
// '|'), so the name is everything between the first and the last '|' and
// the key is unambiguous for tags without ','.
func SeriesKey(kind Kind, name string, tags []string) string {
	var buf [keyBufSize]byte
	return string(appendKey(buf[:0], kind, name, tags))
}

// keyBufSize fits most keys, so that building one on the stack leaves the
// string as its only allocation.
const keyBufSize = 256

// appendKey appends the SeriesKey of name and tags, as strings or as bytes.
func appendKey[T ~string | ~[]byte](dst []byte, kind Kind, name T, tags []T) []byte {
	dst = append(dst, kind.String()...)
	dst = append(dst, '|')
	dst = append(dst, name...)
	dst = append(dst, '|')
	for i, tag := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, tag...)
	}
	return dst
}

// NewDigest returns an empty t-digest configured like the aggregator's own
// (same compression, the shared goroutine-safe random source) that starts
// with no preallocated centroids. Decoders fill it with FromBytes, which
// then allocates exactly the centroids the payload holds: tdigest.FromBytes
// and tdigest.New would each allocate a per-digest random source (about
// 5 KB) or a 16 KB centroid array whatever the payload's size.
func NewDigest() *tdigest.TDigest { return emptyDigest.Clone() }

// newSet returns an empty set sketch at SetPrecision, sparse so that a set
// with a few members stays small.
func newSet() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(SetPrecision, true)
	if err != nil {
		panic("aggregate: " + err.Error()) // constant, valid precision
	}
	return sk
}

// SeriesKeyBytes is SeriesKey for a name and tags still in a read buffer
// (a decoder's): it returns the key and, as substrings of it, the name and
// the tags, so the key is the one allocation for all the strings (plus
// the tag slice when there are tags). tags must be sorted and
// deduplicated, as for SeriesKey; the result does not refer to name or
// tags.
func SeriesKeyBytes(kind Kind, name []byte, tags [][]byte) (key, keyName string, keyTags []string) {
	var buf [keyBufSize]byte
	key = string(appendKey(buf[:0], kind, name, tags))
	off := len(kind.String()) + 1
	keyName = key[off : off+len(name)]
	off += len(name) + 1
	if len(tags) > 0 {
		keyTags = make([]string, len(tags))
		for i, tag := range tags {
			keyTags[i] = key[off : off+len(tag)]
			off += len(tag) + 1
		}
	}
	return key, keyName, keyTags
}
