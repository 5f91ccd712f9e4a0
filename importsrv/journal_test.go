package importsrv

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/internal/cputime"
	"github.com/veneur-lite/veneur-lite/journal"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"github.com/veneur-lite/veneur-lite/wire"
)

// journaled is a handler with a real journal and real windows, as a
// journaled global runs them.
type journaled struct {
	h       *Handler
	windows *global.Windows
	j       *journal.Journal
	reg     *telemetry.Registry
}

func openJournaled(t *testing.T, dir string, maxBytes int64) *journaled {
	t.Helper()
	reg := telemetry.NewRegistry()
	clock := func() time.Time { return intervalStart.Add(15 * time.Second) }
	windows, err := global.New(global.Config{Interval: 10 * time.Second, Stats: reg, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	jr := &journaled{windows: windows, reg: reg}
	var ref lateJournal
	jr.h = New(Config{Importer: windows, Journal: &ref, Stats: reg, Log: quietLog()})
	jr.j, err = journal.Open(journal.Options{Dir: dir, MaxBytes: maxBytes, Stats: reg, Log: quietLog()}, jr.h.Replay)
	if err != nil {
		t.Fatal(err)
	}
	ref.j = jr.j
	t.Cleanup(func() { _ = jr.j.Close() })
	return jr
}

type lateJournal struct{ j *journal.Journal }

func (l *lateJournal) Append(w time.Time, rec *journal.Record) error { return l.j.Append(w, rec) }

// A journaled import is acknowledged once on disk; a full journal answers
// 503 with Retry-After and merges nothing, until flushed windows are
// forgotten; a restart replays what was acknowledged, and a resend of it
// is a duplicate.
func TestJournaledImport(t *testing.T) {
	dir := t.TempDir()
	a, b := gzipped(t, batchBytes(t, 3)), gzipped(t, batchBytes(t, 5))
	// Room for the first batch's record, not for the second's.
	bound := int64(12 + 8 + 1 + len("key-a") + 25 + len(a) + 40)
	jr := openJournaled(t, dir, bound)
	if code, body := do(t, jr.h, post("key-a", a)); code != http.StatusOK {
		t.Fatalf("first batch: %d %s", code, body)
	}
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(b))
	post("key-b", b).setHeaders(r)
	w := httptest.NewRecorder()
	jr.h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("past the bound: %d (Retry-After %q) %s, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := jr.reg.Counter("import.errors", "cause:journal_full").Load(); n != 1 {
		t.Errorf("import.errors{cause:journal_full} = %d, want 1", n)
	}
	if n := jr.reg.Counter("import.series_merged").Load(); n != 3 {
		t.Errorf("%d series merged, want the first batch's 3 only", n)
	}
	// The first batch's window is flushed and forgotten: room again.
	_, _, starts := jr.windows.FlushWindows(intervalStart.Add(20*time.Second), 10*time.Second)
	if len(starts) != 1 {
		t.Fatalf("flushed windows %v, want one", starts)
	}
	if err := jr.j.Forget(starts[0]); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, jr.h, post("key-b", b)); code != http.StatusOK {
		t.Fatalf("resent once the journal has room: %d %s", code, body)
	}
	if err := jr.j.Close(); err != nil {
		t.Fatal(err)
	}

	// The process dies; the next one replays the second batch only.
	again := openJournaled(t, dir, bound)
	if r := again.j.Replayed(); r.Records != 1 || r.Failed != 0 {
		t.Fatalf("replayed %+v, want the one record not flushed", r)
	}
	if n := again.reg.Counter("import.series_merged").Load(); n != 5 {
		t.Errorf("%d series merged by the replay, want 5", n)
	}
	if code, body := do(t, again.h, post("key-b", b)); code != http.StatusOK || body != "ok (duplicate, not merged again)\n" {
		t.Errorf("resend after the restart: %d %q, want 200 duplicate", code, body)
	}
	if n := again.reg.Counter("import.duplicates").Load(); n != 1 {
		t.Errorf("import.duplicates = %d, want 1", n)
	}
	if n := again.reg.Counter("import.series_merged").Load(); n != 5 {
		t.Errorf("%d series merged after the resend, want still 5", n)
	}
}

// BenchmarkJournalReplay measures a start's replay of one window from the
// journal: -locals batches (each of -series histogram digests of 100
// lognormal samples, zstd, as locals send them) decoded and merged through
// Handler.Replay on every core. digests/s is the wall-clock rate; the
// 1,000 locals × 10,000 series target scales from it; cpu-ns/digest
// (the whole process) says what it costs on a machine of its own.
//
//	go test ./importsrv -run '^$' -bench JournalReplay -benchtime 3x
func BenchmarkJournalReplay(b *testing.B) {
	const locals, series = 100, 1000
	local, _ := aggregate.New(aggregate.Config{})
	rng := rand.New(rand.NewPCG(5, 6))
	samples := make([]metric.Sample, 0, series*100)
	for s := range series {
		name := []byte(fmt.Sprintf("api.latency.%d", s))
		for range 100 {
			samples = append(samples, metric.Sample{Name: name, Tags: []byte("env:prod"), Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: metric.Histogram})
		}
	}
	local.Push(samples)
	enc, err := wire.AppendEncode(nil, &wire.Batch{IntervalStart: intervalStart, Interval: 10 * time.Second, Series: local.Flush(intervalStart.Add(10*time.Second), 10*time.Second).Forward})
	if err != nil {
		b.Fatal(err)
	}
	body := zstded(b, enc)
	dir := b.TempDir()
	j, err := journal.Open(journal.Options{Dir: dir}, func(time.Time, *journal.Record) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	for i := range locals {
		rec := journal.Record{Key: fmt.Sprintf("local-%d", i), IntervalStart: intervalStart, Interval: 10 * time.Second,
			Received: intervalStart.Add(11 * time.Second), Encoding: journal.Zstd, Body: body}
		if err := j.Append(intervalStart, &rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	var elapsed, cpu time.Duration
	for b.Loop() {
		reg := telemetry.NewRegistry()
		windows, _ := global.New(global.Config{Interval: 10 * time.Second, Stats: reg, Now: func() time.Time { return intervalStart.Add(11 * time.Second) }})
		h := New(Config{Importer: windows, Log: quietLog()})
		began, cpuBegan := time.Now(), cputime.Process()
		j, err := journal.Open(journal.Options{Dir: dir, Log: quietLog()}, h.Replay)
		elapsed += time.Since(began)
		cpu += cputime.Process() - cpuBegan
		if err != nil {
			b.Fatal(err)
		}
		if r := j.Replayed(); r.Records != locals {
			b.Fatalf("replayed %+v", r)
		}
		if n := reg.Counter("import.series_merged").Load(); n != locals*series {
			b.Fatalf("merged %d series, want %d", n, locals*series)
		}
		_ = j.Close()
	}
	b.ReportMetric(float64(locals*series)*float64(b.N)/elapsed.Seconds(), "digests/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(locals*series*b.N), "cpu-ns/digest")
	}
	b.ReportMetric(float64(len(body))/series, "wire-B/digest")
}
