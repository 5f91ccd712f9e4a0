package datadog

import (
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/httpsink"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// benchPoints is one interval of a mid-sized service fleet: histogram
// aggregates and counters over 100 hosts, five tags each. As in a flush,
// the points of one series come together and share one Tags slice.
func benchPoints(n int) []metric.Point {
	rng := rand.New(rand.NewPCG(7, 8))
	suffixes := []string{"min", "max", "count", "50percentile", "99percentile"}
	points := make([]metric.Point, n)
	var tags []string
	for i := range points {
		series := i / len(suffixes)
		if i%len(suffixes) == 0 {
			tags = []string{
				"env:prod",
				fmt.Sprintf("endpoint:/api/v1/items/%d", series%200),
				"region:us-east-1",
				fmt.Sprintf("service:svc%02d", series%50),
				"version:1.4.2",
			}
		}
		p := metric.Point{
			Name:      fmt.Sprintf("app.svc%02d.http.request.latency.%s", series%50, suffixes[i%len(suffixes)]),
			Tags:      tags,
			Host:      fmt.Sprintf("host-%03d.prod.example.com", series%100),
			Value:     rng.Float64() * 1000,
			Timestamp: 1_790_000_000,
		}
		if i%len(suffixes) == 2 {
			p.Type, p.Interval = metric.RatePoint, 10*time.Second
		}
		points[i] = p
	}
	return points
}

// BenchmarkEncodeSeries measures encoding and compressing a flush into
// request bodies, the sink's CPU cost per interval (sending excluded).
//
//	go test ./sinks/datadog/ -run '^$' -bench 'EncodeSeries' -benchmem -count 6 | tee bench.txt
//	benchstat bench.txt
func BenchmarkEncodeSeries(b *testing.B) {
	points := benchPoints(10000)
	for _, tc := range []struct{ version, compression string }{
		{"v1", "deflate"}, {"v1", "gzip"}, {"v2", "deflate"},
	} {
		b.Run(tc.version+"/"+tc.compression, func(b *testing.B) {
			cfg := Config{APIKey: "k", APIVersion: tc.version, Compression: tc.compression}
			cfg.SetDefaults()
			s, err := New("bench", cfg, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			var wire, raw int
			b.ReportAllocs()
			for b.Loop() {
				wire, raw = 0, 0
				var out httpsink.Outcome
				s.encodeSeries(points, &out, func(body *body) bool {
					wire += body.buf.Len()
					raw += body.raw
					s.putBody(body)
					return true
				})
				if out.Dropped() != 0 {
					b.Fatal(out.Err("series", len(points)))
				}
			}
			b.SetBytes(int64(raw))
			b.ReportMetric(float64(len(points))*float64(b.N)/b.Elapsed().Seconds(), "series/s")
			b.ReportMetric(float64(wire)/float64(len(points)), "bytes/series")
		})
	}
}

// reflectSeries is the v1 series in encoding/json's terms, the baseline
// the hand-written encoder is measured against.
type reflectSeries struct {
	Metric   string       `json:"metric"`
	Points   [][2]float64 `json:"points"`
	Type     string       `json:"type"`
	Interval int64        `json:"interval,omitempty"`
	Host     string       `json:"host,omitempty"`
	Tags     []string     `json:"tags,omitempty"`
}

// BenchmarkEncodeJSON compares the hand-written v1 encoder with
// encoding/json on the JSON alone and with zlib, to justify the former.
//
//	go test ./sinks/datadog/ -run '^$' -bench 'EncodeJSON' -benchmem -count 6
func BenchmarkEncodeJSON(b *testing.B) {
	points := benchPoints(10000)
	encodeReflect := func(w io.Writer) {
		enc := json.NewEncoder(w)
		series := make([]reflectSeries, len(points))
		for i, p := range points {
			rs := reflectSeries{Metric: p.Name, Points: [][2]float64{{float64(p.Timestamp), p.Value}}, Type: "gauge", Host: p.Host, Tags: p.Tags}
			if p.Type == metric.RatePoint {
				rs.Type, rs.Interval = "rate", intervalSeconds(p.Interval)
			}
			series[i] = rs
		}
		if err := enc.Encode(map[string]any{"series": series}); err != nil {
			b.Fatal(err)
		}
	}
	encodeHand := func(w io.Writer, buf []byte) []byte {
		buf = append(buf[:0], seriesPrefix...)
		for i := range points {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendSeriesV1(buf, &points[i], nil)
		}
		buf = append(buf, seriesSuffix...)
		_, _ = w.Write(buf)
		return buf
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(len(points))*float64(b.N)/b.Elapsed().Seconds(), "series/s")
	}
	b.Run("hand", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = encodeHand(io.Discard, buf)
		}
		report(b)
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeReflect(io.Discard)
		}
		report(b)
	})
	for _, level := range []int{zlib.BestSpeed, zlib.DefaultCompression} {
		zw, _ := zlib.NewWriterLevel(io.Discard, level)
		b.Run(fmt.Sprintf("hand+zlib-level%d", level), func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				zw.Reset(io.Discard)
				buf = encodeHand(zw, buf)
				zw.Close()
			}
			report(b)
		})
		b.Run(fmt.Sprintf("reflect+zlib-level%d", level), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				zw.Reset(io.Discard)
				encodeReflect(zw)
				zw.Close()
			}
			report(b)
		})
	}
}

// BenchmarkFlush measures whole flushes, encoding and sending, to a
// loopback intake that accepts everything: the sink's throughput with the
// default concurrency.
//
//	go test ./sinks/datadog/ -run '^$' -bench 'Flush' -benchmem -count 6
func BenchmarkFlush(b *testing.B) {
	points := benchPoints(100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	cfg := Config{APIKey: "k", APIHostname: srv.URL}
	cfg.SetDefaults()
	reg := telemetry.NewRegistry()
	s, err := New("bench", cfg, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Flush(context.Background(), points); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(points))*float64(b.N)/b.Elapsed().Seconds(), "series/s")
	b.ReportMetric(float64(reg.Counter("sink.sent_bytes", "sink:bench").Load())/float64(len(points)*b.N), "bytes/series")
}
