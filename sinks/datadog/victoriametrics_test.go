package datadog

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"

	"github.com/veneur-lite/veneur-lite/internal/vmtest"
)

// TestVictoriaMetrics delivers series to a real Datadog-compatible
// receiver and reads them back. VictoriaMetrics (1.79 in Debian) serves
// only the v1 series API under /datadog; it keeps metric names as sent
// (dots included), turns host into a "host" label and each tag into a
// label, gives a tag without a value the value "no_label_value", and
// stores a rate's value as is, ignoring type and interval. It also keeps
// the host and tags of an earlier request for a series that leaves those
// fields out, which is why the sink always sends them; the gzip flush
// below, a hostless series after ones with host and tags, catches that.
func TestVictoriaMetrics(t *testing.T) {
	base := vmtest.Start(t)
	now := time.Now().Unix()

	deflate := newTestSink(t, base+"/datadog", nil)
	gz := newTestSink(t, base+"/datadog/", func(c *Config) { c.Compression = "gzip" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := deflate.Flush(ctx, []metric.Point{
		{Name: "vltest.requests", Tags: []string{"env:prod", "route:/users"}, Host: "web-1", Type: metric.RatePoint, Value: 2.5, Timestamp: now, Interval: 10 * time.Second},
		{Name: "vltest.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Value: -4.25, Timestamp: now},
		{Name: "vltest.latency.99percentile", Tags: []string{"env:prod", "canary"}, Value: 240.125, Timestamp: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := gz.Flush(ctx, []metric.Point{
		{Name: "vltest.gzipped", Host: "h", Value: 7, Timestamp: now},
		{Name: "vltest.global", Value: 8, Timestamp: now},
	}); err != nil {
		t.Fatal(err)
	}
	if deflate.counter("sink.requests", "endpoint:series", "status_class:2xx") != 1 || gz.counter("sink.series_sent") != 2 {
		t.Errorf("self-metrics do not show both requests accepted")
	}

	ms := now * 1000
	want := []vmtest.Series{
		{Metric: map[string]string{"__name__": "vltest.global"}, Values: []float64{8}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.gzipped", "host": "h"}, Values: []float64{7}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.latency.99percentile", "env": "prod", "canary": "no_label_value"}, Values: []float64{240.125}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.queue_depth", "env": "prod", "host": "web-1"}, Values: []float64{-4.25}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.requests", "env": "prod", "route": "/users", "host": "web-1"}, Values: []float64{2.5}, Timestamps: []int64{ms}},
	}
	var got []vmtest.Series
	await.Until(t, 20*time.Second, func() (bool, string) {
		got, err = vmtest.Export(base, `{__name__=~"vltest\\..*"}`)
		if err != nil {
			return false, err.Error()
		}
		return len(got) == len(want), fmt.Sprintf("%d of %d series: %+v", len(got), len(want), got)
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("VictoriaMetrics holds:\n%+v\nwant:\n%+v", got, want)
	}
}

// What VictoriaMetrics (1.79 in Debian) does with the rest of the Datadog
// API, as README.md says: /api/v1/events is an unsupported path (an
// error each interval with an event, hence send_events: false), and
// /api/v1/check_run answers 202 but stores nothing (hence
// send_service_checks: false: they would be sent for nothing).
func TestVictoriaMetricsEventsAndChecks(t *testing.T) {
	base := vmtest.Start(t)
	s := newTestSink(t, base+"/datadog", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().Unix()

	err := s.FlushEvents(ctx, []metric.Event{{Title: "deployed", Text: "v2", Timestamp: now}}, nil)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("an event to VictoriaMetrics: %v, want a 400 error (no events endpoint)", err)
	}
	checks := []metric.ServiceCheck{{Name: "vlcheck.db.up", Status: metric.CheckCritical, Timestamp: now, Hostname: "db-1", HostSet: true, Tags: []string{"env:prod"}}}
	if err := s.FlushEvents(ctx, nil, checks); err != nil {
		t.Errorf("a service check to VictoriaMetrics: %v, want it accepted", err)
	}
	if n := s.counter("sink.requests", "endpoint:check_run", "status_class:2xx"); n != 1 {
		t.Errorf("check_run 2xx answers = %d, want 1", n)
	}
	// A series sent after the check is stored; the check is not.
	if err := s.Flush(ctx, []metric.Point{{Name: "vlcheck.after", Value: 1, Timestamp: now}}); err != nil {
		t.Fatal(err)
	}
	var got []vmtest.Series
	await.Until(t, 20*time.Second, func() (bool, string) {
		got, err = vmtest.Export(base, `{__name__=~".+"}`)
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(got, func(s vmtest.Series) bool { return s.Metric["__name__"] == "vlcheck.after" }),
			fmt.Sprintf("%+v", got)
	})
	if len(got) != 1 {
		t.Errorf("VictoriaMetrics stored %+v; want only vlcheck.after (nothing of the service check)", got)
	}
}
