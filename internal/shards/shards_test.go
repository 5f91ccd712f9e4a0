package shards

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, Default}, {-3, Default}, {1, 1}, {2, 2}, {3, 4}, {5, 8}, {64, 64}, {Max - 1, Max}, {Max, Max}} {
		if got, err := Count(tc.n); err != nil || got != tc.want {
			t.Errorf("Count(%d) = %d, %v; want %d", tc.n, got, err, tc.want)
		}
	}
	if _, err := Count(Max + 1); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("Count(Max+1) error = %v, want one naming the bound", err)
	}
}
