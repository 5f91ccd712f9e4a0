// Package promname maps DogStatsD names and tags onto Prometheus metric and
// label names. The remote-write sink and the /metrics endpoint share it, so
// a series is named alike whichever way it reaches Prometheus.
//
// The rules, for names that are not valid already:
//   - metric names follow [a-zA-Z_:][a-zA-Z0-9_:]*: every other byte ('.',
//     '-', each byte of a multi-byte UTF-8 character, …) becomes '_', and a
//     name starting with a digit gets a '_' in front;
//   - label names follow [a-zA-Z_][a-zA-Z0-9_]* the same way (':' is not
//     allowed), and never start with "__", which Prometheus reserves: a
//     leading run of underscores is cut to one;
//   - a tag "k:v" is the label k="v", split at the first ':'; a tag without
//     ':' is the label k="true"; a tag "k:" (empty value) gives no label,
//     since Prometheus treats an empty label value as an absent label;
//   - label values are kept as they are, except that invalid UTF-8 is
//     replaced by U+FFFD, as Prometheus requires valid UTF-8;
//   - when two labels end up with the same name, the first wins: __name__,
//     then host, then the tags in the order given (sorted, for points and
//     self-metrics), so the outcome does not depend on flush order.
package promname

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Label is one Prometheus label.
type Label struct {
	Name, Value string
}

// MetricName returns name made valid as a Prometheus metric name. A valid
// name is returned as is, without allocating.
func MetricName(name string) string {
	return sanitize(name, true)
}

// LabelName returns key made valid as a Prometheus label name that does
// not start with "__". A valid name is returned as is, without allocating.
func LabelName(key string) string {
	s := sanitize(key, false)
	if strings.HasPrefix(s, "__") {
		s = s[len(s)-len(strings.TrimLeft(s, "_"))-1:]
	}
	return s
}

func sanitize(s string, colon bool) string {
	if valid(s, colon) {
		return s
	}
	b := make([]byte, 0, len(s)+1)
	if s == "" || isDigit(s[0]) {
		b = append(b, '_')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLetter(c) || isDigit(c) || c == '_' || (colon && c == ':') {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

func valid(s string, colon bool) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '_' && (!colon || c != ':') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// LabelValue returns v as valid UTF-8.
func LabelValue(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// TagValueless is the label value of a tag that has no ':'.
const TagValueless = "true"

// AppendLabels appends to dst the labels of a series: __name__ = name
// (already a valid metric name), host when not empty, and one per tag;
// skip, if not nil, leaves out the tags it reports true for. The labels it
// appends are sorted by name, as remote write requires, and unique; dropped
// counts the tag labels left out for a name already taken.
func AppendLabels(dst []Label, name, host string, tags []string, skip func(tag string) bool) (out []Label, dropped int) {
	start := len(dst)
	dst = append(dst, Label{Name: "__name__", Value: name})
	if host != "" {
		dst = append(dst, Label{Name: "host", Value: LabelValue(host)})
	}
	for _, tag := range tags {
		if skip != nil && skip(tag) {
			continue
		}
		k, v, ok := strings.Cut(tag, ":")
		if !ok {
			v = TagValueless
		} else if v == "" {
			continue
		}
		dst = append(dst, Label{Name: LabelName(k), Value: LabelValue(v)})
	}
	ls := dst[start:]
	// Stable, so that among equal names the first appended stays first
	// and wins below. Series carry a handful of labels: this is an
	// insertion sort that allocates nothing.
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	n := len(ls)
	ls = slices.CompactFunc(ls, func(a, b Label) bool { return a.Name == b.Name })
	return dst[:start+len(ls)], n - len(ls)
}
