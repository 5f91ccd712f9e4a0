package prometheus

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// benchPoints is one interval of n series shaped like real traffic: a
// dotted name, three tags, a host.
func benchPoints(n int) []metric.Point {
	ps := make([]metric.Point, n)
	for i := range ps {
		ps[i] = metric.Point{
			Name:      fmt.Sprintf("service.http.requests.%d", i%500),
			Tags:      []string{fmt.Sprintf("endpoint:/api/v%d/items", i/500), "env:prod", "region:eu-west-1"},
			Host:      "web-17",
			Type:      metric.RatePoint,
			Value:     float64(i) / 10,
			Timestamp: ts0,
			Interval:  10 * time.Second,
		}
	}
	return ps
}

// BenchmarkToSeries is the mapping alone: names and tags to sorted labels,
// and the collision check.
//
//	go test -run '^$' -bench ToSeries -benchmem -count 6 ./sinks/prometheus/
func BenchmarkToSeries(b *testing.B) {
	points := benchPoints(10_000)
	s, err := New("bench", func() Config { c := Config{URL: "http://127.0.0.1:1/w"}; c.SetDefaults(); return c }(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := s.toSeries(points); len(got) != len(points) {
			b.Fatalf("%d series", len(got))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(points)), "ns/series")
}

// BenchmarkFlush is a whole flush of 10,000 series to a receiver that
// reads and discards: mapping, protobuf, snappy and HTTP.
//
//	go test -run '^$' -bench Flush -benchmem -count 6 ./sinks/prometheus/
func BenchmarkFlush(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL}
	cfg.SetDefaults()
	reg := telemetry.NewRegistry()
	s, err := New("bench", cfg, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	points := benchPoints(10_000)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Flush(context.Background(), points); err != nil {
			b.Fatal(err)
		}
	}
	sent := reg.Counter("sink.sent_bytes", "sink:bench").Load()
	b.ReportMetric(float64(sent)/float64(b.N), "wire_bytes/flush")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(points)), "ns/series")
}
