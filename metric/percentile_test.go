package metric

import "testing"

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
