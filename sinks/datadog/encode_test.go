package datadog

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/DataDog/agent-payload/v5/gogen"

	"github.com/veneur-lite/veneur-lite/metric"
)

func TestAppendSeriesExact(t *testing.T) {
	rate := metric.Point{Name: "a.b", Tags: []string{"x:1", "y"}, Host: "h1", Type: metric.RatePoint, Value: 2.5, Timestamp: 1700000000, Interval: 10 * time.Second}
	gauge := metric.Point{Name: "g", Value: -3, Timestamp: 1700000000}
	for _, tc := range []struct {
		f    func([]byte, *metric.Point, *fieldCache) []byte
		p    metric.Point
		want string
	}{
		{appendSeriesV1, rate, `{"metric":"a.b","points":[[1700000000,2.5]],"type":"rate","interval":10,"host":"h1","tags":["x:1","y"]}`},
		{appendSeriesV1, gauge, `{"metric":"g","points":[[1700000000,-3]],"type":"gauge","interval":0,"host":"","tags":[]}`},
	} {
		if got := string(tc.f(nil, &tc.p, nil)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		if got := string(tc.f(nil, &tc.p, new(fieldCache))); got != tc.want {
			t.Errorf("with a cache: got  %s\nwant %s", got, tc.want)
		}
	}
}

// v2 is the Agent's MetricPayload protobuf: read back with its own types.
func TestAppendSeriesV2Protobuf(t *testing.T) {
	rate := metric.Point{Name: "a.b", Tags: []string{"x:1", "y"}, Host: "h1", Type: metric.RatePoint, Value: 2.5, Timestamp: 1700000000, Interval: 10 * time.Second}
	gauge := metric.Point{Name: "g", Value: -3, Timestamp: 1700000000}
	var c fieldCache
	body := appendSeriesV2(nil, &rate, &c)
	body = appendSeriesV2(body, &gauge, &c)
	var p gogen.MetricPayload
	if err := p.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	want := []*gogen.MetricPayload_MetricSeries{
		{Metric: "a.b", Tags: []string{"x:1", "y"}, Type: gogen.MetricPayload_RATE, Interval: 10,
			Resources: []*gogen.MetricPayload_Resource{{Type: "host", Name: "h1"}},
			Points:    []*gogen.MetricPayload_MetricPoint{{Value: 2.5, Timestamp: 1700000000}}},
		{Metric: "g", Type: gogen.MetricPayload_GAUGE, Points: []*gogen.MetricPayload_MetricPoint{{Value: -3, Timestamp: 1700000000}}},
	}
	if !reflect.DeepEqual(p.Series, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", p.Series, want)
	}
}

// TestFieldCacheFollowsThePoints: a cache reused across points encodes each
// as it would alone, whether a point shares the last one's tags slice and
// host, or has a slice of the same length over other tags, an empty one,
// or another host.
func TestFieldCacheFollowsThePoints(t *testing.T) {
	series := []string{"a:1", "b:2"}
	other := []string{"a:1", "b:3"}
	points := []metric.Point{
		{Name: "x.min", Tags: series, Host: "h1"},
		{Name: "x.max", Tags: series, Host: "h1"},
		{Name: "y", Tags: other, Host: "h1"},
		{Name: "y2", Tags: other[:1], Host: "h1"},
		{Name: "z", Host: "h1"},
		{Name: "z", Tags: []string{}, Host: "h\"2\""},
		{Name: "w", Tags: series, Host: ""},
	}
	for _, f := range []func([]byte, *metric.Point, *fieldCache) []byte{appendSeriesV1, appendSeriesV2} {
		var c fieldCache
		for i := range points {
			want := string(f(nil, &points[i], nil))
			if got := string(f(nil, &points[i], &c)); got != want {
				t.Errorf("point %d: got  %s\nwant %s", i, got, want)
			}
		}
	}
}

func TestIntervalSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{10 * time.Second: 10, 1500 * time.Millisecond: 2, 0: 1, time.Minute: 60} {
		if got := intervalSeconds(d); got != want {
			t.Errorf("intervalSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// checkString verifies that appendString(s) is valid JSON decoding to what
// encoding/json's own encoding of s decodes to.
func checkString(t *testing.T, s string) {
	t.Helper()
	var got, want string
	if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
		t.Fatalf("appendString(%q) = %s: %v", s, appendString(nil, s), err)
	}
	ref, _ := json.Marshal(s)
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("appendString(%q) decodes to %q, want %q", s, got, want)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `"\`, "a\nb\r\tc", "\x00\x01\x1f\x7f", "héllo ✓ 😀", "bad \xff\xfe utf8", "\u2028\u2029", "<&>", "trail\xc3"} {
		checkString(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "é\x00"} {
		f.Add(s)
	}
	f.Fuzz(checkString)
}

func TestAppendFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-7, 1e-6, 123456789.125, 1e20, 1e21, -1.5e300, math.MaxFloat64, math.SmallestNonzeroFloat64}
	for range 1000 {
		values = append(values, math.Float64frombits(rng.Uint64()))
	}
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		b := appendFloat(nil, v)
		var got float64
		if err := json.Unmarshal(b, &got); err != nil || got != v {
			t.Fatalf("appendFloat(%v) = %s, decodes to %v, %v", v, b, got, err)
		}
	}
}

// TestWorstCompressed checks the bound the chunker relies on against
// incompressible input.
func TestWorstCompressed(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 100, 16384, 70000, 1 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		var buf bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&buf, zlib.DefaultCompression)
		_, _ = zw.Write(data)
		zw.Close()
		if buf.Len() > worstCompressed(n) {
			t.Errorf("%d random bytes compressed to %d, over the bound %d", n, buf.Len(), worstCompressed(n))
		}
	}
}

func TestEventAndCheckJSON(t *testing.T) {
	e := metric.Event{Title: "t", Text: "x", Timestamp: 5, Hostname: "h", AggregationKey: "k", Priority: "low", SourceType: "s", AlertType: "error", Tags: []string{"a"}}
	want := `{"title":"t","text":"x","date_happened":5,"host":"h","aggregation_key":"k","priority":"low","source_type_name":"s","alert_type":"error","tags":["a"]}`
	if got := string(appendEvent(nil, &e, 9)); got != want {
		t.Errorf("event %s\nwant  %s", got, want)
	}
	c := metric.ServiceCheck{Name: "c", Status: metric.CheckWarning}
	want = `{"check":"c","host_name":"","status":1,"timestamp":9,"tags":[]}`
	if got := string(appendCheck(nil, &c, 9)); got != want {
		t.Errorf("check %s\nwant  %s", got, want)
	}
}
