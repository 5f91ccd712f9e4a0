package httpsink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/internal/syncbuf"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

const secret = "k-5e3c7a9b1d"

func newCore(t *testing.T, reg *telemetry.Registry, logs io.Writer) *Core {
	t.Helper()
	c := New(Config{
		Name: "sk", Peer: "intake", Timeout: time.Minute, MaxConcurrency: 3,
		Secrets: []string{secret}, Stats: reg,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	c.Backoff = httpclient.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	return c
}

// A sink in a few lines, as the sketch intake uses the core: every item
// arrives once, in bodies of at most perBody items with the endpoint's
// headers, at most MaxConcurrency at a time; a 503 is retried and counted.
func TestFlushSendsRunsWithHeadersBounded(t *testing.T) {
	var (
		mu              sync.Mutex
		got             = map[string]int{}
		inFlight, peak  atomic.Int32
		failedFirstOnce atomic.Bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("DD-API-KEY") != secret ||
			r.Header.Get("User-Agent") != "veneur-lite" {
			t.Errorf("headers %v", r.Header)
		}
		items := strings.Fields(string(body))
		if len(items) > 4 {
			t.Errorf("body of %d items, want at most 4", len(items))
		}
		if !failedFirstOnce.Swap(true) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			got[it]++
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	reg := telemetry.NewRegistry()
	c := newCore(t, reg, io.Discard)
	ep := c.Endpoint("sketches", "sketches", srv.URL+"/api/beta/sketches",
		http.Header{"Content-Type": {"application/x-protobuf"}, "Dd-Api-Key": {secret}})
	const n = 30
	out := c.Flush(t.Context(), "sketches", n, 4, func(lo, hi int, out *Outcome) {
		var b strings.Builder
		for i := lo; i < hi; i++ {
			b.WriteString(strconv.Itoa(i) + " ")
		}
		if err := c.Post(t.Context(), ep, []byte(b.String())); err != nil {
			out.Fail(hi-lo, err)
		}
	})
	if err := out.Err("sketches", n); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if got[strconv.Itoa(i)] != 1 {
			t.Errorf("item %d arrived %d times", i, got[strconv.Itoa(i)])
		}
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d requests in flight, want at most MaxConcurrency 3", p)
	}
	requests := func(class string) uint64 {
		return reg.Counter("sink.requests", "sink:sk", "endpoint:sketches", "status_class:"+class).Load()
	}
	if requests("2xx") != 8 || requests("5xx") != 1 || reg.Counter("sink.retries", "sink:sk").Load() != 1 ||
		reg.Counter("sink.errors", "sink:sk", "cause:http_5xx").Load() != 1 {
		t.Errorf("2xx %d, 5xx %d, retries %d", requests("2xx"), requests("5xx"), reg.Counter("sink.retries", "sink:sk").Load())
	}
}

// A refusal is not retried; the answer is quoted with the secret masked,
// in the error and in the log.
func TestAttemptRefusalMasksSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errors":["bad key `+r.Header.Get("Dd-Api-Key")+`"]}`)
	}))
	defer srv.Close()
	reg, logs := telemetry.NewRegistry(), &syncbuf.Buffer{}
	c := newCore(t, reg, logs)
	ep := c.Endpoint("", "series", srv.URL, http.Header{"Dd-Api-Key": {secret}})
	again, err := c.Attempt(t.Context(), ep, []byte("x"))
	var se *httpclient.StatusError
	if again || !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Body, "bad key ****") {
		t.Errorf("again %v, err %v; want a final 403 quoting the masked key", again, err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("secret leaked: %v\n%s", err, logs)
	}
	if reg.Counter("sink.errors", "sink:sk", "cause:http_4xx").Load() != 1 ||
		reg.Counter("sink.requests", "sink:sk", "status_class:4xx").Load() != 1 {
		t.Error("refusal not counted under cause http_4xx and status_class 4xx (no endpoint tag)")
	}
}

// Runs not started when the flush context ends are failed, not sent.
func TestFlushDropsWhatRemainsWhenCtxEnds(t *testing.T) {
	c := newCore(t, telemetry.NewRegistry(), io.Discard)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	out := c.Flush(ctx, "series", 10, 3, func(lo, hi int, out *Outcome) { called = true })
	if called || out.Dropped() != 10 || !errors.Is(out.Err("series", 10), context.Canceled) {
		t.Errorf("called %v, dropped %d, err %v", called, out.Dropped(), out.Err("series", 10))
	}
}
