package prometheus

import (
	"math"
	"strings"
)

// goldenSeries is one series of the golden WriteRequest, in a neutral
// form: labels as name, value pairs.
type goldenSeries struct {
	labels []string
	value  float64
	ms     int64
}

// goldenCases covers what the encoder must get right byte for byte:
// multi-byte lengths (a value and a series over 127 bytes), a value of
// zero and a timestamp of zero (both omitted by proto3), negative
// timestamps (ten-byte varints), NaN, infinities, subnormals and UTF-8.
var goldenCases = []goldenSeries{
	{labels: []string{"__name__", "up"}, value: 1, ms: 1_700_000_000_000},
	{labels: []string{"__name__", "api_requests", "env", "prod", "host", "web-17", "route", "/users/{id}"}, value: 2.5, ms: 1_700_000_010_000},
	{labels: []string{"__name__", "zero"}, value: 0, ms: 0},
	{labels: []string{"__name__", "negative", "utf8", "héllo✓"}, value: -4.25, ms: -1},
	{labels: []string{"__name__", "nan"}, value: math.NaN(), ms: 1},
	{labels: []string{"__name__", "inf"}, value: math.Inf(1), ms: math.MaxInt64},
	{labels: []string{"__name__", "neg_inf"}, value: math.Inf(-1), ms: math.MinInt64},
	{labels: []string{"__name__", "tiny"}, value: 5e-324, ms: 127},
	{labels: []string{"__name__", "long", "v", strings.Repeat("x", 300)}, value: 1e300, ms: 128},
}
