package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/veneur-lite/veneur-lite/internal/vmtest"
)

// vmExport returns the stored samples of the series matching selector,
// keyed by metric name (each name here has one label set).
func vmExport(base, selector string) (map[string]vmtest.Series, error) {
	series, err := vmtest.Export(base, selector)
	if err != nil {
		return nil, err
	}
	out := map[string]vmtest.Series{}
	for _, s := range series {
		name := s.Metric["__name__"]
		if prev, dup := out[name]; dup {
			return nil, fmt.Errorf("two series named %s: %v and %v", name, prev.Metric, s.Metric)
		}
		out[name] = s
	}
	return out, nil
}

func sum(vs []float64) float64 {
	total := 0.0
	for _, v := range vs {
		total += v
	}
	return total
}

// percentilesOf returns the percentile values the flusher reports for the
// whole numbers lo..hi: the t-digest interpolates, so p50 of 1..50 is 25.5.
func percentilesOf(lo, hi int) map[string]float64 {
	span := float64(hi - lo + 1)
	at := func(p float64) float64 { return float64(lo) - 0.5 + p*span }
	return map[string]float64{"50percentile": at(0.5), "75percentile": at(0.75), "99percentile": at(0.99)}
}

// The real binary, with a datadog sink pointed at VictoriaMetrics' Datadog
// intake, delivers what the real datadog-go client sent, including what
// only the SIGTERM flush carries.
//
// The first half of the samples is sent and seen stored (so a regular 1s
// flush carried it); the second half, with the gauge, is sent just before
// SIGTERM. Values are then checked over all stored points: counters and
// counts as the sum of rate × interval (each point is a Datadog rate per
// second, which VictoriaMetrics stores as is), min and max as extremes,
// percentiles per flushed half, so nothing depends on how the halves'
// points are ordered in storage.
func TestBinaryDatadogSinkIntoVictoriaMetrics(t *testing.T) {
	vm := vmtest.Start(t)
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	const hostname = "vm-e2e-host"
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: %s
metric_sinks:
  - kind: datadog
    name: vm
    config: {api_key: test-key, api_hostname: %s/datadog}
`, udp, httpAddr, hostname, vm))
	waitHealthy(t, httpAddr)

	// Without client-side aggregation every call is its own line, so that
	// veneur-lite, not the client, does the summing and the last-value.
	c, err := statsd.New(udp, statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation())
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("datadog-go: %v", err)
		}
	}
	send := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			check(c.Incr("vme2e.requests", []string{"env:test", "route:/users"}, 1))
			check(c.Histogram("vme2e.payload_bytes", float64(i), []string{"env:test"}, 1))
			check(c.Timing("vme2e.latency", time.Duration(i)*time.Millisecond, nil, 1))
		}
	}

	send(1, n/2)
	check(c.Flush()) // the client's buffers, now
	await.Until(t, 5*time.Second, func() (bool, string) {
		got, err := vmExport(vm, "vme2e.requests")
		if err != nil {
			return false, err.Error()
		}
		return sum(got["vme2e.requests"].Values) == n/2, fmt.Sprintf("%+v", got)
	})
	send(n/2+1, n)
	check(c.Gauge("vme2e.queue_depth", 7, []string{"queue:emails", "canary"}, 1))
	check(c.Gauge("vme2e.queue_depth", -4.5, []string{"queue:emails", "canary"}, 1))
	check(c.Close())

	p.stop(t)

	hist := []string{"min", "max", "count", "50percentile", "75percentile", "99percentile"}
	want := map[string]map[string]string{ // name → labels besides __name__ and host
		"vme2e.requests":    {"env": "test", "route": "/users"},
		"vme2e.queue_depth": {"queue": "emails", "canary": "no_label_value"},
	}
	for _, suffix := range hist {
		want["vme2e.payload_bytes."+suffix] = map[string]string{"env": "test"}
		want["vme2e.latency."+suffix] = map[string]string{}
	}
	var got map[string]vmtest.Series
	await.Until(t, 10*time.Second, func() (bool, string) {
		got, err = vmExport(vm, `{__name__=~"vme2e\\..*"}`)
		if err != nil {
			return false, err.Error()
		}
		// The process has exited, so everything was sent; wait until it
		// is all searchable (≥: too much is for the checks below to report).
		done := len(got) >= len(want) &&
			sum(got["vme2e.requests"].Values) >= n &&
			sum(got["vme2e.payload_bytes.count"].Values) >= n &&
			sum(got["vme2e.latency.count"].Values) >= n
		return done, fmt.Sprintf("%d of %d series: %+v", len(got), len(want), got)
	})
	defer func() {
		if t.Failed() {
			t.Logf("VictoriaMetrics holds: %+v\nveneur-lite stdout: %s", got, strings.Join(p.output(), "\n"))
		}
	}()

	if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
		t.Errorf("series %v, want %v", names, slices.Sorted(maps.Keys(want)))
	}
	for name, labels := range want {
		wantLabels := maps.Clone(labels)
		wantLabels["__name__"], wantLabels["host"] = name, hostname
		if strings.HasSuffix(name, "percentile") {
			// This instance is the root of the tier: percentiles are
			// fleet series, without a host.
			delete(wantLabels, "host")
		}
		if !maps.Equal(got[name].Metric, wantLabels) {
			t.Errorf("%s labels %v, want %v", name, got[name].Metric, wantLabels)
		}
	}

	// Counters and histogram counts: each point is a rate over the 1s
	// interval, so rate × interval over the points adds up to what was
	// sent, whichever flush carried it.
	const intervalSeconds = 1
	for _, name := range []string{"vme2e.requests", "vme2e.payload_bytes.count", "vme2e.latency.count"} {
		vs := got[name].Values
		if total := sum(vs) * intervalSeconds; total != n {
			t.Errorf("%s: rates %v add up to %v over the 1s intervals, want %d", name, vs, total, n)
		}
		// One point per half, or three if a tick fell while the second
		// half was in flight: the final flush must not have been lost.
		if len(vs) < 2 || len(vs) > 3 {
			t.Errorf("%s has %d points, want 2 or 3: %v", name, len(vs), vs)
		}
	}
	// Both gauge samples went in one interval: one point, the last value.
	if vs := got["vme2e.queue_depth"].Values; !slices.Equal(vs, []float64{-4.5}) {
		t.Errorf("vme2e.queue_depth points %v, want [-4.5]", vs)
	}
	for _, h := range []string{"vme2e.payload_bytes", "vme2e.latency"} {
		checkHistogramPoints(t, func(name string) []float64 { return got[name].Values }, h, ".", n, hist[3:])
	}
}

// checkHistogramPoints checks what a sink stored of histogram h, whose
// samples were 1..n sent in two halves (1..n/2, then the rest), its point
// names made of h, sep and the suffix: min 1, max n, and each percentile
// inside 1..n and near that of the half, or of the whole, it covers.
// Each percentile point comes from one interval's t-digest. Fleet
// percentiles flush an interval late, and the final flush drains what is
// still open: when the two halves went out in two flushes, they are the
// percentiles of 1..n/2 and of the rest, in either order; in one, those of
// 1..n.
func checkHistogramPoints(t *testing.T, values func(name string) []float64, h, sep string, n int, percentiles []string) {
	t.Helper()
	if lo := slices.Min(append([]float64{math.Inf(1)}, values(h+sep+"min")...)); lo != 1 {
		t.Errorf("%s%smin = %v, want 1", h, sep, lo)
	}
	if hi := slices.Max(append([]float64{math.Inf(-1)}, values(h+sep+"max")...)); hi != float64(n) {
		t.Errorf("%s%smax = %v, want %d", h, sep, hi, n)
	}
	first, second, all := percentilesOf(1, n/2), percentilesOf(n/2+1, n), percentilesOf(1, n)
	for _, suffix := range percentiles {
		name := h + sep + suffix
		vs := slices.Sorted(slices.Values(values(name)))
		for _, v := range vs {
			if v < 1 || v > float64(n) {
				t.Errorf("%s = %v, outside the values sent (1..%d)", name, v, n)
			}
		}
		if len(vs) == 2 && (math.Abs(vs[0]-first[suffix]) > 1 || math.Abs(vs[1]-second[suffix]) > 1) {
			t.Errorf("%s = %v, want about [%v %v]", name, vs, first[suffix], second[suffix])
		}
		if len(vs) == 1 && math.Abs(vs[0]-all[suffix]) > 1 {
			t.Errorf("%s = %v, want about [%v]", name, vs, all[suffix])
		}
	}
}

// A datadog sink into VictoriaMetrics with send_events and
// send_service_checks off (as README.md advises) fails no interval when
// clients send events and service checks, while a console sink beside it
// still gets them and the series still reach VictoriaMetrics.
func TestBinaryVictoriaMetricsWithoutEventsAndChecks(t *testing.T) {
	vm := vmtest.Start(t)
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: vm-events
metric_sinks:
  - kind: console
  - kind: datadog
    name: vm
    send_events: false
    send_service_checks: false
    config: {api_key: unused, api_hostname: %s/datadog}
`, udp, httpAddr, vm))
	waitHealthy(t, httpAddr)
	c, err := statsd.New(udp, statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SimpleEvent("deployed", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := c.SimpleServiceCheck("vmev.db.up", statsd.Ok); err != nil {
		t.Fatal(err)
	}
	if err := c.Incr("vmev.requests", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, `event title="deployed"`, 10*time.Second)
	p.waitLine(t, "service_check name=vmev.db.up", 10*time.Second)
	await.Until(t, 10*time.Second, func() (bool, string) {
		got, err := vmExport(vm, "vmev.requests")
		if err != nil {
			return false, err.Error()
		}
		return sum(got["vmev.requests"].Values) == 1, fmt.Sprintf("%+v", got)
	})
	p.stop(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.errLines {
		if strings.Contains(l, "flush failed") {
			t.Errorf("an interval failed: %s", l)
		}
	}
	for _, l := range p.lines {
		if strings.HasPrefix(l, "veneur.sink.requests") && strings.Contains(l, "sink:vm") &&
			(strings.Contains(l, "endpoint:events") || strings.Contains(l, "endpoint:check_run")) {
			t.Errorf("the vm sink was sent events or checks: %s", l)
		}
	}
}
