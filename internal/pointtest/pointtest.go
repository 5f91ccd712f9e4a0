// Package pointtest compares flushed points in tests: whole slices,
// order-insensitive, with a readable diff.
package pointtest

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
)

// Sort orders points by name, tags, host and value so whole slices
// compare.
func Sort(points []metric.Point) {
	slices.SortFunc(points, func(x, y metric.Point) int {
		return cmp.Or(
			cmp.Compare(x.Name, y.Name),
			slices.Compare(x.Tags, y.Tags),
			cmp.Compare(x.Host, y.Host),
			cmp.Compare(x.Value, y.Value),
		)
	})
}

// Format renders points one per line.
func Format(points []metric.Point) string {
	var b strings.Builder
	for _, p := range points {
		fmt.Fprintf(&b, "\t%s %v host=%q %s %v ts=%d interval=%v\n", p.Name, p.Tags, p.Host, p.Type, p.Value, p.Timestamp, p.Interval)
	}
	return b.String()
}

// Assert fails t unless got and want hold the same points, in any order.
// It sorts both.
func Assert(t testing.TB, got, want []metric.Point) {
	t.Helper()
	Sort(got)
	Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("points:\ngot\n%swant\n%s", Format(got), Format(want))
	}
}

// NilIfEmpty returns nil for no tags, as flushed points carry them.
func NilIfEmpty(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return tags
}
