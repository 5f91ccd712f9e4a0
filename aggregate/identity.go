package aggregate

import (
	"bytes"
	"slices"
	"strings"

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

// Magic and special tags (docs/input.md, "Tags"; docs/output.md, "Magic tags").
const (
	localOnlyTag     = "veneurlocalonly"
	globalOnlyTag    = "veneurglobalonly"
	hostTagPrefix    = "host:"
	internalTagStart = "dd.internal." // origin detection: consumed, never sent on
)

// identity is what a sample's raw name and tags resolve to: the series'
// canonical key and the parts of it that the flush needs. Every string is
// a substring of key, so a series costs one string allocation.
//
// The key is the fleet-wide metric.SeriesKey followed by this instance's
// part of the identity:
//
//	<kind>|<name>|<tag>,<tag>…  '|' <scope>  [<host>]
//
// where scope is '0', '1' or '2' (scopeDefault, LocalOnly, GlobalOnly) and
// host is present only when a host: tag names a host other than this
// instance's (an empty host: tag gives a series without a host, keyed
// "…|0" + "\x00"). Tags cannot contain '|', so the fleet key ends at the
// last '|' and Series.Key is key[:fleetLen].
type identity struct {
	key      string
	fleetLen int
	name     string
	tags     []string // sorted, deduplicated, extend_tags applied
	host     string
	kind     metric.Kind
	scope    scope
}

// noHost marks in a key the series whose host: tag was empty.
const noHost = "\x00"

// resolver builds identities. It holds this instance's hostname and
// extend_tags, and scratch space reused between calls; it is not safe for
// concurrent use (each Writer has one).
type resolver struct {
	hostname   string
	extendTags []string // sorted, deduplicated
	extendKeys []string // the key of each extend tag, for replacing
	spans      []tagSpan
	buf        []byte
}

// tagSpan locates one tag in the raw tag bytes, or (raw == false) one
// extend tag by index.
type tagSpan struct {
	start, end uint32
	extend     bool
}

// resolve returns the identity of a sample of kind with the given name and
// raw tag section (comma-separated, unsorted, as sent).
//
// Tags are sorted so that "#a:1,b:2" and "#b:2,a:1" are one series, and
// deduplicated because Datadog treats a series' tags as a set. The host:
// tag, the magic scope tags and dd.internal.* tags are taken out; a tag
// with the key of an extend tag gives way to it (as in Veneur), and the
// extend tags join the rest before the identity is made, so two lines
// that flush alike are one series. A host: tag naming this instance's
// hostname is the same series as none.
func (r *resolver) resolve(kind metric.Kind, name, raw []byte) identity {
	spans := r.spans[:0]
	sc := scopeDefault
	var host []byte
	explicitHost := false
	for start := 0; start < len(raw); {
		end := start + bytes.IndexByte(raw[start:], ',')
		next := end + 1
		if end < start { // no more commas
			end, next = len(raw), len(raw)
		}
		tag := raw[start:end]
		span := tagSpan{start: uint32(start), end: uint32(end)}
		start = next
		if len(tag) == 0 {
			continue
		}
		switch tag[0] { // one byte decides for nearly every tag
		case 'h':
			if bytes.HasPrefix(tag, []byte(hostTagPrefix)) {
				host = tag[len(hostTagPrefix):]
				explicitHost = string(host) != r.hostname
				continue
			}
		case 'v':
			switch string(tag) {
			case localOnlyTag:
				sc = scopeLocalOnly
				continue
			case globalOnlyTag:
				if sc != scopeLocalOnly { // keeping data local is the safer reading of both
					sc = scopeGlobalOnly
				}
				continue
			}
		case 'd':
			if bytes.HasPrefix(tag, []byte(internalTagStart)) {
				continue
			}
		}
		if r.replaced(tag) {
			continue
		}
		spans = append(spans, span)
	}
	for i := range r.extendTags {
		spans = append(spans, tagSpan{start: uint32(i), extend: true})
	}
	text := func(s tagSpan) string {
		if s.extend {
			return r.extendTags[s.start]
		}
		return unsafeString(raw[s.start:s.end])
	}
	slices.SortFunc(spans, func(a, b tagSpan) int { return strings.Compare(text(a), text(b)) })
	spans = slices.CompactFunc(spans, func(a, b tagSpan) bool { return text(a) == text(b) })
	r.spans = spans

	buf := append(r.buf[:0], kind.String()...)
	buf = append(buf, '|')
	nameAt := len(buf)
	buf = append(buf, name...)
	buf = append(buf, '|')
	tagsAt := len(buf)
	for i, s := range spans {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, text(s)...)
	}
	fleetLen := len(buf)
	buf = append(buf, '|', '0'+byte(sc))
	hostAt := len(buf)
	if explicitHost {
		if len(host) == 0 {
			buf = append(buf, noHost...)
		} else {
			buf = append(buf, host...)
		}
	}
	r.buf = buf

	id := identity{key: string(buf), fleetLen: fleetLen, kind: kind, scope: sc, host: r.hostname}
	id.name = id.key[nameAt : nameAt+len(name)]
	if len(spans) > 0 {
		id.tags = make([]string, len(spans))
		off := tagsAt
		for i, s := range spans {
			n := int(s.end - s.start)
			if s.extend {
				n = len(r.extendTags[s.start])
			}
			id.tags[i] = id.key[off : off+n]
			off += n + 1
		}
	}
	if explicitHost {
		id.host = id.key[hostAt:]
		if id.host == noHost {
			id.host = ""
		}
	}
	return id
}

// replaced reports whether an extend tag replaces tag: whether tag is
// "<key>" or "<key>:…" for the key of an extend tag.
func (r *resolver) replaced(tag []byte) bool {
	for _, k := range r.extendKeys {
		if len(tag) >= len(k) && string(tag[:len(k)]) == k && (len(tag) == len(k) || tag[len(k)] == ':') {
			return true
		}
	}
	return false
}

// tagKey returns the key of a "key:value" tag, or the whole tag.
func tagKey(tag string) string {
	if i := strings.IndexByte(tag, ':'); i >= 0 {
		return tag[:i]
	}
	return tag
}
