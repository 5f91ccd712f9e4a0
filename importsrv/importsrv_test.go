package importsrv

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/cputime"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
	"github.com/veneur-lite/veneur-lite/metric"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"github.com/veneur-lite/veneur-lite/wire"
)

// fakeImporter counts merges; release, when set, holds each merge until
// it is closed.
type fakeImporter struct {
	mu      sync.Mutex
	merges  int
	series  int
	last    time.Time
	started chan struct{}
	release chan struct{}
}

func (f *fakeImporter) Import(start time.Time, _ time.Duration, series []metric.Series) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.merges++
	f.series += len(series)
	f.last = start
}

func (f *fakeImporter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.merges
}

var intervalStart = time.Unix(1_700_000_000, 0)

// batchBytes returns an encoded batch of n counter series.
func batchBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := &wire.Batch{IntervalStart: intervalStart, Interval: 10 * time.Second, Source: "local1"}
	for i := range n {
		name := fmt.Sprintf("jobs%d", i)
		b.Series = append(b.Series, metric.Series{Key: metric.SeriesKey(metric.Counter, name, nil), Name: name, Kind: metric.Counter, Value: 1})
	}
	enc, err := wire.AppendEncode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func gzipped(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type request struct {
	method, contentType, encoding, key string
	authorization                      string
	body                               []byte
}

func post(key string, body []byte) request {
	return request{method: http.MethodPost, contentType: wire.ContentType, encoding: "gzip", key: key, body: body}
}

// setHeaders puts req's non-empty header fields on r.
func (req request) setHeaders(r *http.Request) {
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	if req.encoding != "" {
		r.Header.Set("Content-Encoding", req.encoding)
	}
	if req.authorization != "" {
		r.Header.Set(wire.HeaderAuthorization, req.authorization)
	}
	if req.key != "" {
		r.Header.Set(wire.HeaderIdempotencyKey, req.key)
	}
}

// to returns req as a client request for the server at base.
func (req request) to(base string) *http.Request {
	r, _ := http.NewRequest(req.method, base+Path, bytes.NewReader(req.body))
	req.setHeaders(r)
	return r
}

// do sends req to h and returns the status and body.
func do(t testing.TB, h http.Handler, req request) (int, string) {
	t.Helper()
	r := httptest.NewRequest(req.method, Path, bytes.NewReader(req.body))
	req.setHeaders(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestGoodBatchMergedOnce(t *testing.T) {
	imp := &fakeImporter{}
	reg := telemetry.NewRegistry()
	h := New(Config{Importer: imp, Stats: reg, Log: quietLog()})
	body := gzipped(t, batchBytes(t, 3))

	if code, msg := do(t, h, post("k1", body)); code != http.StatusOK {
		t.Fatalf("status %d: %s", code, msg)
	}
	if imp.merges != 1 || imp.series != 3 || !imp.last.Equal(intervalStart) {
		t.Fatalf("importer saw %+v", imp)
	}
	// The retry of a batch whose response was lost: acknowledged, not merged.
	if code, msg := do(t, h, post("k1", body)); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("repeat: status %d: %s", code, msg)
	}
	if imp.merges != 1 {
		t.Fatalf("merged %d times", imp.merges)
	}
	// Another key is another batch; identity encoding works too.
	identity := post("k2", batchBytes(t, 1))
	identity.encoding = ""
	if code, msg := do(t, h, identity); code != http.StatusOK || imp.merges != 2 {
		t.Fatalf("status %d (%s), merges %d", code, msg, imp.merges)
	}
	for name, want := range map[string]uint64{"import.batches": 2, "import.series": 4, "import.duplicates": 1} {
		if got := reg.Counter(name).Load(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if reg.Counter("import.received_bytes", "encoding:compressed").Load() == 0 || reg.Counter("import.received_bytes", "encoding:decoded").Load() == 0 {
		t.Error("bytes not counted")
	}
}

func TestConcurrentSameKey(t *testing.T) {
	imp := &fakeImporter{started: make(chan struct{}, 1), release: make(chan struct{})}
	h := New(Config{Importer: imp, Log: quietLog()})
	body := gzipped(t, batchBytes(t, 2))

	first := make(chan int)
	go func() {
		code, _ := do(t, h, post("same", body))
		first <- code
	}()
	<-imp.started // the first request is merging
	if code, _ := do(t, h, post("same", body)); code != http.StatusConflict {
		t.Fatalf("while the first merges: status %d, want 409", code)
	}
	close(imp.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first: %d", code)
	}
	imp.started = nil
	if code, _ := do(t, h, post("same", body)); code != http.StatusOK || imp.count() != 1 {
		t.Fatalf("after: status %d, merges %d", code, imp.count())
	}
}

// TestConcurrentSameKeyRace fires many copies of one batch at once: one
// merge, every answer 200 or 409.
func TestConcurrentSameKeyRace(t *testing.T) {
	imp := &fakeImporter{}
	h := New(Config{Importer: imp, Log: quietLog()})
	body := gzipped(t, batchBytes(t, 50))
	var wg sync.WaitGroup
	var ok, conflict atomic.Int32
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch code, msg := do(t, h, post("race", body)); code {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusConflict:
				conflict.Add(1)
			default:
				t.Errorf("status %d: %s", code, msg)
			}
		}()
	}
	wg.Wait()
	if imp.count() != 1 || ok.Load() < 1 || ok.Load()+conflict.Load() != 16 {
		t.Fatalf("merges %d, 200s %d, 409s %d", imp.count(), ok.Load(), conflict.Load())
	}
}

func TestRefusals(t *testing.T) {
	good := batchBytes(t, 1)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)/2] ^= 0xff
	huge := make([]byte, 2<<20) // zeros: compresses ~1000×
	for _, tc := range []struct {
		name   string
		req    request
		status int
		cause  string
		reason string
	}{
		{"GET", request{method: http.MethodGet}, http.StatusMethodNotAllowed, "method", "only POST"},
		{"PUT", request{method: http.MethodPut, contentType: wire.ContentType, key: "k", body: good}, http.StatusMethodNotAllowed, "method", "only POST"},
		{"json", request{method: http.MethodPost, contentType: "application/json", key: "k", body: good}, http.StatusUnsupportedMediaType, "content_type", "want application/x-veneur-lite-batch"},
		{"no content type", request{method: http.MethodPost, key: "k", body: good}, http.StatusUnsupportedMediaType, "content_type", "content type"},
		{"brotli", request{method: http.MethodPost, contentType: wire.ContentType, encoding: "br", key: "k", body: good}, http.StatusUnsupportedMediaType, "encoding", "br"},
		{"not zstd", request{method: http.MethodPost, contentType: wire.ContentType, encoding: "zstd", key: "k", body: good}, http.StatusBadRequest, "decompress", "magic number"},
		{"no key", post("", gzipped(t, good)), http.StatusBadRequest, "key", "missing Idempotency-Key"},
		{"long key", post(strings.Repeat("k", MaxKeyBytes+1), gzipped(t, good)), http.StatusBadRequest, "key", "at most 128"},
		{"key with space", post("a b", gzipped(t, good)), http.StatusBadRequest, "key", "not visible ASCII"},
		{"not gzip", post("k", good), http.StatusBadRequest, "decompress", "decompress"},
		{"truncated gzip", post("k", gzipped(t, good)[:20]), http.StatusBadRequest, "decompress", "read body"},
		{"garbage", post("k", gzipped(t, []byte("hello, world"))), http.StatusBadRequest, "magic", "not a veneur-lite batch"},
		{"corrupt", post("k", gzipped(t, corrupt)), http.StatusBadRequest, "checksum", "checksum mismatch"},
		{"empty", post("k", gzipped(t, nil)), http.StatusBadRequest, "magic", "decode batch"},
		{"too many series", post("k", gzipped(t, batchBytes(t, 11))), http.StatusBadRequest, "limit", "11 series: at most 10"},
		{"body too large", post("k", make([]byte, 5000)), http.StatusRequestEntityTooLarge, "body_too_large", "at most 4096"},
		{"gzip bomb", post("k", gzipped(t, huge)), http.StatusRequestEntityTooLarge, "decoded_too_large", "beyond 1048576 bytes decoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp := &fakeImporter{}
			reg := telemetry.NewRegistry()
			h := New(Config{Importer: imp, Stats: reg, Log: quietLog(), MaxBodyBytes: 4096, MaxDecodedBytes: 1 << 20, Limits: wire.Limits{MaxSeries: 10}})
			code, msg := do(t, h, tc.req)
			if code != tc.status || !strings.Contains(msg, tc.reason) {
				t.Fatalf("status %d %q, want %d containing %q", code, msg, tc.status, tc.reason)
			}
			if imp.merges != 0 {
				t.Fatal("merged a refused batch")
			}
			if n := reg.Counter("import.errors", "cause:"+tc.cause).Load(); n != 1 {
				t.Fatalf("import.errors{cause:%s} = %d", tc.cause, n)
			}
			// A refused key is not remembered: the sender may retry it.
			if h.keys.len() != 0 {
				t.Fatalf("%d keys remembered", h.keys.len())
			}
		})
	}
}

// TestRefusedBatchCanBeRetried: a key whose batch was refused is not
// marked merged; the same key with a good body is merged.
func TestRefusedBatchCanBeRetried(t *testing.T) {
	imp := &fakeImporter{}
	h := New(Config{Importer: imp, Log: quietLog()})
	if code, _ := do(t, h, post("k", gzipped(t, []byte("VLFB\x01 broken")))); code != http.StatusBadRequest {
		t.Fatalf("status %d", code)
	}
	if code, _ := do(t, h, post("k", gzipped(t, batchBytes(t, 1)))); code != http.StatusOK || imp.merges != 1 {
		t.Fatalf("status %d, merges %d", code, imp.merges)
	}
}

// TestPanickingImporterIsContained: a merge that blows up is answered
// 500 and counted, the handler goes on serving, and its key is recorded
// (not left "in progress" for ever, nor released): part of the batch may
// be merged, so the sender's resend is acknowledged, not merged again.
func TestPanickingImporterIsContained(t *testing.T) {
	reg := telemetry.NewRegistry()
	imp := &panicker{}
	h := New(Config{Importer: imp, Log: quietLog(), Stats: reg})
	if code, msg := do(t, h, post("k", gzipped(t, batchBytes(t, 1)))); code != http.StatusInternalServerError || !strings.Contains(msg, "panicked") {
		t.Fatalf("status %d %q, want 500 saying the merge panicked", code, msg)
	}
	if n := reg.Counter("import.errors", "cause:panic").Load(); n != 1 {
		t.Errorf("import.errors{cause:panic} = %d, want 1", n)
	}
	if code, msg := do(t, h, post("k", gzipped(t, batchBytes(t, 1)))); code != http.StatusOK || !strings.Contains(msg, "duplicate") || imp.calls != 1 {
		t.Errorf("resend: status %d %q after %d merges, want 200 duplicate and no second merge", code, msg, imp.calls)
	}
	imp.ok = true
	if code, _ := do(t, h, post("k2", gzipped(t, batchBytes(t, 1)))); code != http.StatusOK {
		t.Errorf("next batch: status %d, want 200", code)
	}
}

type panicker struct {
	calls int
	ok    bool
}

func (p *panicker) Import(time.Time, time.Duration, []metric.Series) {
	p.calls++
	if !p.ok {
		panic("boom")
	}
}

func TestDedupWindowExpires(t *testing.T) {
	imp := &fakeImporter{}
	now := time.Unix(1_700_000_000, 0)
	h := New(Config{Importer: imp, Log: quietLog(), DedupWindow: time.Minute, Now: func() time.Time { return now }})
	body := gzipped(t, batchBytes(t, 1))
	do(t, h, post("k", body))
	now = now.Add(59 * time.Second)
	do(t, h, post("k", body))
	if imp.merges != 1 {
		t.Fatalf("within the window: %d merges", imp.merges)
	}
	now = now.Add(time.Minute)
	do(t, h, post("k", body))
	if imp.merges != 2 {
		t.Fatalf("after the window: %d merges, want the key forgotten", imp.merges)
	}
}

func TestDedupCountBound(t *testing.T) {
	imp := &fakeImporter{}
	h := New(Config{Importer: imp, Log: quietLog(), DedupMaxKeys: 3})
	body := gzipped(t, batchBytes(t, 1))
	for _, k := range []string{"a", "b", "c", "d"} {
		do(t, h, post(k, body))
	}
	if n := h.keys.len(); n != 3 {
		t.Fatalf("%d keys remembered, want 3", n)
	}
	do(t, h, post("d", body)) // still remembered
	do(t, h, post("a", body)) // the oldest, forgotten
	if imp.merges != 5 {
		t.Fatalf("%d merges, want 5", imp.merges)
	}
}

func TestDedupClaims(t *testing.T) {
	now := time.Unix(0, 0)
	d := newDedup(time.Minute, 2)
	_, a := d.begin("a", now)
	for _, k := range []string{"b", "c", "d"} {
		_, el := d.begin(k, now)
		d.complete(el, now)
	}
	// The count bound forgets merged keys, never a claim in progress: a
	// retry of "a" now would merge alongside it.
	if st, _ := d.begin("a", now); st != keyBusy {
		t.Fatalf("claim in progress beyond the count bound: %v, want busy", st)
	}
	if st, _ := d.begin("d", now); st != keyDone {
		t.Fatalf("newest merged key: %v, want remembered", st)
	}
	if st, _ := d.begin("b", now); st != keyNew {
		t.Fatalf("oldest merged key: %v, want forgotten", st)
	}
	// A merge slower than the window loses its claim to expiry.
	now = now.Add(time.Minute)
	if st, _ := d.begin("a", now); st != keyNew {
		t.Fatalf("expired claim: %v, want new", st)
	}
	// a's first claim completes late: the newer claim of "a" decides.
	d.complete(a, now)
	if st, _ := d.begin("a", now); st != keyBusy {
		t.Fatalf("want the newer claim in progress, got %v", st)
	}
	// An abort of a stale claim leaves the current one alone.
	d.abort(a)
	if st, _ := d.begin("a", now); st != keyBusy {
		t.Fatalf("stale abort removed the current claim: %v", st)
	}
}

func TestLogsAreThrottled(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	h := New(Config{Importer: &fakeImporter{}, Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	for range 100 {
		do(t, h, request{method: http.MethodGet})
	}
	now = now.Add(2 * time.Second)
	do(t, h, request{method: http.MethodGet})
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed_since_last=99") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// TestOverRealHTTP goes through a real server and client, the way a local
// posts, against the real global aggregation.
func TestOverRealHTTP(t *testing.T) {
	reg := telemetry.NewRegistry()
	agg, err := global.New(global.Config{Interval: 10 * time.Second, Stats: reg, Now: func() time.Time { return intervalStart.Add(11 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, New(Config{Importer: agg, Log: quietLog()}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	local, _ := aggregate.New(aggregate.Config{})
	var samples []metric.Sample
	for i := range 1000 {
		samples = append(samples, metric.Sample{Name: []byte("lat"), Value: float64(i), Rate: 1, Kind: metric.Histogram})
	}
	local.Push(samples)
	enc, err := wire.AppendEncode(nil, &wire.Batch{IntervalStart: intervalStart, Interval: 10 * time.Second, Source: "l", Series: local.Flush(intervalStart.Add(10*time.Second), 10*time.Second).Forward})
	if err != nil {
		t.Fatal(err)
	}
	body := gzipped(t, enc)
	for range 3 { // a batch and two retries
		resp, err := srv.Client().Do(post("batch-1", body).to(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := reg.Counter("import.digest_samples").Load(); n != 1000 {
		t.Fatalf("merged %d samples, want 1000 (once)", n)
	}
}

// BenchmarkServeImport measures the endpoint without the network:
// decompression, decode and merge of a batch of 1000 histogram digests of
// 500 lognormal samples each (what one local forwards for 1000 series),
// into a window that already holds those series (as every host's batches
// but the first find it), with the body as locals send it (zstd) and as
// older ones did (gzip). cpu-ns/digest counts the whole process (the
// collector included); digests/s/core is its inverse.
//
//	go test ./importsrv -run '^$' -bench ServeImport -benchmem -count 6
func BenchmarkServeImport(b *testing.B) {
	local, _ := aggregate.New(aggregate.Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	samples := make([]metric.Sample, 0, 1000*500)
	tags := []byte("env:prod")
	for s := range 1000 {
		name := []byte(fmt.Sprintf("api.latency.%d", s))
		for range 500 {
			samples = append(samples, metric.Sample{Name: name, Tags: tags, Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: metric.Histogram})
		}
	}
	local.Push(samples)
	enc, err := wire.AppendEncode(nil, &wire.Batch{IntervalStart: intervalStart, Interval: 10 * time.Second, Series: local.Flush(intervalStart.Add(10*time.Second), 10*time.Second).Forward})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		encoding string
		body     []byte
	}{{"zstd", zstded(b, enc)}, {"gzip", gzipped(b, enc)}} {
		b.Run("encoding="+bc.encoding, func(b *testing.B) {
			agg, _ := global.New(global.Config{Interval: 10 * time.Second, Now: func() time.Time { return intervalStart.Add(11 * time.Second) }})
			h := New(Config{Importer: agg, Log: quietLog()})
			warm := post("warm", bc.body)
			warm.encoding = bc.encoding
			do(b, h, warm) // the window holds the series from here on
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			i := 0
			cpu := cputime.Process()
			for b.Loop() {
				i++
				req := post(fmt.Sprint(i), bc.body)
				req.encoding = bc.encoding
				if code, msg := do(b, h, req); code != http.StatusOK {
					b.Fatalf("%d %s", code, msg)
				}
			}
			cpu = cputime.Process() - cpu
			b.ReportMetric(float64(len(bc.body))/1000, "wire-B/digest")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(i*1000), "cpu-ns/digest")
				b.ReportMetric(float64(i*1000)/cpu.Seconds(), "digests/s/core")
			}
		})
	}
}

// TestUnsizedBodyTooLarge: a body without Content-Length (chunked) is cut
// at the bound while being read.
func TestUnsizedBodyTooLarge(t *testing.T) {
	reg := telemetry.NewRegistry()
	h := New(Config{Importer: &fakeImporter{}, Stats: reg, Log: quietLog(), MaxBodyBytes: 100})
	r := httptest.NewRequest(http.MethodPost, Path, io.MultiReader(bytes.NewReader(make([]byte, 1000))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", wire.ContentType)
	r.Header.Set(wire.HeaderIdempotencyKey, "k")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || reg.Counter("import.errors", "cause:body_too_large").Load() != 1 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// Batches beyond MaxConcurrent wait for a slot and are turned away with a
// retryable 503 when none frees up, so memory stays bounded under a burst.
func TestAdmissionBound(t *testing.T) {
	imp := &fakeImporter{started: make(chan struct{}, 1), release: make(chan struct{})}
	h := New(Config{Importer: imp, Log: quietLog(), MaxConcurrent: 1})
	first := make(chan int)
	go func() {
		code, _ := do(t, h, post("first", gzipped(t, batchBytes(t, 1))))
		first <- code
	}()
	<-imp.started // holds the only slot
	code, _ := do(t, h, post("second", gzipped(t, batchBytes(t, 1))))
	if code != http.StatusServiceUnavailable {
		t.Errorf("second while the slot is held: status %d, want 503", code)
	}
	close(imp.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first: %d", code)
	}
	imp.started = nil
	if code, _ := do(t, h, post("second", gzipped(t, batchBytes(t, 1)))); code != http.StatusOK || imp.count() != 2 {
		t.Errorf("second once the slot is free: status %d, merges %d", code, imp.count())
	}
}

// Senders that stall mid-body lose their slot after BodyReadTimeout, so
// they cannot lock every other sender out of the import endpoint.
func TestStalledBodiesDoNotHoldSlots(t *testing.T) {
	imp := &fakeImporter{}
	reg := telemetry.NewRegistry()
	h := New(Config{Importer: imp, Stats: reg, Log: quietLog(), MaxConcurrent: 2, BodyReadTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := gzipped(t, batchBytes(t, 1))
	var stalled []net.Conn
	for i := range 2 { // one stalled sender per slot
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stalled = append(stalled, c)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Encoding: gzip\r\n%s: stalled-%d\r\nContent-Length: %d\r\n\r\n",
			Path, wire.ContentType, wire.HeaderIdempotencyKey, i, len(body))
		if _, err := c.Write(body[:5]); err != nil {
			t.Fatal(err)
		}
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		return len(h.slots) == 2, fmt.Sprintf("stalled senders took %d of the 2 slots", len(h.slots))
	})
	resp, err := srv.Client().Do(post("healthy", body).to(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || imp.count() != 1 {
		t.Errorf("healthy batch behind stalled senders: status %d, merges %d; want 200 and 1", resp.StatusCode, imp.count())
	}
	// The stalled senders' batches were fine, only slow: they are told
	// to try again (408), not that the batch is bad (a 4xx the
	// forwarder would drop it for).
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled sender %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("stalled sender %d: status %d, want 408", i, resp.StatusCode)
		}
	}
	if n := reg.Counter("import.errors", "cause:read_timeout").Load(); n != 2 {
		t.Errorf("import.errors{cause:read_timeout} = %d, want 2", n)
	}
}

// TestImportAuth: with a token configured, an import without it gets 401
// and one with a wrong token 403, both counted, nothing merged; the right
// token merges once. Required without any credential configured refuses
// everyone with 403. Without Required and without a token, anyone may
// import (a loopback http_address).
func TestImportAuth(t *testing.T) {
	const token = "s3cret-token"
	withToken := func(req request, tok string) request {
		req.authorization = "Bearer " + tok
		return req
	}
	for _, tc := range []struct {
		name   string
		auth   Auth
		req    request
		code   int
		cause  string
		merged int
	}{
		{"missing token", Auth{Token: token, Required: true}, post("k1", gzipped(t, batchBytes(t, 1))), http.StatusUnauthorized, "unauthenticated", 0},
		{"wrong token", Auth{Token: token, Required: true}, withToken(post("k2", gzipped(t, batchBytes(t, 1))), "guess"), http.StatusForbidden, "forbidden", 0},
		{"right token", Auth{Token: token, Required: true}, withToken(post("k3", gzipped(t, batchBytes(t, 1))), token), http.StatusOK, "", 1},
		{"token on loopback too", Auth{Token: token}, post("k4", gzipped(t, batchBytes(t, 1))), http.StatusUnauthorized, "unauthenticated", 0},
		{"nothing configured, required", Auth{Required: true}, post("k5", gzipped(t, batchBytes(t, 1))), http.StatusForbidden, "forbidden", 0},
		{"nothing configured, loopback", Auth{}, post("k6", gzipped(t, batchBytes(t, 1))), http.StatusOK, "", 1},
		{"certificates only, none shown", Auth{VerifiedCerts: true, Required: true}, post("k7", gzipped(t, batchBytes(t, 1))), http.StatusUnauthorized, "unauthenticated", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := telemetry.NewRegistry()
			var logs bytes.Buffer
			imp := &fakeImporter{}
			h := New(Config{Importer: imp, Auth: tc.auth, Stats: reg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			code, msg := do(t, h, tc.req)
			if code != tc.code || imp.merges != tc.merged {
				t.Fatalf("status %d (%q), %d merges; want %d, %d", code, msg, imp.merges, tc.code, tc.merged)
			}
			if tc.cause != "" {
				if n := reg.Counter("import.errors", "cause:"+tc.cause).Load(); n != 1 {
					t.Errorf("import.errors{cause:%s} = %d, want 1", tc.cause, n)
				}
			}
			if strings.Contains(logs.String()+msg, token) || strings.Contains(logs.String()+msg, "guess") {
				t.Errorf("a token appears in the answer or the log:\n%s\n%s", msg, logs.String())
			}
		})
	}
}

// TestImportAuthByClientCertificate: over a real TLS server that verifies
// client certificates when given, an import with a certificate the
// authority signed merges without a token; one without is refused.
func TestImportAuthByClientCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	srvPair, clientPair := ca.Server("global"), ca.Client("local-1")
	srvTLS, err := tlsconfig.NewReloader(tlsconfig.Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	imp := &fakeImporter{}
	srv := httptest.NewUnstartedServer(New(Config{Importer: imp, Auth: Auth{VerifiedCerts: true, Required: true}, Log: quietLog()}))
	srv.TLS = srvTLS.ServerConfig(tlsconfig.VerifyClientCertIfGiven)
	srv.StartTLS()
	defer srv.Close()

	client := func(pair *tlstest.Pair) *http.Client {
		files := tlsconfig.Files{CA: ca.CertFile}
		if pair != nil {
			files.Cert, files.Key = pair.CertFile, pair.KeyFile
		}
		r, err := tlsconfig.NewReloader(files, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: r.ClientConfig("127.0.0.1")}}
	}
	for _, tc := range []struct {
		name   string
		pair   *tlstest.Pair
		code   int
		merged int
	}{
		{"no certificate", nil, http.StatusUnauthorized, 0},
		{"signed certificate", &clientPair, http.StatusOK, 1},
	} {
		resp, err := client(tc.pair).Do(post(fmt.Sprintf("k%d", tc.merged), gzipped(t, batchBytes(t, 1))).to(srv.URL))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || imp.merges != tc.merged {
			t.Errorf("%s: status %d after %d merges, want %d, %d", tc.name, resp.StatusCode, imp.merges, tc.code, tc.merged)
		}
	}
}

// zstded compresses p as the forwarder does.
func zstded(t testing.TB, p []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(p, nil)
}

// TestZstdBodies: a zstd body (what locals send) merges like a gzip one,
// and one that decompresses beyond MaxDecodedBytes is refused with 413.
func TestZstdBodies(t *testing.T) {
	reg := telemetry.NewRegistry()
	imp := &fakeImporter{}
	h := New(Config{Importer: imp, Log: quietLog(), Stats: reg, MaxDecodedBytes: 64 << 10})
	req := post("z1", zstded(t, batchBytes(t, 3)))
	req.encoding = "zstd"
	if code, msg := do(t, h, req); code != http.StatusOK || imp.merges != 1 || imp.series != 3 {
		t.Fatalf("status %d %q, %d merges of %d series; want 200, 1, 3", code, msg, imp.merges, imp.series)
	}
	bomb := post("z2", zstded(t, make([]byte, 1<<20))) // 1 MiB of zeros, a few bytes compressed
	bomb.encoding = "zstd"
	if code, msg := do(t, h, bomb); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body decompressing to 1 MiB past a 64 KiB bound: status %d %q, want 413", code, msg)
	}
	if n := reg.Counter("import.errors", "cause:decoded_too_large").Load(); n != 1 {
		t.Errorf("decoded_too_large = %d, want 1", n)
	}
}
