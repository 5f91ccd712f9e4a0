package metric

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestPercentileName(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want string
	}{
		{0.5, "50percentile"},
		{0.75, "75percentile"},
		{0.99, "99percentile"},
		{0.999, "999percentile"},
		{0.995, "995percentile"},
		{0.9999, "9999percentile"},
		{0.05, "5percentile"},
		{0.01, "1percentile"},
		{0.001, "001percentile"},
		{0.57, "57percentile"},
		{0.1, "10percentile"},
	} {
		if got := PercentileName(tc.p); got != tc.want {
			t.Errorf("PercentileName(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestNewPercentiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ps      []float64
		wantErr string
	}{
		{"zero", []float64{0}, "percentiles[0]: percentile 0: must be strictly between 0 and 1"},
		{"one", []float64{0.5, 1}, "percentiles[1]: percentile 1: must be strictly between 0 and 1"},
		{"NaN", []float64{math.NaN()}, "percentiles[0]: percentile NaN"},
		{"twice", []float64{0.5, 0.9, 0.5}, `percentiles[2]: 0.5 and 0.5 both name "50percentile"`},
		{"one name", []float64{0.99, 0.990}, `percentiles[1]: 0.99 and 0.99 both name "99percentile"`},
	} {
		_, err := NewPercentiles(tc.ps)
		var pe *PercentileError
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &pe) {
			t.Errorf("%s: NewPercentiles(%v) error = %v, want a *PercentileError containing %q", tc.name, tc.ps, err, tc.wantErr)
		}
	}
	ps, err := NewPercentiles([]float64{0.5, 0.999})
	if err != nil || ps.Len() != 2 {
		t.Fatalf("NewPercentiles = %v (%d), want 2 percentiles", err, ps.Len())
	}
	var b strings.Builder
	ps.AppendNames(&b, "req")
	if got, want := b.String(), "req.50percentilereq.999percentile"; got != want || ps.NamesLen("req") != len(want) {
		t.Errorf("AppendNames = %q (NamesLen %d), want %q", got, ps.NamesLen("req"), want)
	}
}
