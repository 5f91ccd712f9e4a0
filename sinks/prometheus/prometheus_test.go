package prometheus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
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

// Secrets that look real, so a leak is found by a plain substring search.
const (
	testPassword = "pw-7c1d9e0a4b2f58e3"
	testToken    = "Bearer tok-0f1e2d3c4b5a6978"
)

type testSink struct {
	*Sink
	reg  *telemetry.Registry
	logs *syncbuf.Buffer
}

func (ts testSink) counter(name string, tags ...string) uint64 {
	return ts.reg.Counter(name, append([]string{"sink:prom"}, tags...)...).Load()
}

// newTestSink builds a sink for url with debug logs captured, and fails the
// test if a secret ever shows up in them.
func newTestSink(t *testing.T, url string, mod func(*Config)) testSink {
	t.Helper()
	// A long per-request timeout by default: a timed-out attempt that the
	// receiver did accept is retried and would show up as a duplicate.
	// Tests about timeouts set their own.
	cfg := Config{URL: url, Timeout: time.Minute}
	cfg.SetDefaults()
	if mod != nil {
		mod(&cfg)
	}
	logs := &syncbuf.Buffer{}
	reg := telemetry.NewRegistry()
	s, err := New("prom", cfg, reg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	s.core.Backoff = httpclient.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}
	t.Cleanup(func() {
		for _, secret := range []string{testPassword, testToken, "tok-0f1e2d3c4b5a6978"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("secret %q found in the logs:\n%s", secret, logs)
			}
		}
	})
	return testSink{Sink: s, reg: reg, logs: logs}
}

func flush(t *testing.T, s testSink, points []metric.Point) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.Flush(ctx, points)
	if err != nil && (strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "tok-0f1e2d3c4b5a6978")) {
		t.Errorf("secret found in the error: %v", err)
	}
	return err
}

const (
	ts0 = int64(1_790_000_000)
	ms0 = ts0 * 1000
)

// gauges returns n distinct gauge points.
func gauges(n int, prefix string) []metric.Point {
	out := make([]metric.Point, n)
	for i := range out {
		out[i] = metric.Point{Name: fmt.Sprintf("%s.g%03d", prefix, i), Tags: []string{"env:test"}, Host: "h", Value: float64(i), Timestamp: ts0}
	}
	return out
}

func wantGauges(n int, prefix string) []gotSeries {
	out := make([]gotSeries, n)
	for i := range out {
		out[i] = series(ms0, float64(i), fmt.Sprintf(`__name__="%s_g%03d"`, prefix, i), `env="test"`, `host="h"`)
	}
	return out
}

// flushedPoints is one interval as the aggregator hands it over, with the
// names and tags the mapping has to repair; wantSeries is what a receiver
// must get for it.
var flushedPoints = []metric.Point{
	// a counter: its per-second rate, as a gauge
	{Name: "api.requests", Tags: []string{"env:prod", "route:/users"}, Host: "web-1", Type: metric.RatePoint, Value: 2.5, Timestamp: ts0, Interval: 10 * time.Second},
	{Name: "api.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Value: -4.25, Timestamp: ts0},
	{Name: "api.latency.count", Tags: []string{"env:prod"}, Host: "web-1", Type: metric.RatePoint, Value: 1.2, Timestamp: ts0, Interval: 10 * time.Second},
	// fleet-wide, no host; a valueless tag
	{Name: "api.latency.99percentile", Tags: []string{"canary", "env:prod"}, Value: 240.125, Timestamp: ts0},
	{Name: "users.unique", Value: 1234, Timestamp: ts0},
	// names and tags to repair; "Zone" sorts before "__name__"
	{Name: "2xx.count", Tags: []string{"9lives:yes", "Zone:eu", "__meta:x", "dc.region:us-east-1", "empty:"}, Host: "h", Type: metric.RatePoint, Value: 0.2, Timestamp: ts0 + 5, Interval: 15 * time.Second},
	{Name: "héllo-wörld", Tags: []string{"bad:\xff", "path:/a:b", "quote:\"q\"\n", "utf8:héllo✓"}, Host: "h\tx", Value: 1e-9, Timestamp: ts0},
	// label names that collide: the host wins, then the first tag
	{Name: "dup.labels", Tags: []string{"a.b:1", "a_b:2", "host:from-tag"}, Host: "real", Value: 3, Timestamp: ts0},
	{Name: "huge", Host: "h", Value: -1.5e300, Timestamp: ts0},
	{Name: "inf", Host: "h", Value: math.Inf(-1), Timestamp: ts0},
	{Name: "nan", Host: "h", Value: math.NaN(), Timestamp: ts0},
}

var wantSeries = []gotSeries{
	series(ms0, 2.5, `__name__="api_requests"`, `env="prod"`, `host="web-1"`, `route="/users"`),
	series(ms0, -4.25, `__name__="api_queue_depth"`, `env="prod"`, `host="web-1"`),
	series(ms0, 1.2, `__name__="api_latency_count"`, `env="prod"`, `host="web-1"`),
	series(ms0, 240.125, `__name__="api_latency_99percentile"`, `canary="true"`, `env="prod"`),
	series(ms0, 1234, `__name__="users_unique"`),
	series(ms0+5000, 0.2, `Zone="eu"`, `_9lives="yes"`, `__name__="_2xx_count"`, `_meta="x"`, `dc_region="us-east-1"`, `host="h"`),
	series(ms0, 1e-9, `__name__="h__llo_w__rld"`, "bad=\"\uFFFD\"", `host="h\tx"`, `path="/a:b"`, `quote="\"q\"\n"`, `utf8="héllo✓"`),
	series(ms0, 3, `__name__="dup_labels"`, `a_b="1"`, `host="real"`),
	series(ms0, -1.5e300, `__name__="huge"`, `host="h"`),
	series(ms0, math.Inf(-1), `__name__="inf"`, `host="h"`),
	series(ms0, math.NaN(), `__name__="nan"`, `host="h"`),
}

func TestFlushSeries(t *testing.T) {
	rc, srv := newReceiver(t)
	s := newTestSink(t, srv.URL+"/api/v1/write", nil)
	if err := flush(t, s, flushedPoints); err != nil {
		t.Fatal(err)
	}
	got, bodies, wire, requests := rc.snapshot()
	if !slices.Equal(got, wantSeries) {
		t.Errorf("receiver accepted:\n%v\nwant:\n%v", got, wantSeries)
	}
	if requests != 1 || len(bodies) != 1 {
		t.Fatalf("%d requests, %d bodies; want 1", requests, len(bodies))
	}
	if s.counter("sink.series_sent") != uint64(len(wantSeries)) ||
		s.counter("sink.requests", "status_class:2xx") != 1 ||
		s.counter("sink.sent_bytes") != uint64(wire[0]) ||
		s.counter("sink.series_dropped") != 0 ||
		s.counter("sink.labels_dropped") != 2 { // a_b:2 and host:from-tag
		t.Errorf("self-metrics: sent %d, 2xx %d, bytes %d (body %d), dropped %d, labels dropped %d",
			s.counter("sink.series_sent"), s.counter("sink.requests", "status_class:2xx"),
			s.counter("sink.sent_bytes"), wire[0], s.counter("sink.series_dropped"), s.counter("sink.labels_dropped"))
	}
	if d := s.reg.Histogram("sink.flush_duration_seconds", "sink:prom").Snapshot(); d.Count != 1 || d.Sum <= 0 {
		t.Errorf("flush duration histogram %+v", d)
	}
}

func TestFlushNothing(t *testing.T) {
	_, srv := newReceiver(t)
	s := newTestSink(t, srv.URL+"/api/v1/write", nil)
	var hits atomic.Int32
	srv.Config.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	if err := flush(t, s, nil); err != nil || hits.Load() != 0 {
		t.Errorf("empty flush: err %v, %d requests", err, hits.Load())
	}
}

// Series whose labels come out identical are sent once, the same one
// whatever the order of the flush and however the bodies are cut:
// Prometheus would refuse the second value for one timestamp and roll back
// the whole request.
func TestCollidingSeriesSentOnce(t *testing.T) {
	points := []metric.Point{
		{Name: "api_requests", Tags: []string{"env:prod"}, Host: "h", Value: 2, Timestamp: ts0},
		{Name: "other", Host: "h", Value: 5, Timestamp: ts0},
		{Name: "api.requests", Tags: []string{"env:prod"}, Host: "h", Type: metric.RatePoint, Value: 1, Timestamp: ts0, Interval: 10 * time.Second},
		{Name: "api-requests", Tags: []string{"env:prod"}, Host: "h", Value: 3, Timestamp: ts0},
	}
	// '-' sorts before '.' and '_': "api-requests" wins.
	want := []gotSeries{
		series(ms0, 3, `__name__="api_requests"`, `env="prod"`, `host="h"`),
		series(ms0, 5, `__name__="other"`, `host="h"`),
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		rc, srv := newReceiver(t)
		s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) { c.FlushMaxPerBody = 1 })
		var ps []metric.Point
		for _, i := range order {
			ps = append(ps, points[i])
		}
		if err := flush(t, s, ps); err != nil {
			t.Fatalf("order %v: %v", order, err)
		}
		rc.checkExactlyOnce(t, want)
		if s.counter("sink.errors", "cause:duplicate") != 2 || s.counter("sink.series_dropped") != 2 || s.counter("sink.series_sent") != 2 {
			t.Errorf("order %v: duplicates %d, dropped %d, sent %d", order, s.counter("sink.errors", "cause:duplicate"),
				s.counter("sink.series_dropped"), s.counter("sink.series_sent"))
		}
		if !strings.Contains(s.logs.String(), "series collide") {
			t.Errorf("order %v: collision not logged:\n%s", order, s.logs)
		}
	}
}

func TestBodiesSplitByFlushMaxPerBody(t *testing.T) {
	rc, srv := newReceiver(t)
	s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) { c.FlushMaxPerBody = 7 })
	if err := flush(t, s, gauges(30, "split")); err != nil {
		t.Fatal(err)
	}
	rc.checkExactlyOnce(t, wantGauges(30, "split"))
	_, bodies, _, _ := rc.snapshot()
	slices.Sort(bodies)
	if !slices.Equal(bodies, []int{2, 7, 7, 7, 7}) {
		t.Errorf("bodies of %v series, want 7,7,7,7,2", bodies)
	}
}

func TestHeadersAndBasicAuth(t *testing.T) {
	rc, srv := newReceiver(t)
	rc.wantHeader = http.Header{"X-Scope-Orgid": {"tenant-1"}, "Authorization": {"Basic dXNlcjpwdy03YzFkOWUwYTRiMmY1OGUz"}}
	s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) {
		c.Headers = map[string]string{"X-Scope-OrgID": "tenant-1"}
		c.BasicAuth = &BasicAuth{Username: "user", Password: testPassword}
	})
	if err := flush(t, s, gauges(3, "auth")); err != nil {
		t.Fatal(err)
	}
	rc.checkExactlyOnce(t, wantGauges(3, "auth"))

	rc2, srv2 := newReceiver(t)
	rc2.wantHeader = http.Header{"Authorization": {testToken}}
	s2 := newTestSink(t, srv2.URL+"/api/v1/write", func(c *Config) { c.Headers = map[string]string{"authorization": testToken} })
	if err := flush(t, s2, gauges(1, "bearer")); err != nil {
		t.Fatal(err)
	}
	rc2.checkExactlyOnce(t, wantGauges(1, "bearer"))
}

func TestRetryTransientStatus(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rc, srv := newReceiver(t)
			// Fail the first attempt of every body.
			rc.respond = func(attempt int) (int, string) {
				if attempt == 1 {
					return code, "try again"
				}
				return http.StatusNoContent, ""
			}
			s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) { c.FlushMaxPerBody = 10 })
			if err := flush(t, s, gauges(25, "retry")); err != nil {
				t.Fatal(err)
			}
			rc.checkExactlyOnce(t, wantGauges(25, "retry"))
			_, bodies, _, requests := rc.snapshot()
			if len(bodies) != 3 || requests != 6 {
				t.Errorf("%d bodies in %d requests, want 3 in 6", len(bodies), requests)
			}
			cause := "cause:http_4xx"
			if code >= 500 {
				cause = "cause:http_5xx"
			}
			if s.counter("sink.retries") != 3 || s.counter("sink.errors", cause) != 3 || s.counter("sink.series_sent") != 25 ||
				s.counter("sink.series_dropped") != 0 {
				t.Errorf("retries %d, errors{%s} %d, sent %d, dropped %d", s.counter("sink.retries"), cause,
					s.counter("sink.errors", cause), s.counter("sink.series_sent"), s.counter("sink.series_dropped"))
			}
		})
	}
}

func TestRetryAfterHeaderBoundedByDeadline(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
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

// Prometheus answers 400 to what it will never take (out-of-order or
// too old samples): the body is dropped at once, and the log keeps the
// reason with every secret masked.
func TestNoRetryOnClientError(t *testing.T) {
	rc, srv := newReceiver(t)
	answer := "out of order sample; echo: " + testPassword + " " + testToken + strings.Repeat("x", 1000) + "END"
	rc.respond = func(int) (int, string) { return http.StatusBadRequest, answer }
	rc.wantHeader = http.Header{"X-Token": {testToken}}
	s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) {
		c.Headers = map[string]string{"X-Token": testToken}
		c.BasicAuth = &BasicAuth{Username: "user", Password: testPassword}
	})
	// The receiver checks Authorization only when told to.
	rc.wantHeader.Set("Authorization", "Basic dXNlcjpwdy03YzFkOWUwYTRiMmY1OGUz")
	err := flush(t, s, gauges(5, "bad"))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "5 of 5 series") {
		t.Fatalf("error %v, want one naming the 400 and the 5 series", err)
	}
	if _, _, _, requests := rc.snapshot(); requests != 1 {
		t.Errorf("%d requests, want exactly 1", requests)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "out of order sample") || !strings.Contains(logs, "response_truncated=true") ||
		strings.Contains(logs, "END") || !strings.Contains(logs, strings.Repeat("*", len(testPassword))) {
		t.Errorf("log does not hold the truncated, masked answer:\n%s", logs)
	}
	if s.counter("sink.errors", "cause:http_4xx") != 1 || s.counter("sink.retries") != 0 ||
		s.counter("sink.requests", "status_class:4xx") != 1 || s.counter("sink.series_dropped") != 5 {
		t.Errorf("http_4xx %d, retries %d, 4xx requests %d, dropped %d", s.counter("sink.errors", "cause:http_4xx"),
			s.counter("sink.retries"), s.counter("sink.requests", "status_class:4xx"), s.counter("sink.series_dropped"))
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(true)
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/api/v1/write", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s := newTestSink(t, srv.URL, func(c *Config) { c.Headers = map[string]string{"X-Token": testToken} })
	if err := flush(t, s, gauges(1, "redir")); err == nil {
		t.Error("a redirect was taken for success")
	}
	if leaked.Load() || s.counter("sink.errors", "cause:http_other") != 1 {
		t.Errorf("request followed the redirect: %v; http_other errors %d", leaked.Load(), s.counter("sink.errors", "cause:http_other"))
	}
}

func TestRetryNetworkError(t *testing.T) {
	rc := makeReceiver(t)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Drop the connection without an answer.
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newTestSink(t, srv.URL+"/api/v1/write", nil)
	if err := flush(t, s, gauges(10, "net")); err != nil {
		t.Fatal(err)
	}
	rc.checkExactlyOnce(t, wantGauges(10, "net"))
	if s.counter("sink.errors", "cause:network") != 1 || s.counter("sink.retries") != 1 {
		t.Errorf("network errors %d, retries %d", s.counter("sink.errors", "cause:network"), s.counter("sink.retries"))
	}
}

func TestUnreachableReceiver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	// A receiver may take a token in the query (VictoriaMetrics' vmauth
	// can): the error quotes the URL without it.
	const querySecret = "q-5e6f7a8b"
	s := newTestSink(t, "http://"+addr+"/api/v1/write?token="+querySecret, func(c *Config) {
		c.BasicAuth = &BasicAuth{Username: "user", Password: testPassword}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.Flush(ctx, gauges(3, "down"))
	if err == nil || strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), querySecret) {
		t.Errorf("error %v", err)
	}
	if s.counter("sink.errors", "cause:network") == 0 || s.counter("sink.series_dropped") != 3 {
		t.Errorf("network errors %d, dropped %d", s.counter("sink.errors", "cause:network"), s.counter("sink.series_dropped"))
	}
}

// hangingReceiver reads each request and then never answers until the
// test ends.
func hangingReceiver(t *testing.T) (url string, requests *atomic.Int32) {
	release := make(chan struct{})
	requests = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL, requests
}

func TestHangingReceiverBoundedByDeadline(t *testing.T) {
	url, requests := hangingReceiver(t)
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
	// Four bodies per flush, two in flight: the other two never started.
	if s.counter("sink.series_dropped") != 40 || s.counter("sink.errors", "cause:timeout") == 0 || requests.Load() > 4 {
		t.Errorf("dropped %d series, timeouts %d, %d requests", s.counter("sink.series_dropped"),
			s.counter("sink.errors", "cause:timeout"), requests.Load())
	}
}

func TestPerRequestTimeoutRetried(t *testing.T) {
	url, requests := hangingReceiver(t)
	s := newTestSink(t, url, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	// The flush has room for many 50ms attempts; ask for two so that a
	// loaded machine does not fail the test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Flush(ctx, gauges(1, "slow")); err == nil {
		t.Fatal("no error from a hung receiver")
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
	rc := makeReceiver(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		rc.ServeHTTP(w, r)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	s := newTestSink(t, srv.URL+"/api/v1/write", func(c *Config) { c.FlushMaxPerBody = 10; c.MaxConcurrency = limit })
	if err := flush(t, s, gauges(300, "conc")); err != nil {
		t.Fatal(err)
	}
	rc.checkExactlyOnce(t, wantGauges(300, "conc"))
	if p := peak.Load(); p != limit {
		t.Errorf("peak of %d requests in flight, want %d", p, limit)
	}
}
