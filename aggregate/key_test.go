package aggregate

import (
	"slices"
	"testing"
)

// TestSeriesKeyBytes: the decoder's key agrees with SeriesKey byte for
// byte, and its name and tags are those it was given.
func TestSeriesKeyBytes(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		name string
		tags []string
	}{
		{Counter, "jobs", nil},
		{Timer, "a|b", []string{"env:prod"}},
		{Set, "users", []string{"a:1", "b", "z:2"}},
	} {
		var raw [][]byte
		for _, tag := range tc.tags {
			raw = append(raw, []byte(tag))
		}
		key, name, tags := SeriesKeyBytes(tc.kind, []byte(tc.name), raw)
		if want := SeriesKey(tc.kind, tc.name, tc.tags); key != want {
			t.Errorf("key %q, want %q", key, want)
		}
		if name != tc.name || !slices.Equal(tags, tc.tags) {
			t.Errorf("name %q tags %q, want %q %q", name, tags, tc.name, tc.tags)
		}
	}
}
