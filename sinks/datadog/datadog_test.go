package datadog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/syncbuf"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/metric"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

type testSink struct {
	*Sink
	reg  *telemetry.Registry
	logs *syncbuf.Buffer
}

func (ts testSink) counter(name string, tags ...string) uint64 {
	return ts.reg.Counter(name, append([]string{"sink:dd"}, tags...)...).Load()
}

// newTestSink builds a sink against url with debug logs captured, and
// fails the test if the API key ever shows up in them.
func newTestSink(t *testing.T, url string, mod func(*Config)) testSink {
	t.Helper()
	// A long per-request timeout by default: under -race the intake can
	// take seconds to check a big body, and a timed-out attempt that the
	// intake did accept is retried, which would show up as a duplicate.
	// Tests about timeouts set their own.
	cfg := Config{APIKey: testKey, APIHostname: url, Timeout: time.Minute}
	cfg.SetDefaults()
	if mod != nil {
		mod(&cfg)
	}
	logs := &syncbuf.Buffer{}
	reg := telemetry.NewRegistry()
	s, err := New("dd", cfg, reg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	s.core.Backoff = httpclient.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testKey) {
			t.Errorf("API key found in the logs:\n%s", logs)
		}
	})
	return testSink{Sink: s, reg: reg, logs: logs}
}

func flush(t *testing.T, s testSink, points []metric.Point) error {
	t.Helper()
	// Generous: these flushes are not about timing, and -race makes the
	// multi-megabyte ones slow.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := s.Flush(ctx, points)
	if err != nil && strings.Contains(err.Error(), testKey) {
		t.Errorf("API key found in the error: %v", err)
	}
	return err
}

const ts0 = int64(1_790_000_000)

// flushedPoints is what the aggregator hands over for one 10s interval of
// typical traffic, and wantSeries what Datadog must receive for it.
var flushedPoints = []metric.Point{
	// api.requests:1|c ×25 in 10s
	{Name: "api.requests", Tags: []string{"env:prod", "route:/users"}, Host: "web-1", Type: metric.RatePoint, Value: 2.5, Timestamp: ts0, Interval: 10 * time.Second},
	{Name: "api.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Type: metric.GaugePoint, Value: -4.25, Timestamp: ts0},
	// histogram aggregates: .count goes out as a rate, the rest as gauges
	{Name: "api.latency.min", Tags: []string{"env:prod"}, Host: "web-1", Value: 0.5, Timestamp: ts0},
	{Name: "api.latency.max", Tags: []string{"env:prod"}, Host: "web-1", Value: 250, Timestamp: ts0},
	{Name: "api.latency.count", Tags: []string{"env:prod"}, Host: "web-1", Type: metric.RatePoint, Value: 1.2, Timestamp: ts0, Interval: 10 * time.Second},
	// global percentiles and set size: fleet-wide, no host
	{Name: "api.latency.50percentile", Tags: []string{"env:prod"}, Value: 12.75, Timestamp: ts0},
	{Name: "api.latency.99percentile", Tags: []string{"env:prod"}, Value: 240.125, Timestamp: ts0},
	{Name: "api.latency.999percentile", Tags: []string{"env:prod"}, Value: 249.9, Timestamp: ts0},
	{Name: "users.unique", Value: 1234, Timestamp: ts0},
	// a 15s interval, tiny and huge values, and strings needing escapes
	{Name: "jobs.done", Host: "worker-7", Type: metric.RatePoint, Value: 0.2, Timestamp: ts0 + 5, Interval: 15 * time.Second},
	{Name: "tiny", Host: "h", Value: 1e-9, Timestamp: ts0},
	{Name: "huge", Host: "h", Value: -1.5e300, Timestamp: ts0},
	{Name: `odd"name\x`, Tags: []string{`quote:"q"`, "nl:a\nb", "utf8:héllo✓", "ctl:\x01\x1f", "html:<&>"}, Host: "h\tx", Value: 0, Timestamp: ts0},
}

var wantSeries = []gotSeries{
	{Metric: "api.requests", Type: "rate", Interval: 10, Host: "web-1", HasHost: true, Tags: []string{"env:prod", "route:/users"}, TS: ts0, Value: 2.5},
	{Metric: "api.queue_depth", Type: "gauge", Host: "web-1", HasHost: true, Tags: []string{"env:prod"}, TS: ts0, Value: -4.25},
	{Metric: "api.latency.min", Type: "gauge", Host: "web-1", HasHost: true, Tags: []string{"env:prod"}, TS: ts0, Value: 0.5},
	{Metric: "api.latency.max", Type: "gauge", Host: "web-1", HasHost: true, Tags: []string{"env:prod"}, TS: ts0, Value: 250},
	{Metric: "api.latency.count", Type: "rate", Interval: 10, Host: "web-1", HasHost: true, Tags: []string{"env:prod"}, TS: ts0, Value: 1.2},
	{Metric: "api.latency.50percentile", Type: "gauge", Tags: []string{"env:prod"}, TS: ts0, Value: 12.75},
	{Metric: "api.latency.99percentile", Type: "gauge", Tags: []string{"env:prod"}, TS: ts0, Value: 240.125},
	{Metric: "api.latency.999percentile", Type: "gauge", Tags: []string{"env:prod"}, TS: ts0, Value: 249.9},
	{Metric: "users.unique", Type: "gauge", TS: ts0, Value: 1234},
	{Metric: "jobs.done", Type: "rate", Interval: 15, Host: "worker-7", HasHost: true, TS: ts0 + 5, Value: 0.2},
	{Metric: "tiny", Type: "gauge", Host: "h", HasHost: true, TS: ts0, Value: 1e-9},
	{Metric: "huge", Type: "gauge", Host: "h", HasHost: true, TS: ts0, Value: -1.5e300},
	{Metric: `odd"name\x`, Type: "gauge", Host: "h\tx", HasHost: true, Tags: []string{`quote:"q"`, "nl:a\nb", "utf8:héllo✓", "ctl:\x01\x1f", "html:<&>"}, TS: ts0, Value: 0},
}

func TestFlushSeries(t *testing.T) {
	for _, tc := range []struct{ version, compression string }{
		{"v1", "deflate"}, {"v1", "gzip"}, {"v2", "deflate"}, {"v2", "gzip"},
	} {
		t.Run(tc.version+"/"+tc.compression, func(t *testing.T) {
			in, srv := newIntake(t, tc.version, tc.compression)
			s := newTestSink(t, srv.URL, func(c *Config) { c.APIVersion, c.Compression = tc.version, tc.compression })
			if err := flush(t, s, flushedPoints); err != nil {
				t.Fatal(err)
			}
			got, bodies, requests := in.snapshot()
			if !reflect.DeepEqual(got, wantSeries) {
				t.Errorf("intake accepted:\n%+v\nwant:\n%+v", got, wantSeries)
			}
			wantReq := map[string]int{"/api/" + tc.version + "/series": 1}
			if !reflect.DeepEqual(requests, wantReq) {
				t.Errorf("requests %v, want %v", requests, wantReq)
			}
			if s.counter("sink.series_sent") != uint64(len(wantSeries)) ||
				s.counter("sink.requests", "endpoint:series", "status_class:2xx") != 1 ||
				s.counter("sink.sent_bytes") != uint64(bodies[0].wire) ||
				s.counter("sink.series_dropped") != 0 {
				t.Errorf("self-metrics: sent %d, 2xx %d, bytes %d (body %d), dropped %d",
					s.counter("sink.series_sent"), s.counter("sink.requests", "endpoint:series", "status_class:2xx"),
					s.counter("sink.sent_bytes"), bodies[0].wire, s.counter("sink.series_dropped"))
			}
			if d := s.reg.Histogram("sink.flush_duration_seconds", "sink:dd").Snapshot(); d.Count != 1 || d.Sum <= 0 {
				t.Errorf("flush duration histogram %+v", d)
			}
		})
	}
}

func TestFlushNothing(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	s := newTestSink(t, srv.URL, nil)
	if err := flush(t, s, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushEvents(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, req := in.snapshot(); len(req) != 0 {
		t.Errorf("requests for an empty flush: %v", req)
	}
}

func TestFlushEvents(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	s := newTestSink(t, srv.URL, nil)
	const now = ts0 + 99
	s.now = func() time.Time { return time.Unix(now, 0) }

	events := []metric.Event{
		{Title: "Deploy finished", Text: "v1.2.3 to prod\nall \"good\"", Timestamp: ts0, Hostname: "web-1",
			AggregationKey: "deploy-42", Priority: "low", SourceType: "jenkins", AlertType: "success", Tags: []string{"env:prod", "team:infra"}},
		{Title: "minimal", Text: "no timestamp: the flush time is used"},
	}
	checks := []metric.ServiceCheck{
		{Name: "app.can_connect", Status: metric.CheckCritical, Timestamp: ts0 + 1, Hostname: "db-1", Tags: []string{"db:main"}, Message: "connection refused"},
		{Name: "app.ok", Status: metric.CheckOK},
		{Name: "app.warn", Status: metric.CheckWarning, Timestamp: ts0, Hostname: "db-2"},
		{Name: "app.unknown", Status: metric.CheckUnknown, Timestamp: ts0, Hostname: "db-3", Tags: []string{"a", "b:c"}, Message: "m|n"},
	}
	if err := s.FlushEvents(context.Background(), events, checks); err != nil {
		t.Fatal(err)
	}

	wantEvents := []gotEvent{
		{Title: "Deploy finished", Text: "v1.2.3 to prod\nall \"good\"", DateHappened: ts0, Host: "web-1",
			AggregationKey: "deploy-42", Priority: "low", SourceTypeName: "jenkins", AlertType: "success", Tags: []string{"env:prod", "team:infra"}},
		{Title: "minimal", Text: "no timestamp: the flush time is used", DateHappened: now},
	}
	in.mu.Lock()
	gotEvents := slices.Clone(in.events)
	gotChecks := slices.Clone(in.checks)
	requests := maps.Clone(in.requests)
	in.mu.Unlock()
	// Events are posted concurrently, so their order is not kept.
	slices.SortFunc(gotEvents, func(a, b gotEvent) int { return strings.Compare(a.Title, b.Title) })
	if !reflect.DeepEqual(gotEvents, wantEvents) {
		t.Errorf("events:\n%+v\nwant:\n%+v", gotEvents, wantEvents)
	}

	type check struct {
		Check, Host, Message string
		Status               int
		Timestamp            int64
		Tags                 []string
	}
	var got []check
	for _, c := range gotChecks {
		got = append(got, check{c.Check, *c.HostName, c.Message, *c.Status, c.Timestamp, c.Tags})
	}
	want := []check{
		{"app.can_connect", "db-1", "connection refused", 2, ts0 + 1, []string{"db:main"}},
		{"app.ok", "", "", 0, now, []string{}},
		{"app.warn", "db-2", "", 1, ts0, []string{}},
		{"app.unknown", "db-3", "m|n", 3, ts0, []string{"a", "b:c"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("service checks:\n%+v\nwant:\n%+v", got, want)
	}
	if want := map[string]int{"/api/v1/events": 2, "/api/v1/check_run": 1}; !reflect.DeepEqual(requests, want) {
		t.Errorf("requests %v, want %v", requests, want)
	}
	if s.counter("sink.events_sent") != 2 || s.counter("sink.service_checks_sent") != 4 {
		t.Errorf("events sent %d, checks sent %d", s.counter("sink.events_sent"), s.counter("sink.service_checks_sent"))
	}
}

func TestServiceChecksChunked(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	s := newTestSink(t, srv.URL, nil)
	checks := make([]metric.ServiceCheck, 2500)
	for i := range checks {
		checks[i] = metric.ServiceCheck{Name: fmt.Sprintf("check.%04d", i), Timestamp: ts0, Hostname: "h"}
	}
	if err := s.FlushEvents(context.Background(), nil, checks); err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.requests["/api/v1/check_run"] != 3 || len(in.checks) != 2500 {
		t.Fatalf("%d requests, %d checks; want 3 and 2500", in.requests["/api/v1/check_run"], len(in.checks))
	}
	seen := map[string]bool{}
	for _, c := range in.checks {
		if seen[c.Check] {
			t.Fatalf("%s delivered twice", c.Check)
		}
		seen[c.Check] = true
	}
}

// gauges returns n distinct gauge points.
func gauges(n int, prefix string) []metric.Point {
	points := make([]metric.Point, n)
	for i := range points {
		points[i] = metric.Point{Name: fmt.Sprintf("%s.m%06d", prefix, i), Host: "h", Tags: []string{"env:test"}, Value: float64(i), Timestamp: ts0}
	}
	return points
}

// checkExactlyOnce verifies the intake accepted each of points once.
func checkExactlyOnce(t *testing.T, in *intake, points []metric.Point) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.series) != len(points) {
		t.Errorf("intake accepted %d series, want %d", len(in.series), len(points))
	}
	for _, p := range points {
		key := seriesKey(gotSeries{Metric: p.Name, Host: p.Host, Tags: p.Tags})
		if n := in.seen[key]; n != 1 {
			t.Fatalf("%s accepted %d times, want once", p.Name, n)
		}
	}
}

func TestChunkByCount(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	s := newTestSink(t, srv.URL, func(c *Config) { c.FlushMaxPerBody = 25000 })
	points := gauges(60000, "chunk")
	if err := flush(t, s, points); err != nil {
		t.Fatal(err)
	}
	_, bodies, _ := in.snapshot()
	var sizes []int
	for _, b := range bodies {
		sizes = append(sizes, b.series)
	}
	slices.Sort(sizes)
	if want := []int{10000, 25000, 25000}; !slices.Equal(sizes, want) {
		t.Errorf("bodies of %v series, want %v", sizes, want)
	}
	checkExactlyOnce(t, in, points)
	if got := s.counter("sink.series_sent"); got != 60000 {
		t.Errorf("series_sent %d", got)
	}
}

func TestChunkBySize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomTag := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		return "blob:" + string(b)
	}
	for _, tc := range []struct {
		name    string
		version string
		n       int
		tag     func(i int) string
		// which limit must cut the bodies
		byCompressed bool
	}{
		// Random hex halves under compression: the compressed limit binds.
		{"v2 compressed limit", "v2", 1500, func(int) string { return randomTag(4000) }, true},
		{"v1 compressed limit", "v1", 2200, func(int) string { return randomTag(4000) }, true},
		// A repeated byte compresses ~1000:1: the uncompressed limit binds.
		{"v2 uncompressed limit", "v2", 1500, func(i int) string { return fmt.Sprintf("pad%d:%s", i, strings.Repeat("a", 4000)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, srv := newIntake(t, tc.version, "deflate")
			s := newTestSink(t, srv.URL, func(c *Config) { c.APIVersion = tc.version })
			points := gauges(tc.n, "size")
			for i := range points {
				points[i].Tags = []string{tc.tag(i)}
			}
			if err := flush(t, s, points); err != nil {
				t.Fatal(err)
			}
			// The intake itself rejects a body over the documented limits.
			_, bodies, _ := in.snapshot()
			if len(bodies) < 2 {
				t.Fatalf("%d bodies; the limit should have split the flush", len(bodies))
			}
			lim := v1Limits
			if tc.version == "v2" {
				lim = v2Limits
			}
			size, limit := func(b bodyStat) int { return b.raw }, lim.maxRaw
			if tc.byCompressed {
				size, limit = func(b bodyStat) int { return b.wire }, lim.maxCompressed
			}
			slices.SortFunc(bodies, func(a, b bodyStat) int { return size(a) - size(b) })
			t.Logf("bodies (series, wire bytes, raw bytes): %v", bodies)
			// Every body but the remainder should be cut close to the
			// limit, not early.
			for _, b := range bodies[1:] {
				if size(b) < limit*9/10 || size(b) > limit {
					t.Errorf("body %+v: %d bytes against a limit of %d", b, size(b), limit)
				}
			}
			checkExactlyOnce(t, in, points)
		})
	}
}

func TestDropUnencodable(t *testing.T) {
	in, srv := newIntake(t, "v2", "deflate")
	s := newTestSink(t, srv.URL, func(c *Config) { c.APIVersion = "v2" })
	points := gauges(3, "ok")
	bad := []metric.Point{
		{Name: "nan", Value: math.NaN(), Timestamp: ts0},
		{Name: "inf", Value: math.Inf(1), Timestamp: ts0},
		{Name: "too.big", Tags: []string{strings.Repeat("x", v2Limits.maxRaw)}, Timestamp: ts0},
	}
	err := flush(t, s, append(slices.Clone(points[:2]), append(bad, points[2])...))
	if err == nil || !strings.Contains(err.Error(), "3 of 6 series not delivered") || !strings.Contains(err.Error(), `"nan"`) {
		t.Errorf("error %v", err)
	}
	checkExactlyOnce(t, in, points)
	if s.counter("sink.errors", "cause:encode") != 3 || s.counter("sink.series_dropped") != 3 || s.counter("sink.series_sent") != 3 {
		t.Errorf("encode errors %d, dropped %d, sent %d", s.counter("sink.errors", "cause:encode"),
			s.counter("sink.series_dropped"), s.counter("sink.series_sent"))
	}
}

func TestRetryTransientStatus(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			in, srv := newIntake(t, "v1", "deflate")
			// Fail the first attempt of every body.
			in.respond = func(_ string, attempt int) (int, string) {
				if attempt == 1 {
					return code, `{"errors":["try again"]}`
				}
				return http.StatusAccepted, `{"status":"ok"}`
			}
			s := newTestSink(t, srv.URL, func(c *Config) { c.FlushMaxPerBody = 10 })
			points := gauges(25, "retry")
			if err := flush(t, s, points); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, in, points)
			_, bodies, requests := in.snapshot()
			if len(bodies) != 3 || requests["/api/v1/series"] != 6 {
				t.Errorf("%d bodies in %d requests, want 3 in 6", len(bodies), requests["/api/v1/series"])
			}
			cause := "cause:http_4xx"
			if code >= 500 {
				cause = "cause:http_5xx"
			}
			if s.counter("sink.retries") != 3 || s.counter("sink.errors", cause) != 3 || s.counter("sink.series_sent") != 25 {
				t.Errorf("retries %d, errors{%s} %d, sent %d", s.counter("sink.retries"), cause,
					s.counter("sink.errors", cause), s.counter("sink.series_sent"))
			}
		})
	}
}

func TestRetryAfterHeaderBoundedByDeadline(t *testing.T) {
	var requests atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	s := newTestSink(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Flush(ctx, gauges(1, "ra"))
	// A 30s Retry-After cannot fit in a 2s flush: give up at once rather
	// than sleep into the deadline.
	if err == nil || time.Since(start) > time.Second || requests.Load() != 1 {
		t.Errorf("err %v after %v and %d requests", err, time.Since(start), requests.Load())
	}
}

func TestNoRetryOnClientError(t *testing.T) {
	in, srv := newIntake(t, "v1", "deflate")
	// An intake that echoes the key must not get it into our logs, and a
	// long answer is cut.
	answer := `{"errors":["Invalid metric: bad payload"],"echo":"` + testKey + `"}` + strings.Repeat("x", 1000) + "END"
	in.respond = func(string, int) (int, string) { return http.StatusBadRequest, answer }
	s := newTestSink(t, srv.URL, nil)
	points := gauges(5, "bad")
	err := flush(t, s, points)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("error %v, want one naming the 400", err)
	}
	if _, _, requests := in.snapshot(); requests["/api/v1/series"] != 1 {
		t.Errorf("%d requests, want exactly 1", requests["/api/v1/series"])
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "Invalid metric: bad payload") || !strings.Contains(logs, "response_truncated=true") ||
		strings.Contains(logs, "END") || !strings.Contains(logs, strings.Repeat("*", len(testKey))) {
		t.Errorf("log does not hold the truncated, masked answer:\n%s", logs)
	}
	if s.counter("sink.errors", "cause:http_4xx") != 1 || s.counter("sink.retries") != 0 ||
		s.counter("sink.requests", "endpoint:series", "status_class:4xx") != 1 || s.counter("sink.series_dropped") != 5 {
		t.Errorf("http_4xx %d, retries %d, 4xx requests %d, dropped %d", s.counter("sink.errors", "cause:http_4xx"),
			s.counter("sink.retries"), s.counter("sink.requests", "endpoint:series", "status_class:4xx"), s.counter("sink.series_dropped"))
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("DD-API-KEY") != "")
	}))
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/api/v1/series", http.StatusTemporaryRedirect)
	}))
	s := newTestSink(t, srv.URL, nil)
	if err := flush(t, s, gauges(1, "redir")); err == nil {
		t.Error("a redirect was taken for success")
	}
	if leaked.Load() || s.counter("sink.errors", "cause:http_other") != 1 {
		t.Errorf("key sent to the redirect target: %v; http_other errors %d", leaked.Load(), s.counter("sink.errors", "cause:http_other"))
	}
}

func TestRetryNetworkError(t *testing.T) {
	in := makeIntake(t, "v1", "deflate")
	var n atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Drop the connection without an answer.
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		in.ServeHTTP(w, r)
	}))
	s := newTestSink(t, srv.URL, nil)
	points := gauges(10, "net")
	if err := flush(t, s, points); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, in, points)
	if s.counter("sink.errors", "cause:network") != 1 || s.counter("sink.retries") != 1 {
		t.Errorf("network errors %d, retries %d", s.counter("sink.errors", "cause:network"), s.counter("sink.retries"))
	}
}

func TestUnreachableIntakeErrorHasNoKey(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s := newTestSink(t, "http://"+addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.Flush(ctx, gauges(3, "down"))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("error %v", err)
	}
	if s.counter("sink.errors", "cause:network") == 0 || s.counter("sink.series_dropped") != 3 {
		t.Errorf("network errors %d, dropped %d", s.counter("sink.errors", "cause:network"), s.counter("sink.series_dropped"))
	}
}

// hangingIntake reads each request and then never answers until the test
// ends.
func hangingIntake(t *testing.T) (url string, requests *atomic.Int32) {
	release := make(chan struct{})
	requests = &atomic.Int32{}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL, requests
}

func TestHangingIntakeBoundedByDeadline(t *testing.T) {
	url, _ := hangingIntake(t)
	s := newTestSink(t, url, func(c *Config) { c.FlushMaxPerBody = 5; c.MaxConcurrency = 2 })
	const deadline, slack = 300 * time.Millisecond, 700 * time.Millisecond
	// Two intervals in a row: the first, hung flush must not delay the
	// second beyond its own deadline.
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		err := s.Flush(ctx, gauges(20, fmt.Sprint("hang", i)))
		elapsed := time.Since(start)
		cancel()
		if err == nil || elapsed > deadline+slack {
			t.Errorf("flush %d: err %v after %v, want an error within %v", i, err, elapsed, deadline+slack)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := s.FlushEvents(ctx, []metric.Event{{Title: "t"}}, []metric.ServiceCheck{{Name: "c"}})
	if elapsed := time.Since(start); err == nil || elapsed > deadline+slack {
		t.Errorf("events: err %v after %v", err, elapsed)
	}
	if s.counter("sink.series_dropped") != 40 || s.counter("sink.errors", "cause:timeout") == 0 ||
		s.counter("sink.events_dropped") != 1 || s.counter("sink.service_checks_dropped") != 1 {
		t.Errorf("dropped %d series, %d events, %d checks; timeouts %d", s.counter("sink.series_dropped"),
			s.counter("sink.events_dropped"), s.counter("sink.service_checks_dropped"), s.counter("sink.errors", "cause:timeout"))
	}
}

func TestPerRequestTimeoutRetried(t *testing.T) {
	url, requests := hangingIntake(t)
	s := newTestSink(t, url, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	// The flush has room for many 50ms attempts; ask for two so that a
	// loaded machine does not fail the test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Flush(ctx, gauges(1, "slow")); err == nil {
		t.Fatal("no error from a hung intake")
	}
	if requests.Load() < 2 || s.counter("sink.retries") < 1 {
		t.Errorf("%d requests, %d retries; want several", requests.Load(), s.counter("sink.retries"))
	}
}

func TestFlushConcurrencyBounded(t *testing.T) {
	const limit = 3
	var (
		inFlight, peak atomic.Int32
		full           = make(chan struct{})
		fullOnce       sync.Once
	)
	in := makeIntake(t, "v1", "deflate")
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == limit {
			fullOnce.Do(func() { close(full) })
		}
		// Hold the first requests until the limit is reached, so the
		// peak is reached however the machine schedules; a sink that
		// never got there fails on the peak below after the wait.
		select {
		case <-full:
		case <-time.After(2 * time.Second):
		}
		in.ServeHTTP(w, r)
		inFlight.Add(-1)
	}))
	s := newTestSink(t, srv.URL, func(c *Config) { c.FlushMaxPerBody = 10; c.MaxConcurrency = limit })
	points := gauges(300, "conc")
	if err := flush(t, s, points); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, in, points)
	if p := peak.Load(); p != limit {
		t.Errorf("peak of %d requests in flight, want %d", p, limit)
	}
}
