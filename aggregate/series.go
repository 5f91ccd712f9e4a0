package aggregate

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/axiomhq/hyperloglog"
	"github.com/caio/go-tdigest/v4"
	"github.com/veneur-lite/veneur-lite/metric"
)

// scope is where a series' data goes, chosen by the magic tags. It is part
// of the series identity, so "x:1|h|#veneurlocalonly" and "x:1|h" never mix.
type scope uint8

const (
	scopeDefault scope = iota
	scopeLocalOnly
	scopeGlobalOnly
)

// Magic and special tags (SPEC §2, §3).
const (
	localOnlyTag  = "veneurlocalonly"
	globalOnlyTag = "veneurglobalonly"
	hostTagPrefix = "host:"
)

// hostMode records in a key whether the series carries the configured
// hostname or one of its own, so the (long, shared) default hostname is not
// repeated in every key.
const (
	hostDefault  byte = 0
	hostExplicit byte = 1
)

// keyHeaderLen is the fixed prefix of a series key: kind, scope, host mode.
const keyHeaderLen = 3

// appendSeriesKey appends to dst the canonical key of the series that sample
// s belongs to:
//
//	kind | scope | host mode | uvarint len(name) | name
//	     [| uvarint len(host) | host   when host mode is hostExplicit]
//	     | sorted, deduplicated tags joined by ','
//
// Tags are sorted so that "#a:1,b:2" and "#b:2,a:1" are one series, and
// deduplicated because Datadog treats a series' tags as a set. The host: tag
// and the magic tags are taken out of the tag list into the header. A host:
// tag naming defaultHost is the same series as no host: tag at all.
//
// scratch holds the tag positions; it is returned for reuse by the next
// call. This is the costliest step of Push, so the common cases are
// short-cut: tags that arrive sorted are not sorted again, and when nothing
// was taken out either, they are copied into the key in one piece.
func appendSeriesKey(dst []byte, s *metric.Sample, defaultHost string, scratch []tagSpan) ([]byte, []tagSpan) {
	raw := s.Tags
	spans := scratch[:0]
	sc := scopeDefault
	var host []byte
	explicitHost := false
	sorted := true   // tags so far are strictly increasing
	verbatim := true // raw is exactly the tags joined by ','
	for start := 0; start < len(raw); {
		end := start + bytes.IndexByte(raw[start:], ',')
		next := end + 1
		if end < start { // no more commas
			end, next = len(raw), len(raw)
		} else if next == len(raw) {
			verbatim = false // a trailing ',' is not in the key
		}
		tag := raw[start:end]
		span := tagSpan{uint32(start), uint32(end)}
		start = next
		if len(tag) == 0 {
			verbatim = false
			continue
		}
		switch tag[0] { // one byte decides for nearly every tag
		case 'h':
			if bytes.HasPrefix(tag, []byte(hostTagPrefix)) {
				host = tag[len(hostTagPrefix):]
				explicitHost = string(host) != defaultHost
				verbatim = false
				continue
			}
		case 'v':
			switch string(tag) {
			case localOnlyTag:
				sc = scopeLocalOnly
				verbatim = false
				continue
			case globalOnlyTag:
				if sc != scopeLocalOnly { // keeping data local is the safer reading of both
					sc = scopeGlobalOnly
				}
				verbatim = false
				continue
			}
		}
		if sorted && len(spans) > 0 && compareTags(spans[len(spans)-1].of(raw), tag) >= 0 {
			sorted = false
		}
		spans = append(spans, span)
	}
	if !sorted {
		spans = sortTags(raw, spans)
	}

	mode := hostDefault
	if explicitHost {
		mode = hostExplicit
	}
	dst = append(dst, byte(s.Kind), byte(sc), mode)
	dst = binary.AppendUvarint(dst, uint64(len(s.Name)))
	dst = append(dst, s.Name...)
	if explicitHost {
		dst = binary.AppendUvarint(dst, uint64(len(host)))
		dst = append(dst, host...)
	}
	if sorted && verbatim {
		return append(dst, raw...), spans
	}
	for i, span := range spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, span.of(raw)...)
	}
	return dst, spans
}

// tagSpan locates one tag in a sample's raw tag bytes. Sorting spans moves
// 8 bytes per swap, and no pointers, rather than 24-byte slice headers.
type tagSpan struct{ start, end uint32 }

func (t tagSpan) of(raw []byte) []byte { return raw[t.start:t.end] }

// compareTags is bytes.Compare for non-empty tags, deciding on the first
// byte without a call when it can: tags mostly differ right there.
func compareTags(a, b []byte) int {
	if a[0] != b[0] {
		if a[0] < b[0] {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}

// sortTags sorts the spans of non-empty tags by tag and drops duplicates.
// Clients send a handful of tags, for which an insertion sort with inlined
// comparisons beats the generic sort.
func sortTags(raw []byte, spans []tagSpan) []tagSpan {
	if len(spans) > 16 {
		slices.SortFunc(spans, func(a, b tagSpan) int { return bytes.Compare(a.of(raw), b.of(raw)) })
		return slices.CompactFunc(spans, func(a, b tagSpan) bool { return bytes.Equal(a.of(raw), b.of(raw)) })
	}
	duplicates := false
	for i := 1; i < len(spans); i++ {
		span := spans[i]
		tag := span.of(raw)
		j := i
		for ; j > 0; j-- {
			c := compareTags(spans[j-1].of(raw), tag)
			if c <= 0 {
				// An equal tag already placed is the largest one <= tag,
				// so this is where a duplicate shows.
				duplicates = duplicates || c == 0
				break
			}
			spans[j] = spans[j-1]
		}
		spans[j] = span
	}
	if duplicates {
		return slices.CompactFunc(spans, func(a, b tagSpan) bool { return bytes.Equal(a.of(raw), b.of(raw)) })
	}
	return spans
}

// series is the state of one series during one interval.
type series struct {
	// key is the canonical key; name, host and tags are substrings of it,
	// so a new series costs one string allocation for all of them.
	key  string
	next *series // the next series whose key has the same hash
	name string
	host string
	tags []string // sorted; no host, no magic tags
	kind metric.Kind
	// forward is whether the series goes upstream (Flushed.Forward), fixed
	// at creation from its kind, scope and Config.Forwarding.
	forward bool

	value float64 // Counter: weighted sum; Gauge: last value
	hist  *histogram
	set   *hyperloglog.Sketch
}

// histogram is the state of a histogram, timer or distribution series. The
// aggregates are exact; only percentiles come from the digest.
type histogram struct {
	min, max   float64
	sum, count float64 // weighted by 1/rate
	digest     *tdigest.TDigest
}

// newSeries decodes a key built by appendSeriesKey.
func newSeries(key, defaultHost string) *series {
	s := &series{key: key, kind: metric.Kind(key[0]), host: defaultHost}
	mode := key[2]
	rest := key[keyHeaderLen:]
	s.name, rest = readLengthPrefixed(rest)
	if mode == hostExplicit {
		s.host, rest = readLengthPrefixed(rest)
	}
	if rest != "" {
		s.tags = make([]string, 0, strings.Count(rest, ",")+1)
		for tag := range strings.SplitSeq(rest, ",") {
			s.tags = append(s.tags, tag)
		}
	}
	switch {
	case s.kind.IsHistogram():
		s.hist = &histogram{min: math.Inf(1), max: math.Inf(-1), digest: metric.NewDigest()}
	case s.kind == metric.Set:
		s.set = metric.NewSet()
	}
	return s
}

// readLengthPrefixed splits a uvarint-length-prefixed string off s.
func readLengthPrefixed(s string) (value, rest string) {
	var n uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		b := s[i]
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			s = s[i+1:]
			return s[:n], s[n:]
		}
		shift += 7
	}
	panic("aggregate: corrupt series key") // keys are only built by appendSeriesKey
}
