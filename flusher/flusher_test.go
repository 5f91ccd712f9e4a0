package flusher

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// fakeAggregator records when it was flushed and what was pushed into it.
type fakeAggregator struct {
	mu      sync.Mutex
	flushes []time.Time
	pushed  []aggregate.Sample
}

func (a *fakeAggregator) Push(s []aggregate.Sample) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range s {
		x.Name = append([]byte(nil), x.Name...)
		x.Tags = append([]byte(nil), x.Tags...)
		a.pushed = append(a.pushed, x)
	}
}

func (a *fakeAggregator) Flush(now time.Time, _ time.Duration) aggregate.Flushed {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushes = append(a.flushes, now)
	return aggregate.Flushed{
		Points:  []aggregate.Point{{Name: "p", Timestamp: now.Unix()}},
		Forward: []aggregate.ForwardSeries{{Key: "k"}},
	}
}

// hangingSink blocks every flush until its context ends, like a dead intake.
type hangingSink struct {
	mu        sync.Mutex
	deadlines []time.Duration // deadline minus flush start
}

func (s *hangingSink) Name() string { return "hanging" }

func (s *hangingSink) Flush(ctx context.Context, _ []aggregate.Point) error {
	d, _ := ctx.Deadline()
	s.mu.Lock()
	s.deadlines = append(s.deadlines, time.Until(d))
	s.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

type recordingForwarder struct {
	mu     sync.Mutex
	starts []time.Time
	held   []time.Time
	// block, when set, holds every Forward until it is closed: a
	// forwarder that overruns its deadline.
	block chan struct{}
}

func (f *recordingForwarder) Hold(start time.Time, _ []aggregate.ForwardSeries) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, start)
}

func (f *recordingForwarder) Forward(_ context.Context, start time.Time, _ []aggregate.ForwardSeries) {
	f.mu.Lock()
	f.starts = append(f.starts, start)
	f.mu.Unlock()
	if f.block != nil {
		<-f.block
	}
}

// Flushes land on multiples of the interval, and a sink that never returns
// delays neither the next flush nor the forwarder.
func TestFlushAlignsToWallClockAndIgnoresHangingSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at midnight; begin mid-interval.
		time.Sleep(3*time.Second + 250*time.Millisecond)
		agg := &fakeAggregator{}
		sink := &hangingSink{}
		fwd := &recordingForwarder{}
		f := New(Config{Aggregator: agg, Sinks: []sinks.Sink{sink}, Forwarder: fwd, Interval: 10 * time.Second,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()

		time.Sleep(35 * time.Second) // to 00:00:38.25
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // let the last hanging flush hit its deadline
		synctest.Wait()

		agg.mu.Lock()
		defer agg.mu.Unlock()
		if len(agg.flushes) != 3 {
			t.Fatalf("flushes at %v, want 3", agg.flushes)
		}
		for i, at := range agg.flushes {
			if want := time.Duration(i+1) * 10 * time.Second; at.Sub(at.Truncate(time.Hour)) != want {
				t.Errorf("flush %d at %s, want on the %s mark", i, at.Format(time.TimeOnly), want)
			}
		}
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.deadlines) != 3 {
			t.Errorf("hanging sink called %d times, want every interval (3)", len(sink.deadlines))
		}
		for _, d := range sink.deadlines {
			if d != 9*time.Second {
				t.Errorf("sink deadline %s after the flush, want 9s (before the next tick)", d)
			}
		}
		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		if len(fwd.starts) != 3 || fwd.starts[0] != agg.flushes[0].Add(-10*time.Second) {
			t.Errorf("forwarder interval starts %v, want the start of each flushed interval", fwd.starts)
		}
	})
}

// Self-metrics that moved during the interval are pushed before it ends.
func TestFlushPushesSelfMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := telemetry.NewRegistry()
		reg.Counter("test.events", "k:v").Add(5)
		agg := &fakeAggregator{}
		f := New(Config{Aggregator: agg, Interval: time.Second, Stats: reg})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.Final(ctx)
		agg.mu.Lock()
		defer agg.mu.Unlock()
		var found bool
		for _, s := range agg.pushed {
			if string(s.Name) == "veneur.test.events" {
				found = true
				if s.Value != 5 || s.Kind != aggregate.Counter || string(s.Tags) != "k:v,veneur_internal_metric:true" {
					t.Errorf("self-metric sample = %+v (tags %q)", s, s.Tags)
				}
			}
		}
		if !found {
			t.Errorf("veneur.test.events not pushed; pushed %d samples", len(agg.pushed))
		}
	})
}

// A shutdown right after a tick must not reuse the tick's second (Datadog
// keeps one point per series and second), and forwards the partial
// interval under its own start.
func TestFinalFlushAfterTickUsesNextSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agg := &fakeAggregator{}
		fwd := &recordingForwarder{}
		f := New(Config{Aggregator: agg, Forwarder: fwd, Interval: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(10*time.Second + 300*time.Millisecond) // just past the 00:00:10 tick
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
		defer fcancel()
		f.Final(fctx)

		agg.mu.Lock()
		defer agg.mu.Unlock()
		if len(agg.flushes) != 2 {
			t.Fatalf("flushes %v, want the tick and the final one", agg.flushes)
		}
		tick, final := agg.flushes[0], agg.flushes[1]
		if final.Unix() != tick.Unix()+1 {
			t.Errorf("final flush stamped %s, tick %s: want the next second", final.Format(time.TimeOnly), tick.Format(time.TimeOnly))
		}
		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		if len(fwd.starts) != 2 || !fwd.starts[1].Equal(tick) {
			t.Errorf("forward interval starts %v, want the final one to start at the tick %s", fwd.starts, tick.Format(time.TimeOnly))
		}
	})
}

// A tick that finds the previous Forward still running hands its series to
// Hold instead of dropping them.
func TestBusyForwarderHoldsTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agg := &fakeAggregator{}
		fwd := &recordingForwarder{block: make(chan struct{})}
		f := New(Config{Aggregator: agg, Forwarder: fwd, Interval: 10 * time.Second,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(25 * time.Second) // ticks at :10 (Forward blocks) and :20
		synctest.Wait()
		cancel()
		<-done
		close(fwd.block)
		synctest.Wait()

		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		if len(fwd.starts) != 1 || len(fwd.held) != 1 || !fwd.held[0].Equal(agg.flushes[1].Add(-10*time.Second)) {
			t.Errorf("forwarded %v, held %v; want the second interval held while the first is still forwarding", fwd.starts, fwd.held)
		}
	})
}
