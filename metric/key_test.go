package metric

import (
	"slices"
	"testing"
)

// TestSeriesKeyFormat pins the byte format of the fleet-wide identity: a
// change here re-keys every series on every global (and splits a fleet
// mid-upgrade), so it must be deliberate.
func TestSeriesKeyFormat(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		name string
		tags []string
		want string
	}{
		{Counter, "jobs", nil, "counter|jobs|"},
		{Gauge, "queue.depth", []string{"env:prod"}, "gauge|queue.depth|env:prod"},
		{Histogram, "a|b", []string{"env:prod", "x"}, "histogram|a|b|env:prod,x"},
		{Set, "users", []string{"a:1", "b", "z:2"}, "set|users|a:1,b,z:2"},
	} {
		if got := SeriesKey(tc.kind, tc.name, tc.tags); got != tc.want {
			t.Errorf("SeriesKey(%v, %q, %q) = %q, want %q", tc.kind, tc.name, tc.tags, got, tc.want)
		}
	}
}

// TestKeyedSeries: a decoder's series has SeriesKey's key, and its name
// and tags are those it was given.
func TestKeyedSeries(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		name string
		tags []string
	}{
		{Counter, "jobs", nil},
		{Histogram, "a|b", []string{"env:prod"}},
		{Set, "users", []string{"a:1", "b", "z:2"}},
	} {
		var raw [][]byte
		for _, tag := range tc.tags {
			raw = append(raw, []byte(tag))
		}
		s := KeyedSeries(tc.kind, []byte(tc.name), raw)
		if want := SeriesKey(tc.kind, tc.name, tc.tags); s.Key != want {
			t.Errorf("key %q, want %q", s.Key, want)
		}
		if s.Kind != tc.kind || s.Name != tc.name || !slices.Equal(s.Tags, tc.tags) {
			t.Errorf("kind %v name %q tags %q, want %v %q %q", s.Kind, s.Name, s.Tags, tc.kind, tc.name, tc.tags)
		}
	}
}
