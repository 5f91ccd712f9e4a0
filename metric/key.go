package metric

// SeriesKey returns the identity of a series across the fleet, the
// Series.Key format
//
//	<kind>|<name>|<tag>,<tag>…
//
// for tags that are already sorted and deduplicated. Host and scope are not
// part of it, so every host's state for one series routes to, and merges
// on, one global instance. It is the only builder of that format: locals
// key what they forward with it and globals what they decode
// (KeyedSeries), so the two cannot disagree.
//
// Names can hold '|' but tags cannot (DogStatsD ends the tag section at
// '|'), so the name is everything between the first and the last '|' and
// the key is unambiguous for tags without ','.
func SeriesKey(kind Kind, name string, tags []string) string {
	var buf [keyBufSize]byte
	return string(appendKey(buf[:0], kind, name, tags))
}

// KeyedSeries returns a Series of kind for a name and tags still in a read
// buffer (a decoder's), its Key built by SeriesKey's rules and its Name and
// Tags substrings of that key: one allocation for every string, plus the
// tag slice when there are tags. tags must be sorted and deduplicated; the
// result does not refer to name or tags.
func KeyedSeries(kind Kind, name []byte, tags [][]byte) Series {
	var buf [keyBufSize]byte
	key := string(appendKey(buf[:0], kind, name, tags))
	off := len(kind.String()) + 1
	s := Series{Key: key, Kind: kind, Name: key[off : off+len(name)]}
	off += len(name) + 1
	if len(tags) > 0 {
		s.Tags = make([]string, len(tags))
		for i, tag := range tags {
			s.Tags[i] = key[off : off+len(tag)]
			off += len(tag) + 1
		}
	}
	return s
}

// keyBufSize fits most keys, so that building one on the stack leaves the
// string as its only allocation.
const keyBufSize = 256

// appendKey appends the key of name and tags, as strings or as bytes.
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
