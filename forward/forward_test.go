package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"

	"github.com/axiomhq/hyperloglog"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"github.com/veneur-lite/veneur-lite/wire"
)

// fakeGlobal is a minimal import endpoint: it decodes every batch, keeps
// the keys it merged, merges a key once (answering 200 to repeats, as
// importsrv does) and sums what it merged per series Key.
type fakeGlobal struct {
	t *testing.T
	// act, if set, decides each request's fate from its key and how many
	// requests with that key arrived so far (1 for the first).
	act func(key string, nth int) action
	// refuseZstd answers zstd bodies 415, as globals before zstd did.
	refuseZstd bool
	encodings  map[string]int // requests by Content-Encoding

	mu        sync.Mutex
	requests  map[string]int // by idempotency key
	merged    map[string]bool
	batches   []*wire.Batch // merged ones
	counters  map[string]float64
	gauges    map[string]float64
	digests   map[string]uint64 // total digest weight
	sets      map[string]*hyperloglog.Sketch
	keyServer map[string]int // series Key → merges, to see it lands once
}

// action is a fake global's answer to one request.
type action struct {
	status int // non-zero: answer it without merging
	// dropAfterMerge merges the batch, then closes the connection without
	// an answer: the response is lost on the way back.
	dropAfterMerge bool
}

func newFakeGlobal(t *testing.T) *fakeGlobal {
	return &fakeGlobal{
		t: t, requests: map[string]int{}, merged: map[string]bool{},
		counters: map[string]float64{}, gauges: map[string]float64{}, digests: map[string]uint64{},
		sets: map[string]*hyperloglog.Sketch{}, keyServer: map[string]int{}, encodings: map[string]int{},
	}
}

// testDecoder reads the bodies the forwarder sends.
var testDecoder, _ = zstd.NewReader(nil)

func (g *fakeGlobal) start() *httptest.Server {
	srv := httptest.NewServer(g)
	g.t.Cleanup(srv.Close)
	return srv
}

func (g *fakeGlobal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	encoding := r.Header.Get("Content-Encoding")
	if r.Method != http.MethodPost || r.URL.Path != importPath ||
		r.Header.Get("Content-Type") != wire.ContentType || (encoding != "zstd" && encoding != "gzip") {
		g.t.Errorf("fake global: unexpected request %s %s %v", r.Method, r.URL.Path, r.Header)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.encodings[encoding]++
	g.mu.Unlock()
	if encoding == "zstd" && g.refuseZstd {
		http.Error(w, "content encoding \"zstd\": want gzip or identity", http.StatusUnsupportedMediaType)
		return
	}
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if len(key) != 32 {
		g.t.Errorf("fake global: idempotency key %q is not 128 bits of hex", key)
	}
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	var data []byte
	if encoding == "zstd" {
		data, err = testDecoder.DecodeAll(compressed, nil)
	} else {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(compressed)); err == nil {
			data, err = io.ReadAll(zr)
		}
	}
	if err != nil {
		http.Error(w, encoding+": "+err.Error(), http.StatusBadRequest)
		return
	}
	b, err := wire.Decode(data, wire.Limits{})
	if err != nil {
		g.t.Errorf("fake global: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	g.mu.Lock()
	g.requests[key]++
	var act action
	if g.act != nil {
		act = g.act(key, g.requests[key])
	}
	if act.status == 0 && !g.merged[key] {
		g.merge(key, b)
	}
	g.mu.Unlock()

	switch {
	case act.status != 0:
		http.Error(w, http.StatusText(act.status), act.status)
	case act.dropAfterMerge:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			g.t.Errorf("fake global: hijack: %v", err)
			return
		}
		conn.Close()
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// merge is called with g.mu held.
func (g *fakeGlobal) merge(key string, b *wire.Batch) {
	g.merged[key] = true
	g.batches = append(g.batches, b)
	for _, s := range b.Series {
		g.keyServer[s.Key]++
		switch {
		case s.Kind == metric.Counter:
			g.counters[s.Key] += s.Value
		case s.Kind == metric.Gauge:
			g.gauges[s.Key] = s.Value
		case s.Kind.IsHistogram():
			g.digests[s.Key] += uint64(s.Digest.Count())
		case s.Kind == metric.Set:
			if have := g.sets[s.Key]; have != nil {
				if err := have.Merge(s.Set); err != nil {
					g.t.Errorf("fake global: %v", err)
				}
			} else {
				g.sets[s.Key] = s.Set
			}
		}
	}
}

func (g *fakeGlobal) snapshot(read func(g *fakeGlobal)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	read(g)
}

// newTestForwarder returns a forwarder with fast backoff for tests.
func newTestForwarder(t *testing.T, addrs []string, change func(*Config)) (*Forwarder, *telemetry.Registry) {
	t.Helper()
	reg := telemetry.NewRegistry()
	cfg := Config{Addresses: addrs, Source: "local-1", Interval: 10 * time.Second, Stats: reg, Log: testLogger(t)}
	if change != nil {
		change(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.backoff = httpclient.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	return f, reg
}

func forwardWithin(t *testing.T, f *Forwarder, d time.Duration, start time.Time, series []metric.Series) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	f.Forward(ctx, start, series)
}

var t0 = time.Unix(1_700_000_000, 0)

func interval(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }

// heldCounts returns how many series are held, and how many ambiguous
// batches.
func heldCounts(f *Forwarder) (series, ambiguous int) {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	return len(f.held.series), len(f.held.ambiguous)
}

func TestForwardShardsBatchesAndDelivers(t *testing.T) {
	g1, g2 := newFakeGlobal(t), newFakeGlobal(t)
	s1, s2 := g1.start(), g2.start()
	f, reg := newTestForwarder(t, []string{s1.URL, s2.URL}, func(c *Config) { c.MaxBatchSeries = 7 })

	var series []metric.Series
	for i := range 40 {
		series = append(series,
			counterSeries(fmt.Sprintf("c%d", i), float64(i)),
			gaugeSeries(fmt.Sprintf("g%d", i), float64(i)),
			timerSeries(fmt.Sprintf("t%d", i), float64(i), float64(i+1), float64(i+2)),
			setSeries(fmt.Sprintf("s%d", i), "a", "b", fmt.Sprint(i)))
	}
	series = append(series, counterSeries("c0", 100)) // the same Key from a second scope
	forwardWithin(t, f, 5*time.Second, interval(0), series)

	for _, g := range []*fakeGlobal{g1, g2} {
		g.snapshot(func(g *fakeGlobal) {
			if len(g.keyServer) < 40 {
				t.Errorf("one global got only %d of 160 series: routing does not spread them", len(g.keyServer))
			}
			for _, b := range g.batches {
				if len(b.Series) > 7 {
					t.Errorf("batch of %d series, want at most MaxBatchSeries=7", len(b.Series))
				}
				if b.Source != "local-1" || !b.IntervalStart.Equal(interval(0)) || b.Interval != 10*time.Second {
					t.Errorf("batch header: source %q start %v interval %v", b.Source, b.IntervalStart, b.Interval)
				}
			}
			for key, n := range g.requests {
				if n != 1 {
					t.Errorf("key %s sent %d times without failures", key, n)
				}
			}
		})
	}
	var total int
	got := func(key string, read func(g *fakeGlobal)) {
		t.Helper()
		found := 0
		for _, g := range []*fakeGlobal{g1, g2} {
			g.snapshot(func(g *fakeGlobal) {
				if n := g.keyServer[key]; n > 0 {
					found += n
					read(g)
				}
			})
		}
		if found != 1 {
			t.Errorf("series %q merged %d times across the globals, want once", key, found)
		}
		total++
	}
	for i := range 40 {
		want := float64(i)
		if i == 0 {
			want = 100
		}
		got(metric.SeriesKey(metric.Counter, fmt.Sprintf("c%d", i), nil), func(g *fakeGlobal) {
			if v := g.counters[metric.SeriesKey(metric.Counter, fmt.Sprintf("c%d", i), nil)]; v != want {
				t.Errorf("counter c%d = %v, want %v", i, v, want)
			}
		})
		got(metric.SeriesKey(metric.Gauge, fmt.Sprintf("g%d", i), nil), func(g *fakeGlobal) {
			if v := g.gauges[metric.SeriesKey(metric.Gauge, fmt.Sprintf("g%d", i), nil)]; v != float64(i) {
				t.Errorf("gauge g%d = %v", i, v)
			}
		})
		got(metric.SeriesKey(metric.Histogram, fmt.Sprintf("t%d", i), nil), func(g *fakeGlobal) {
			if c := g.digests[metric.SeriesKey(metric.Histogram, fmt.Sprintf("t%d", i), nil)]; c != 3 {
				t.Errorf("digest t%d count %d, want 3", i, c)
			}
		})
		got(metric.SeriesKey(metric.Set, fmt.Sprintf("s%d", i), nil), func(g *fakeGlobal) {
			if e := g.sets[metric.SeriesKey(metric.Set, fmt.Sprintf("s%d", i), nil)].Estimate(); e != 3 {
				t.Errorf("set s%d estimate %d, want 3", i, e)
			}
		})
	}
	if s, a := heldCounts(f); s != 0 || a != 0 {
		t.Errorf("held %d series, %d ambiguous batches after a clean forward", s, a)
	}
	if n := f.m.seriesSent.Load(); n != 160 {
		t.Errorf("veneur.forward.series_sent = %d, want 160", n)
	}
	if f.m.bytesSent.Load() == 0 || f.m.batchesSent.Load() < 160/7 {
		t.Errorf("sent_bytes %d, batches_sent %d", f.m.bytesSent.Load(), f.m.batchesSent.Load())
	}
	_ = reg
}

func TestIdempotencyKeyStableAcrossRetries(t *testing.T) {
	g := newFakeGlobal(t)
	g.act = func(_ string, nth int) action {
		if nth <= 2 {
			return action{status: http.StatusServiceUnavailable}
		}
		return action{}
	}
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	forwardWithin(t, f, 5*time.Second, interval(0), []metric.Series{counterSeries("hits", 5), timerSeries("lat", 1, 2)})

	g.snapshot(func(g *fakeGlobal) {
		if len(g.requests) != 1 {
			t.Fatalf("saw %d idempotency keys, want one batch retried under one key: %v", len(g.requests), g.requests)
		}
		for key, n := range g.requests {
			if n != 3 {
				t.Errorf("key %s seen %d times, want 3 (503, 503, 200)", key, n)
			}
		}
		if len(g.batches) != 1 || g.counters["counter|hits|"] != 5 || g.digests["histogram|lat|"] != 2 {
			t.Errorf("merged %d batches, hits=%v, lat count=%d; want one merge of 5 and 2",
				len(g.batches), g.counters["counter|hits|"], g.digests["histogram|lat|"])
		}
	})
	if r, e := f.m.retries.Load(), f.m.errors[causeHTTP5xx].Load(); r != 2 || e != 2 {
		t.Errorf("retries %d, http_5xx errors %d; want 2 and 2", r, e)
	}
	if s, a := heldCounts(f); s != 0 || a != 0 {
		t.Errorf("held %d series, %d ambiguous batches after delivery", s, a)
	}
}

func TestAmbiguousFailureResendsSameKey(t *testing.T) {
	t.Run("within the interval", func(t *testing.T) {
		g := newFakeGlobal(t)
		g.act = func(_ string, nth int) action { return action{dropAfterMerge: nth == 1} }
		srv := g.start()
		f, _ := newTestForwarder(t, []string{srv.URL}, nil)
		forwardWithin(t, f, 5*time.Second, interval(0), []metric.Series{counterSeries("hits", 7), timerSeries("lat", 1, 2, 3)})

		g.snapshot(func(g *fakeGlobal) {
			if len(g.requests) != 1 {
				t.Fatalf("saw keys %v, want one key for the batch and its retry", g.requests)
			}
			for key, n := range g.requests {
				if n < 2 {
					t.Errorf("key %s seen %d times, want the lost answer to force a resend", key, n)
				}
			}
			if len(g.batches) != 1 || g.counters["counter|hits|"] != 7 || g.digests["histogram|lat|"] != 3 {
				t.Errorf("merged %d batches, hits=%v, lat=%d; want exactly one merge", len(g.batches), g.counters["counter|hits|"], g.digests["histogram|lat|"])
			}
		})
		if e := f.m.errors[causeNetwork].Load(); e < 1 {
			t.Errorf("network errors %d, want the lost answer counted", e)
		}
	})

	t.Run("across intervals", func(t *testing.T) {
		g := newFakeGlobal(t)
		var mu sync.Mutex
		down := true // every answer is lost while down
		g.act = func(string, int) action {
			mu.Lock()
			defer mu.Unlock()
			return action{dropAfterMerge: down}
		}
		srv := g.start()
		f, _ := newTestForwarder(t, []string{srv.URL}, nil)
		forwardWithin(t, f, 150*time.Millisecond, interval(0), []metric.Series{counterSeries("hits", 7)})

		var firstKey string
		g.snapshot(func(g *fakeGlobal) {
			for key := range g.requests {
				firstKey = key
			}
		})
		if s, a := heldCounts(f); s != 0 || a != 1 {
			t.Fatalf("held %d series and %d ambiguous batches, want the batch held as ambiguous (it may be merged)", s, a)
		}

		mu.Lock()
		down = false
		mu.Unlock()
		forwardWithin(t, f, 5*time.Second, interval(1), []metric.Series{counterSeries("hits", 3)})

		g.snapshot(func(g *fakeGlobal) {
			if len(g.requests) != 2 {
				t.Errorf("saw %d keys, want the resent batch's and the new one's: %v", len(g.requests), g.requests)
			}
			if g.requests[firstKey] < 2 {
				t.Errorf("first key seen %d times, want it resent", g.requests[firstKey])
			}
			if len(g.batches) != 2 || g.counters["counter|hits|"] != 10 {
				t.Errorf("merged %d batches, hits=%v; want 2 merges totalling 10", len(g.batches), g.counters["counter|hits|"])
			}
			if !g.batches[0].IntervalStart.Equal(interval(0)) {
				t.Errorf("resent batch carries interval %v, want its own %v", g.batches[0].IntervalStart, interval(0))
			}
		})
		if n := f.m.ambiguousResent.Load(); n != 1 {
			t.Errorf("ambiguous_resent = %d, want 1", n)
		}
		if s, a := heldCounts(f); s != 0 || a != 0 {
			t.Errorf("still held: %d series, %d ambiguous", s, a)
		}
	})
}

// downGlobal reserves a loopback port that refuses connections (a global
// that is down) and returns its base URL and a function that starts g on it.
func downGlobal(t *testing.T, g *fakeGlobal) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr, func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		srv := httptest.NewUnstartedServer(g)
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		t.Cleanup(srv.Close)
	}
}

func TestNoLossAcrossOutage(t *testing.T) {
	g := newFakeGlobal(t)
	url, start := downGlobal(t, g)
	f, _ := newTestForwarder(t, []string{url}, nil)

	makeInterval := func(i int) []metric.Series {
		var values []float64
		for j := range 100 {
			values = append(values, float64(i*100+j))
		}
		var users []string
		for j := range 50 {
			users = append(users, fmt.Sprintf("user-%d-%d", i, j))
		}
		return []metric.Series{
			counterSeries("hits", float64(i+1)),
			timerSeries("lat", values...),
			setSeries("users", users...),
			gaugeSeries("temp", float64(i)),
		}
	}
	for i := range 3 {
		forwardWithin(t, f, 100*time.Millisecond, interval(i), makeInterval(i))
		if s, a := heldCounts(f); s != 4 || a != 0 {
			t.Fatalf("interval %d: held %d series, %d ambiguous; want the 4 series held, merged", i, s, a)
		}
	}
	if f.m.errors[causeDial].Load() == 0 {
		t.Error("no dial errors counted during the outage")
	}

	start()
	forwardWithin(t, f, 5*time.Second, interval(3), makeInterval(3))
	g.snapshot(func(g *fakeGlobal) {
		if v := g.counters["counter|hits|"]; v != 1+2+3+4 {
			t.Errorf("counter = %v, want the sum of all 4 intervals, 10", v)
		}
		if c := g.digests["histogram|lat|"]; c != 400 {
			t.Errorf("digest count = %d, want 400", c)
		}
		if e := g.sets["set|users|"].Estimate(); math.Abs(float64(e)-200) > 6 {
			t.Errorf("set estimate = %d, want about 200", e)
		}
		if v := g.gauges["gauge|temp|"]; v != 3 {
			t.Errorf("gauge = %v, want the last, 3", v)
		}
		if len(g.batches) != 1 || !g.batches[0].IntervalStart.Equal(interval(3)) {
			t.Errorf("held data should travel in the 4th interval's batch")
		}
	})
	if s, a := heldCounts(f); s != 0 || a != 0 {
		t.Errorf("still held: %d series, %d ambiguous", s, a)
	}
	if f.m.heldSeries.Load() != 0 || f.m.heldBytes.Load() != 0 {
		t.Errorf("held gauges %v series, %v bytes after delivery", f.m.heldSeries.Load(), f.m.heldBytes.Load())
	}
}

func TestMemoryBoundDropsOldest(t *testing.T) {
	g := newFakeGlobal(t)
	url, start := downGlobal(t, g)

	const n = 100
	batchOf := func(prefix string) []metric.Series {
		s := make([]metric.Series, n)
		for i := range s {
			s[i] = counterSeries(fmt.Sprintf("%s.%04d", prefix, i), 1)
		}
		return s
	}
	// The forwarder estimates a held series at its batch's encoding over its
	// series; room for 1.5 intervals' worth holds one interval and half of
	// the other.
	enc, err := wire.AppendEncode(nil, &wire.Batch{IntervalStart: interval(1), Interval: 10 * time.Second, Source: "local-1",
		Series: append(batchOf("a"), batchOf("b")...)})
	if err != nil {
		t.Fatal(err)
	}
	perSeries := int64(len(enc)) / (2 * n)
	f, _ := newTestForwarder(t, []string{url}, func(c *Config) { c.MaxHeldBytes = perSeries * n * 3 / 2 })

	forwardWithin(t, f, 50*time.Millisecond, interval(0), batchOf("a"))
	if s, _ := heldCounts(f); s != n {
		t.Fatalf("held %d series after the first interval, want %d", s, n)
	}
	forwardWithin(t, f, 50*time.Millisecond, interval(1), batchOf("b"))
	dropped := int(f.m.heldDropped.Load())
	if dropped != n/2 {
		t.Errorf("held_dropped = %d, want %d: half of the older interval", dropped, n/2)
	}
	if s, _ := heldCounts(f); s != 2*n-dropped {
		t.Errorf("held %d series, want %d", s, 2*n-dropped)
	}
	if b := f.m.heldBytes.Load(); b > float64(f.cfg.MaxHeldBytes) {
		t.Errorf("held_bytes %v over MaxHeldBytes %d", b, f.cfg.MaxHeldBytes)
	}

	start()
	forwardWithin(t, f, 5*time.Second, interval(2), nil)
	g.snapshot(func(g *fakeGlobal) {
		var a, b int
		for key := range g.counters {
			switch {
			case strings.HasPrefix(key, "counter|a."):
				a++
			case strings.HasPrefix(key, "counter|b."):
				b++
			}
		}
		if b != n || a != n-dropped {
			t.Errorf("delivered %d of the newer series and %d of the older, want %d and %d", b, a, n, n-dropped)
		}
	})
}

func TestPoisonBatchIsDroppedNotRetried(t *testing.T) {
	g := newFakeGlobal(t)
	g.act = func(string, int) action { return action{status: http.StatusBadRequest} }
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	forwardWithin(t, f, 5*time.Second, interval(0), []metric.Series{counterSeries("hits", 1), timerSeries("lat", 1)})

	g.snapshot(func(g *fakeGlobal) {
		if len(g.requests) != 1 {
			t.Fatalf("keys %v, want one batch", g.requests)
		}
		for _, n := range g.requests {
			if n != 1 {
				t.Errorf("poison batch sent %d times, want once", n)
			}
		}
	})
	if s, a := heldCounts(f); s != 0 || a != 0 {
		t.Errorf("held %d series, %d ambiguous: a rejected batch must not be held", s, a)
	}
	if d, e, r := f.m.poisonDropped.Load(), f.m.errors[causeHTTP4xx].Load(), f.m.retries.Load(); d != 2 || e != 1 || r != 0 {
		t.Errorf("poison dropped %d series, http_4xx %d, retries %d; want 2, 1, 0", d, e, r)
	}
}

func TestUnencodableSeriesDroppedAlone(t *testing.T) {
	g := newFakeGlobal(t)
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	forwardWithin(t, f, 5*time.Second, interval(0), []metric.Series{
		counterSeries("ok1", 1), counterSeries("bad", math.Inf(1)), counterSeries("ok2", 2),
	})
	g.snapshot(func(g *fakeGlobal) {
		if g.counters["counter|ok1|"] != 1 || g.counters["counter|ok2|"] != 2 || len(g.counters) != 2 {
			t.Errorf("delivered %v, want ok1 and ok2 only", g.counters)
		}
	})
	if d := f.m.encodeDropped.Load(); d != 1 {
		t.Errorf("encode dropped %d series, want 1", d)
	}
}

func TestHeldUntilMembersKnown(t *testing.T) {
	g := newFakeGlobal(t)
	srv := g.start()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	r := newFakeResolver()
	r.update(func(r *fakeResolver) { r.failing["globals.internal"] = true })
	f, _ := newTestForwarder(t, []string{"http://globals.internal:" + port}, func(c *Config) { c.Resolver = r })

	forwardWithin(t, f, time.Second, interval(0), []metric.Series{counterSeries("hits", 2)})
	if s, _ := heldCounts(f); s != 1 {
		t.Fatalf("held %d series with no member known, want 1", s)
	}
	r.update(func(r *fakeResolver) {
		r.failing["globals.internal"] = false
		r.hosts["globals.internal"] = []string{host}
	})
	f.resolve(t.Context())
	forwardWithin(t, f, 5*time.Second, interval(1), []metric.Series{counterSeries("hits", 3)})
	g.snapshot(func(g *fakeGlobal) {
		if v := g.counters["counter|hits|"]; v != 5 {
			t.Errorf("counter = %v, want 5", v)
		}
	})
}

func TestAmbiguousBatchExpires(t *testing.T) {
	g := newFakeGlobal(t)
	var mu sync.Mutex
	lose := true
	g.act = func(string, int) action {
		mu.Lock()
		defer mu.Unlock()
		return action{dropAfterMerge: lose}
	}
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	now := time.Now()
	f.now = func() time.Time { return now }
	forwardWithin(t, f, 100*time.Millisecond, interval(0), []metric.Series{counterSeries("hits", 1)})
	if _, a := heldCounts(f); a != 1 {
		t.Fatalf("held %d ambiguous batches, want 1", a)
	}
	mu.Lock()
	lose = false
	mu.Unlock()
	// Expired before ambiguousTTL itself: the resend could otherwise go
	// on for most of an interval past it.
	now = now.Add(ambiguousTTL - f.cfg.Interval/2)
	forwardWithin(t, f, 5*time.Second, interval(1), []metric.Series{counterSeries("hits", 2)})
	if e := f.m.ambiguousExpired.Load(); e != 1 {
		t.Errorf("ambiguous expired %d series, want 1", e)
	}
	g.snapshot(func(g *fakeGlobal) {
		// The first batch was merged before its answer was lost; only the
		// second interval's batch may be merged since.
		if v := g.counters["counter|hits|"]; v != 3 || len(g.batches) != 2 {
			t.Errorf("hits = %v over %d merges, want 3 over 2", v, len(g.batches))
		}
	})
}

func TestOversizedBatchIsSplit(t *testing.T) {
	g := newFakeGlobal(t)
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	f.maxBatchBytes = 1000 // about 35 counters
	var series []metric.Series
	for i := range 100 {
		series = append(series, counterSeries(fmt.Sprintf("hits.%03d", i), 1))
	}
	forwardWithin(t, f, 5*time.Second, interval(0), series)
	g.snapshot(func(g *fakeGlobal) {
		if len(g.counters) != 100 {
			t.Errorf("delivered %d of 100 series", len(g.counters))
		}
		if len(g.batches) < 3 {
			t.Errorf("%d batches, want the 100 series split into 3 or more", len(g.batches))
		}
		for _, b := range g.batches {
			if enc, _ := wire.AppendEncode(nil, b); len(enc) > 1000 {
				t.Errorf("batch of %d bytes, over the bound", len(enc))
			}
		}
	})
}

// An answer that may follow a merge (409: another request of ours holds
// the key; a 5xx other than 503, which a proxy can answer for a global
// that merged) keeps the batch under its key; a 503 (the global is busy
// and read nothing) holds its series for a new batch.
func TestStatusDecidesMaybeMerged(t *testing.T) {
	for _, tc := range []struct {
		status     int
		cause      cause
		wantKeys   int // keys the global saw, once the status clears
		ambiguous  int
		heldSeries int
	}{
		{http.StatusConflict, causeConflict, 1, 1, 0},
		{http.StatusBadGateway, causeHTTP5xx, 1, 1, 0},
		{http.StatusGatewayTimeout, causeHTTP5xx, 1, 1, 0},
		{http.StatusInternalServerError, causeHTTP5xx, 1, 1, 0},
		{http.StatusServiceUnavailable, causeHTTP5xx, 2, 0, 1},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			g := newFakeGlobal(t)
			var mu sync.Mutex
			failing := true
			g.act = func(string, int) action {
				mu.Lock()
				defer mu.Unlock()
				if failing {
					return action{status: tc.status}
				}
				return action{}
			}
			srv := g.start()
			f, _ := newTestForwarder(t, []string{srv.URL}, nil)
			// No deadline: the attempts are bounded by count, so every one
			// gets its answer. A deadline could cut the last one after its
			// body left, which is rightly ambiguous whatever the status.
			f.Forward(t.Context(), interval(0), []metric.Series{counterSeries("hits", 1)})
			if s, a := heldCounts(f); s != tc.heldSeries || a != tc.ambiguous {
				t.Fatalf("held %d series and %d ambiguous batches, want %d and %d", s, a, tc.heldSeries, tc.ambiguous)
			}
			if f.m.errors[tc.cause].Load() == 0 {
				t.Errorf("no error of cause %d counted", tc.cause)
			}
			mu.Lock()
			failing = false
			mu.Unlock()
			forwardWithin(t, f, 5*time.Second, interval(1), nil)
			g.snapshot(func(g *fakeGlobal) {
				if v := g.counters["counter|hits|"]; v != 1 || len(g.requests) != tc.wantKeys {
					t.Errorf("hits = %v under %d keys, want 1 under %d", v, len(g.requests), tc.wantKeys)
				}
			})
		})
	}
}

// A global that refuses connections, however many batches it is owed and
// wherever it sorts, does not starve the healthy globals of requests: each
// member has its own lane.
func TestDownMemberDoesNotStarveHealthyOnes(t *testing.T) {
	healthy := newFakeGlobal(t)
	srv := healthy.start()
	down, _ := downGlobal(t, newFakeGlobal(t))
	f, _ := newTestForwarder(t, []string{down, srv.URL}, func(c *Config) {
		c.MaxInFlight = 2
		c.MaxBatchSeries = 1
	})
	var series []metric.Series
	for i := range 200 {
		series = append(series, counterSeries(fmt.Sprintf("c%d", i), 1))
	}
	v := f.view.Load()
	owedHealthy := 0
	for _, s := range series {
		if v.members[v.route(s.Key)] == srv.URL {
			owedHealthy++
		}
	}
	// The down member's batches retry until the context ends; the healthy
	// member's must all be acknowledged meanwhile. Were the lanes shared,
	// they would queue behind those retries and the wait would time out.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Forward(ctx, interval(0), series)
	}()
	defer func() { cancel(); <-done }() // a failed wait too: Forward logs to t
	await.Until(t, 10*time.Second, func() (bool, string) {
		sent := f.m.seriesSent.Load()
		return sent >= uint64(owedHealthy), fmt.Sprintf("the healthy global's %d series were not all acknowledged (%d were) while the other was down", owedHealthy, sent)
	})
	cancel()
	<-done
	healthy.snapshot(func(g *fakeGlobal) {
		if len(g.counters) != owedHealthy {
			t.Errorf("healthy global merged %d of the %d series routed to it", len(g.counters), owedHealthy)
		}
	})
	if s, _ := heldCounts(f); s != 200-owedHealthy {
		t.Errorf("held %d series, want the down member's %d", s, 200-owedHealthy)
	}
}

// Series handed to Hold travel with the next Forward.
func TestHoldTravelsWithNextForward(t *testing.T) {
	g := newFakeGlobal(t)
	srv := g.start()
	f, _ := newTestForwarder(t, []string{srv.URL}, nil)
	f.Hold(interval(0), []metric.Series{counterSeries("hits", 2)})
	if s, _ := heldCounts(f); s != 1 {
		t.Fatalf("held %d series after Hold, want 1", s)
	}
	forwardWithin(t, f, 5*time.Second, interval(1), []metric.Series{counterSeries("hits", 3)})
	g.snapshot(func(g *fakeGlobal) {
		if v := g.counters["counter|hits|"]; v != 5 {
			t.Errorf("counter = %v, want held 2 + fresh 3", v)
		}
	})
}

// TestOlderGlobalGetsGzip: a global from before zstd forwarding refuses a
// zstd body with 415; the batch is sent again at once as gzip and merged
// once, and that global is sent gzip from then on.
func TestOlderGlobalGetsGzip(t *testing.T) {
	g := newFakeGlobal(t)
	g.refuseZstd = true
	srv := g.start()
	f, reg := newTestForwarder(t, []string{srv.URL}, nil)
	key := metric.SeriesKey(metric.Counter, "x", nil)
	for i := range 2 {
		forwardWithin(t, f, 5*time.Second, interval(i), []metric.Series{{Key: key, Name: "x", Kind: metric.Counter, Value: 2}})
	}
	g.snapshot(func(g *fakeGlobal) {
		if g.counters[key] != 4 || len(g.batches) != 2 {
			t.Errorf("merged %v in %d batches, want 4 in 2", g.counters[key], len(g.batches))
		}
		if g.encodings["zstd"] != 1 || g.encodings["gzip"] != 2 {
			t.Errorf("requests by encoding %v, want one zstd (refused), then gzip only", g.encodings)
		}
	})
	if n := reg.Counter("forward.series_dropped", "reason:poison").Load(); n != 0 {
		t.Errorf("%d series dropped as poison", n)
	}
}

// TestCoalesceAndPlan: fresh series with one Key twice (two scopes of a
// series) become one, held data joins its series with the fresh gauge
// winning, and plan's in-place sort by member keeps every series with its
// own since.
func TestCoalesceAndPlan(t *testing.T) {
	f, _ := newTestForwarder(t, []string{"http://127.0.0.1:1"}, nil)
	counter := func(key string, v float64) metric.Series {
		return metric.Series{Key: key, Name: key, Kind: metric.Counter, Value: v}
	}
	fresh := []metric.Series{counter("a", 1), counter("b", 2), counter("a", 4),
		{Key: "g", Name: "g", Kind: metric.Gauge, Value: 9}}
	old := interval(0)
	held := []heldSeries{
		{series: counter("b", 10), since: old},
		{series: counter("c", 100), since: old},
		{series: metric.Series{Key: "g", Name: "g", Kind: metric.Gauge, Value: 1}, since: old},
	}
	var out outcome
	p := f.coalesce(held, fresh, interval(1), &out)
	got := map[string]float64{}
	sinceOf := map[string]time.Time{}
	for i, s := range p.series {
		if _, dup := got[s.Key]; dup {
			t.Errorf("key %q twice", s.Key)
		}
		got[s.Key], sinceOf[s.Key] = s.Value, p.since[i]
	}
	want := map[string]float64{"a": 5, "b": 12, "c": 100, "g": 9}
	if !maps.Equal(got, want) {
		t.Errorf("coalesced %v, want %v", got, want)
	}
	if !sinceOf["a"].Equal(interval(1)) || !sinceOf["b"].Equal(old) || !sinceOf["c"].Equal(old) {
		t.Errorf("since %v: want the oldest data's interval", sinceOf)
	}

	v := newView([]string{"http://m1", "http://m2", "http://m3"})
	batches := f.plan(v, p)
	seen := 0
	for _, b := range batches {
		for i, s := range b.series {
			seen++
			if m := v.members[v.route(s.Key)]; m != b.member {
				t.Errorf("%q in %s's batch, routes to %s", s.Key, b.member, m)
			}
			if !b.since[i].Equal(sinceOf[s.Key]) {
				t.Errorf("%q moved without its since", s.Key)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("planned %d series, want %d", seen, len(want))
	}
}

// TestKeyIndexClash: a key whose hash another key took is still found.
func TestKeyIndexClash(t *testing.T) {
	x := newKeyIndex(2)
	series := []metric.Series{{Key: "first"}, {Key: "second"}}
	x.add(42, "first", 0)
	x.add(42, "second", 1)
	for i, key := range []string{"first", "second"} {
		if got, ok := x.find(series, key, 42); !ok || got != i {
			t.Errorf("find %q = %d, %v; want %d", key, got, ok, i)
		}
	}
	if _, ok := x.find(series, "third", 42); ok {
		t.Error("found a key never added")
	}
}
