package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/promtest"
)

// promRaw returns the samples stored for the series matching selector,
// keyed by metric name (each name here has one label set).
func promRaw(base, selector string, at time.Time) (map[string]promtest.Series, error) {
	series, err := promtest.Raw(base, selector, time.Hour, at)
	if err != nil {
		return nil, err
	}
	out := map[string]promtest.Series{}
	for _, s := range series {
		name := s.Metric["__name__"]
		if prev, dup := out[name]; dup {
			return nil, fmt.Errorf("two series named %s: %v and %v", name, prev.Metric, s.Metric)
		}
		out[name] = s
	}
	return out, nil
}

// The real binary, with a prometheus_remote_write sink pointed at a real
// Prometheus, delivers what the real datadog-go client sent — counters,
// gauges, histograms, timers and sets with tags, including what only the
// SIGTERM flush carries — and Prometheus's query API gives back the exact
// values and labels.
//
// As in the VictoriaMetrics test, the first half of the counter and
// histogram samples is sent and seen stored (a regular 1s flush carried
// it); the second half goes just before SIGTERM. Counters arrive as gauges
// of their per-second rate, so over the 1s intervals their points add up
// to the count sent, whichever flush carried them. Gauge and set samples
// go in one datagram per name (a second client that buffers until Flush),
// so each lands in one interval and its value is exact.
func TestBinaryPrometheusRemoteWriteSink(t *testing.T) {
	prom := promtest.Start(t)
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	const hostname = "prom-e2e-host"
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: %s
metric_sinks:
  - kind: prometheus_remote_write
    name: prom
    config: {url: %s%s}
`, udp, httpAddr, hostname, prom, promtest.WritePath))
	waitHealthy(t, httpAddr)

	// Without client-side aggregation every call is its own line, so that
	// veneur-lite, not the client, does the summing and the last-value.
	c, err := statsd.New(udp, statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation())
	if err != nil {
		t.Fatal(err)
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("datadog-go: %v", err)
		}
	}
	const n = 100
	send := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			check(c.Incr("pe2e.requests", []string{"env:test", "route:/users"}, 1))
			check(c.Histogram("pe2e.payload_bytes", float64(i), []string{"env:test"}, 1))
			check(c.Timing("pe2e.latency", time.Duration(i)*time.Millisecond, nil, 1))
		}
	}
	// Queries name their time: a little ahead, since the SIGTERM flush
	// may be stamped one second after the last tick.
	at := func() time.Time { return time.Now().Add(5 * time.Second) }

	send(1, n/2)
	check(c.Flush()) // the client's buffers, now
	await.Until(t, 10*time.Second, func() (bool, string) {
		got, err := promRaw(prom, "pe2e_requests", at())
		if err != nil {
			return false, err.Error()
		}
		return sum(got["pe2e_requests"].Values) == n/2, fmt.Sprintf("%+v", got)
	})
	send(n/2+1, n)
	check(c.Close())

	// Lines of one name go to one datadog-go worker, whose buffer is
	// written as one datagram at Flush.
	whole, err := statsd.New(udp, statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation(),
		statsd.WithBufferFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	check(whole.Gauge("pe2e.queue_depth", 7, []string{"queue:emails", "canary"}, 1))
	check(whole.Gauge("pe2e.queue_depth", -4.5, []string{"queue:emails", "canary"}, 1))
	for i := range 12 {
		check(whole.Set("pe2e.users", fmt.Sprintf("user-%d", i%6), []string{"env:test"}, 1))
	}
	check(whole.Close()) // flushes

	// While it runs, its /metrics shows the sink at work.
	await.Until(t, 10*time.Second, func() (bool, string) {
		fams, err := scrapeMetrics(httpAddr)
		if err != nil {
			return false, err.Error()
		}
		v, _ := counterValue(fams, "veneur_sink_series_sent_total", map[string]string{"sink": "prom"})
		return v > 0, fmt.Sprintf("veneur_sink_series_sent_total{sink=prom} = %v", v)
	})

	p.stop(t)

	hist := []string{"min", "max", "count", "50percentile", "75percentile", "99percentile"}
	want := map[string]map[string]string{ // name → labels besides __name__ and host
		"pe2e_requests":    {"env": "test", "route": "/users"},
		"pe2e_queue_depth": {"queue": "emails", "canary": "true"},
		"pe2e_users":       {"env": "test"},
	}
	for _, suffix := range hist {
		want["pe2e_payload_bytes_"+suffix] = map[string]string{"env": "test"}
		want["pe2e_latency_"+suffix] = map[string]string{}
	}
	var got map[string]promtest.Series
	await.Until(t, 10*time.Second, func() (bool, string) {
		got, err = promRaw(prom, `{__name__=~"pe2e_.*"}`, at())
		if err != nil {
			return false, err.Error()
		}
		// The process has exited, so everything was sent; Prometheus makes
		// what it took queryable at once, but wait anyway rather than
		// assume (≥: too much is for the checks below to report).
		done := len(got) >= len(want) &&
			sum(got["pe2e_requests"].Values) >= n &&
			sum(got["pe2e_payload_bytes_count"].Values) >= n &&
			sum(got["pe2e_latency_count"].Values) >= n
		return done, fmt.Sprintf("%d of %d series: %+v", len(got), len(want), got)
	})
	defer func() {
		if t.Failed() {
			t.Logf("Prometheus holds: %+v\nveneur-lite stdout: %s", got, strings.Join(p.output(), "\n"))
		}
	}()

	if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
		t.Errorf("series %v, want %v", names, slices.Sorted(maps.Keys(want)))
	}
	for name, labels := range want {
		wantLabels := maps.Clone(labels)
		wantLabels["__name__"], wantLabels["host"] = name, hostname
		if strings.HasSuffix(name, "percentile") || name == "pe2e_users" {
			// This instance is the root of the tier: percentiles and set
			// sizes are fleet series, without a host.
			delete(wantLabels, "host")
		}
		if !maps.Equal(got[name].Metric, wantLabels) {
			t.Errorf("%s labels %v, want %v", name, got[name].Metric, wantLabels)
		}
	}

	// Counters and histogram counts: per-second rates over 1s intervals,
	// so the points add up to what was sent.
	for _, name := range []string{"pe2e_requests", "pe2e_payload_bytes_count", "pe2e_latency_count"} {
		vs := got[name].Values
		if total := sum(vs); total != n {
			t.Errorf("%s: rates %v add up to %v over the 1s intervals, want %d", name, vs, total, n)
		}
		// One point per half, or three if a tick fell while the second
		// half was in flight: the final flush must not have been lost.
		if len(vs) < 2 || len(vs) > 3 {
			t.Errorf("%s has %d points, want 2 or 3: %v", name, len(vs), vs)
		}
		if ts := got[name].Timestamps; !slices.IsSorted(ts) || ts[0]%1000 != 0 {
			t.Errorf("%s timestamps %v: want whole seconds, in order", name, ts)
		}
	}
	// Each gauge and the set went in one datagram: one point each.
	if vs := got["pe2e_queue_depth"].Values; !slices.Equal(vs, []float64{-4.5}) {
		t.Errorf("pe2e_queue_depth points %v, want [-4.5]", vs)
	}
	if vs := got["pe2e_users"].Values; !slices.Equal(vs, []float64{6}) {
		t.Errorf("pe2e_users points %v, want [6] unique members", vs)
	}
	for _, h := range []string{"pe2e_payload_bytes", "pe2e_latency"} {
		checkHistogramPoints(t, func(name string) []float64 { return got[name].Values }, h, "_", n, hist[3:])
	}
}
