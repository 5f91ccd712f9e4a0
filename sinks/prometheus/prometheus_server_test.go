package prometheus

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/promtest"
	"github.com/veneur-lite/veneur-lite/metric"
)

// TestRealPrometheus delivers series to a real Prometheus (2.42 in Debian
// 12) and reads them back through its query API: Prometheus validates
// names, labels and their order itself, and what it stores is what a
// PromQL user sees. It also shows that sending a request again — what a
// retry after a lost answer does — is accepted and stores nothing twice,
// and that Prometheus's 400 for an out-of-order sample is not retried.
func TestRealPrometheus(t *testing.T) {
	base := promtest.Start(t)
	now := time.Now().Truncate(time.Second)
	ts := now.Unix()

	s := newTestSink(t, base+promtest.WritePath, func(c *Config) { c.FlushMaxPerBody = 4 })
	points := []metric.Point{
		{Name: "prt.requests", Tags: []string{"env:prod", "route:/users"}, Host: "web-1", Type: metric.RatePoint, Value: 2.5, Timestamp: ts, Interval: 10 * time.Second},
		{Name: "prt.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Value: -4.25, Timestamp: ts},
		{Name: "prt.latency.99percentile", Tags: []string{"canary", "env:prod"}, Value: 240.125, Timestamp: ts},
		{Name: "prt.2xx", Tags: []string{"Zone:eu", "__meta:x", "dc.region:us-east-1", "empty:", "9lives:yes", "path:/a:b", "utf8:héllo✓"}, Host: "h", Value: 7, Timestamp: ts},
		{Name: "prt.dup", Tags: []string{"a.b:1", "a_b:2"}, Host: "h", Value: 1, Timestamp: ts},
		{Name: "prt_dup", Tags: []string{"a.b:1"}, Host: "h", Value: 2, Timestamp: ts}, // collides with prt.dup: dropped
		{Name: "prt.inf", Value: math.Inf(1), Timestamp: ts},
		{Name: "prt.tiny", Value: 1e-9, Timestamp: ts},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx, points); err != nil {
		t.Fatal(err)
	}
	// The same flush again, as a retry of requests that did arrive would
	// send them: accepted, and nothing stored twice.
	if err := s.Flush(ctx, points); err != nil {
		t.Fatalf("identical resend: %v", err)
	}
	if s.counter("sink.series_sent") != 14 || s.counter("sink.requests", "status_class:2xx") != 4 || s.counter("sink.retries") != 0 {
		t.Errorf("sent %d series in %d 2xx requests with %d retries, want 14 in 4 with none",
			s.counter("sink.series_sent"), s.counter("sink.requests", "status_class:2xx"), s.counter("sink.retries"))
	}

	ms := ts * 1000
	want := []promtest.Series{
		{Metric: map[string]string{"__name__": "prt_2xx", "Zone": "eu", "_meta": "x", "dc_region": "us-east-1", "_9lives": "yes", "path": "/a:b", "utf8": "héllo✓", "host": "h"}},
		{Metric: map[string]string{"__name__": "prt_dup", "a_b": "1", "host": "h"}},
		{Metric: map[string]string{"__name__": "prt_inf"}},
		{Metric: map[string]string{"__name__": "prt_latency_99percentile", "canary": "true", "env": "prod"}},
		{Metric: map[string]string{"__name__": "prt_queue_depth", "env": "prod", "host": "web-1"}},
		{Metric: map[string]string{"__name__": "prt_requests", "env": "prod", "route": "/users", "host": "web-1"}},
		{Metric: map[string]string{"__name__": "prt_tiny"}},
	}
	values := []float64{7, 1, math.Inf(1), 240.125, -4.25, 2.5, 1e-9}
	for i := range want {
		want[i].Values, want[i].Timestamps = []float64{values[i]}, []int64{ms}
	}
	var got []promtest.Series
	var err error
	await.Until(t, 20*time.Second, func() (bool, string) {
		got, err = promtest.Raw(base, `{__name__=~"prt_.*"}`, time.Hour, now.Add(time.Second))
		if err != nil {
			return false, err.Error()
		}
		return len(got) >= len(want), fmt.Sprintf("%d of %d series: %+v", len(got), len(want), got)
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Prometheus holds:\n%+v\nwant:\n%+v", got, want)
	}

	// An older sample for a series Prometheus holds is out of order: it
	// answers 400, and the sink drops the request without retrying.
	before := s.counter("sink.requests", "status_class:4xx")
	old := []metric.Point{{Name: "prt.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Value: 1, Timestamp: ts - 60}}
	err = s.Flush(ctx, old)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("out-of-order sample: %v, want a 400", err)
	}
	if s.counter("sink.requests", "status_class:4xx") != before+1 || s.counter("sink.retries") != 0 {
		t.Errorf("4xx requests %d, retries %d: want exactly one request", s.counter("sink.requests", "status_class:4xx")-before, s.counter("sink.retries"))
	}
	if !strings.Contains(s.logs.String(), "out of order") {
		t.Errorf("the receiver's reason is not in the log:\n%s", s.logs)
	}
}
