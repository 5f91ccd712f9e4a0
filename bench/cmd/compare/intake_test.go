package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks/datadog"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

// The intake counts what veneur-lite's real datadog sink sends: rate
// points of loadgen.* series (counters and histogram .count) as value ×
// interval, per series and in all; veneur.* rates by name; gauges not at
// all. Bodies are built by the sink itself, in both compressions it has,
// cut small so that one flush makes several.
func TestIntakeCountsWhatTheDatadogSinkSends(t *testing.T) {
	for _, compression := range []string{"deflate", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			in, err := newIntake()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			cfg := datadog.Config{APIKey: "k", APIHostname: in.URL(), Compression: compression, FlushMaxPerBody: 7}
			cfg.SetDefaults()
			sink, err := datadog.New("dd", cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			const interval = 2 * time.Second
			rate := func(name string, count float64, tags ...string) metric.Point {
				return metric.Point{Name: name, Tags: tags, Host: "h", Type: metric.RatePoint,
					Value: count / interval.Seconds(), Timestamp: 1700000000, Interval: interval}
			}
			gauge := func(name string, v float64) metric.Point {
				return metric.Point{Name: name, Host: "h", Type: metric.GaugePoint, Value: v, Timestamp: 1700000000}
			}
			var points []metric.Point
			wantPer := map[string]float64{}
			want := 0.0
			for i := range 20 {
				name := fmt.Sprintf("loadgen.counter.%d", i%4)
				tag := fmt.Sprintf("env:env-%d", i)
				points = append(points, rate(name, float64(i+1), tag))
				wantPer[name+"|"+tag] += float64(i + 1)
				want += float64(i + 1)
			}
			points = append(points,
				rate("loadgen.timer.0.count", 3, "a:b", "c:d"),
				gauge("loadgen.timer.0.max", 99),
				gauge("loadgen.timer.0.50percentile", 42),
				gauge("loadgen.gauge.0", 1e6),
				gauge("loadgen.set.0", 17),
				rate("veneur.listener.packets_dropped", 5, "protocol:udp"),
				rate("veneur.listener.packets_dropped", 2, "protocol:unixgram"),
				rate("veneur.listener.metrics_received", 123, "protocol:udp"),
				gauge("veneur.flush.duration_seconds", 3),
			)
			wantPer["loadgen.timer.0.count|a:b,c:d"] = 3
			want += 3
			// d series go out as sketches: each counts its samples.
			var sketches []metric.SketchPoint
			for i := range 9 {
				var sk agentsketch.Sketch
				for v := range i + 1 {
					sk.Insert(float64(v+1), 1)
				}
				name := fmt.Sprintf("loadgen.distribution.%d", i)
				sketches = append(sketches, metric.SketchPoint{Name: name, Tags: []string{"k:v"}, Host: "h", Timestamp: 1700000000, Sketch: &sk})
				wantPer[name+"|k:v"] += float64(i + 1)
				want += float64(i + 1)
			}
			// Twice, as two intervals would: a point of the second is
			// stamped an interval later (the same bodies again would be a
			// retry, which counts once).
			for i := range 2 {
				for j := range points {
					points[j].Timestamp += int64(i) * int64(interval.Seconds())
				}
				for j := range sketches {
					sketches[j].Timestamp += int64(i) * int64(interval.Seconds())
				}
				if err := sink.Flush(context.Background(), points); err != nil {
					t.Fatal(err)
				}
				if err := sink.FlushSketches(context.Background(), sketches); err != nil {
					t.Fatal(err)
				}
			}
			bodies, unexpected := in.take()
			if len(unexpected) > 0 || len(bodies) < 4 {
				t.Fatalf("%d bodies, unexpected requests %q", len(bodies), unexpected)
			}
			got, err := decodeBodies(bodies)
			if err != nil {
				t.Fatal(err)
			}
			if got.Countable != 2*want || got.Points != 2*(len(points)+len(sketches)) || got.Duplicates != 0 {
				t.Errorf("countable %v points %d duplicates %d, want %v, %d, 0", got.Countable, got.Points, got.Duplicates, 2*want, 2*(len(points)+len(sketches)))
			}
			if len(got.PerSeries) != len(wantPer) {
				t.Errorf("%d series, want %d: %v", len(got.PerSeries), len(wantPer), got.PerSeries)
			}
			for k, v := range wantPer {
				if got.PerSeries[k] != 2*v {
					t.Errorf("series %s: %v, want %v", k, got.PerSeries[k], 2*v)
				}
			}
			wantSelf := map[string]float64{"veneur.listener.packets_dropped": 14, "veneur.listener.metrics_received": 246}
			if len(got.Self) != len(wantSelf) || got.Self["veneur.listener.packets_dropped"] != 14 || got.Self["veneur.listener.metrics_received"] != 246 {
				t.Errorf("self %v, want %v", got.Self, wantSelf)
			}
			// take starts afresh.
			if again, _ := in.take(); len(again) != 0 {
				t.Errorf("take kept %d bodies", len(again))
			}
		})
	}
}

// A body posted twice (a retry the intake had accepted) counts once.
func TestIntakeCountsARepeatedBodyOnce(t *testing.T) {
	in, err := newIntake()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"series":[{"metric":"loadgen.counter.1","points":[[1700000000,0.5]],"type":"rate","interval":10,"host":"h","tags":[]},` +
		`{"metric":"loadgen.counter.2","points":[[1700000000,7]],"type":"count","interval":0,"host":"h","tags":["x:y"]}]}`))
	_ = zw.Close()
	for range 2 {
		post(t, in.URL()+"/api/v1/series", "deflate", buf.Bytes(), http.StatusAccepted)
	}
	bodies, _ := in.take()
	got, err := decodeBodies(bodies)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bodies != 2 || got.Duplicates != 1 || got.Countable != 12 || got.PerSeries["loadgen.counter.1|"] != 5 {
		t.Errorf("got %+v, want 2 bodies, 1 duplicate, 12 counted", got)
	}
}

// Anything but the v1 intake's and the sketch intake's paths is refused and reported, so that a
// misconfigured sink fails the run instead of reading as total loss.
func TestIntakeReportsUnexpectedRequests(t *testing.T) {
	in, err := newIntake()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	post(t, in.URL()+"/api/v2/series", "", []byte(`{}`), http.StatusNotFound)
	post(t, in.URL()+"/api/v1/check_run", "", []byte(`[]`), http.StatusAccepted)
	_, unexpected := in.take()
	if len(unexpected) != 1 || !strings.Contains(unexpected[0], "/api/v2/series") {
		t.Errorf("unexpected = %q", unexpected)
	}
	// A body that is not what it claims fails the decoding with context.
	if _, err := decodeBodies([]rawBody{{encoding: "deflate", data: []byte("not zlib")}}); err == nil || !strings.Contains(err.Error(), "deflate") {
		t.Errorf("bad body: err = %v", err)
	}
	if _, err := decodeBodies([]rawBody{{data: []byte(`{"series":[{"metric":"loadgen.c","type":"rate","points":[[1,1]]}]}`)}}); err == nil {
		t.Error("a rate without interval was accepted")
	}
}

func post(t *testing.T, url, encoding string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d", url, resp.StatusCode, want)
	}
}
