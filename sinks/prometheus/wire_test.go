package prometheus

import (
	"bytes"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/veneur-lite/veneur-lite/internal/promname"
)

// testdata/write_request.pb is goldenCases as the generated code of the
// Prometheus server module (prompb v0.316.0, gogo protobuf) marshalled it,
// before this hand-written encoder replaced it; it is not regenerated.

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

func goldenTimeSeries() []timeSeries {
	var out []timeSeries
	for _, c := range goldenCases {
		ts := timeSeries{value: c.value, ms: c.ms}
		for i := 0; i < len(c.labels); i += 2 {
			ts.labels = append(ts.labels, promname.Label{Name: c.labels[i], Value: c.labels[i+1]})
		}
		out = append(out, ts)
	}
	return out
}

// TestWriteRequestGolden pins the encoder to the bytes the generated code
// produced, and the test decoder to the same bytes, so that the two are
// each checked against the reference rather than against each other.
func TestWriteRequestGolden(t *testing.T) {
	want, err := os.ReadFile("testdata/write_request.pb")
	if err != nil {
		t.Fatal(err)
	}
	series := goldenTimeSeries()
	got := appendWriteRequest([]byte("prefix"), series)
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Errorf("encoded:\n%x\nwant:\n%x", got, want)
	}
	if n := writeRequestSize(series); n != len(want) {
		t.Errorf("writeRequestSize = %d, want %d", n, len(want))
	}

	req, err := decodeWriteRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, req, series)
}

// checkDecoded fails unless req holds exactly series, one sample each.
func checkDecoded(t *testing.T, req wireRequest, series []timeSeries) {
	t.Helper()
	if req.Metadata != 0 || len(req.Timeseries) != len(series) {
		t.Fatalf("decoded %d series and %d metadata, want %d series", len(req.Timeseries), req.Metadata, len(series))
	}
	for i, ts := range req.Timeseries {
		want := series[i]
		labels := make([]promname.Label, len(ts.Labels))
		for j, l := range ts.Labels {
			labels[j] = promname.Label{Name: l.Name, Value: l.Value}
		}
		if !slices.Equal(labels, want.labels) || ts.Exemplars != 0 || ts.Histograms != 0 {
			t.Errorf("series %d: labels %v, %d exemplars, %d histograms; want labels %v", i, labels, ts.Exemplars, ts.Histograms, want.labels)
		}
		wantValue := want.value
		if wantValue == 0 {
			wantValue = 0 // -0 is sent as an absent field, read as +0
		}
		if len(ts.Samples) != 1 || math.Float64bits(ts.Samples[0].Value) != math.Float64bits(wantValue) || ts.Samples[0].Timestamp != want.ms {
			t.Errorf("series %d: samples %v, want one of %v @%d", i, ts.Samples, want.value, want.ms)
		}
	}
}

// FuzzWriteRequest encodes arbitrary series and decodes them again with
// the protobuf library; every value and timestamp must come back as it
// went, NaN payloads included.
func FuzzWriteRequest(f *testing.F) {
	f.Add("env", "prod", "api_requests", 2.5, int64(1_700_000_000_000), 3)
	f.Add("", "", "x", math.Copysign(0, -1), int64(-1), 0)
	f.Add("v", strings.Repeat("é", 200), "n", math.NaN(), int64(math.MinInt64), 1)
	f.Fuzz(func(t *testing.T, name, value, metric string, v float64, ms int64, n int) {
		if !utf8.ValidString(name) || !utf8.ValidString(value) || !utf8.ValidString(metric) {
			t.Skip("proto3 strings are UTF-8; promname guarantees it")
		}
		n = max(0, n%8)
		series := make([]timeSeries, n)
		for i := range series {
			series[i] = timeSeries{
				labels: []promname.Label{{Name: "__name__", Value: metric}, {Name: name, Value: value}},
				value:  v + float64(i),
				ms:     ms - int64(i),
			}
		}
		raw := appendWriteRequest(nil, series)
		if len(raw) != writeRequestSize(series) {
			t.Fatalf("encoded %d bytes, writeRequestSize says %d", len(raw), writeRequestSize(series))
		}
		req, err := decodeWriteRequest(raw)
		if err != nil {
			t.Fatalf("decode: %v\n%x", err, raw)
		}
		// An empty name or value is an absent field, read back as "".
		checkDecoded(t, req, series)
	})
}
