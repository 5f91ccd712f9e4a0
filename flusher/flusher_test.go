package flusher

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/internal/pointtest"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// fakeAggregator records when it was flushed and what was pushed into it.
type fakeAggregator struct {
	mu       sync.Mutex
	flushes  []time.Time
	pushed   []metric.Sample
	recycled []int64 // the timestamp of each recycled flush's points
}

func (a *fakeAggregator) Recycle(points []metric.Point) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recycled = append(a.recycled, points[0].Timestamp)
}

func (a *fakeAggregator) recycledCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recycled)
}

func (a *fakeAggregator) Push(s []metric.Sample) {
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
		Points:  []metric.Point{{Name: "p", Timestamp: now.Unix()}},
		Events:  []metric.Event{{Title: "e", Timestamp: now.Unix()}},
		Forward: []metric.Series{{Key: "k"}},
	}
}

// hangingSink blocks every flush until its context ends, like a dead intake.
type hangingSink struct {
	mu        sync.Mutex
	deadlines []time.Duration // deadline minus flush start
}

func (s *hangingSink) Name() string { return "hanging" }

func (s *hangingSink) Flush(ctx context.Context, _ []metric.Point) error {
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

func (f *recordingForwarder) Hold(start time.Time, _ []metric.Series) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, start)
}

func (f *recordingForwarder) Forward(_ context.Context, start time.Time, _ []metric.Series) {
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
			Log: slog.New(slog.DiscardHandler)})
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

// Self-metrics that moved during the interval are pushed before it ends;
// a histogram as its .count, .sum and .max.
func TestFlushPushesSelfMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := telemetry.NewRegistryOf(append(slices.Clone(telemetry.Catalog),
			telemetry.Spec{Name: "test.events", Kind: telemetry.KindCounter, Tags: []string{"k"}, Help: "Test events."},
			telemetry.Spec{Name: "test.wait_seconds", Kind: telemetry.KindHistogram, Help: "Test waits."}))
		reg.Counter("test.events", "k:v").Add(5)
		wait := reg.Histogram("test.wait_seconds")
		wait.Observe(0.5)
		wait.Observe(2)
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
				if s.Value != 5 || s.Kind != metric.Counter || string(s.Tags) != "k:v,veneur_internal_metric:true" {
					t.Errorf("self-metric sample = %+v (tags %q)", s, s.Tags)
				}
			}
		}
		if !found {
			t.Errorf("veneur.test.events not pushed; pushed %d samples", len(agg.pushed))
		}
		want := map[string]metric.Sample{
			"veneur.test.wait_seconds.count": {Value: 2, Kind: metric.Counter},
			"veneur.test.wait_seconds.sum":   {Value: 2.5, Kind: metric.Counter},
			"veneur.test.wait_seconds.max":   {Value: 2, Kind: metric.Gauge},
		}
		for _, s := range agg.pushed {
			if w, ok := want[string(s.Name)]; ok {
				if s.Value != w.Value || s.Kind != w.Kind || string(s.Tags) != "veneur_internal_metric:true" {
					t.Errorf("%s pushed as %+v, want value %v kind %v", s.Name, s, w.Value, w.Kind)
				}
				delete(want, string(s.Name))
			}
		}
		if len(want) > 0 {
			t.Errorf("histogram series not pushed: %v", want)
		}
		if n := reg.Histogram("flush.duration_seconds").Snapshot().Count; n != 1 {
			t.Errorf("flush.duration_seconds observed %d times, want 1 (one flush)", n)
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
			Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(25 * time.Second) // ticks at :10 (Forward blocks) and :20
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		close(fwd.block)
		synctest.Wait()

		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		if len(fwd.starts) != 1 || len(fwd.held) != 1 || !fwd.held[0].Equal(agg.flushes[1].Add(-10*time.Second)) {
			t.Errorf("forwarded %v, held %v; want the second interval held while the first is still forwarding", fwd.starts, fwd.held)
		}
	})
}

// blockingSink records what it is given and, while block is open, does not
// return: an intake slower than the interval. failSeries makes every
// series flush fail.
type blockingSink struct {
	mu         sync.Mutex
	points     []int64 // timestamps of the flushes' points
	events     []int64
	block      chan struct{}
	failSeries bool
}

func (s *blockingSink) Name() string { return "blocking" }

func (s *blockingSink) Flush(_ context.Context, points []metric.Point) error {
	s.mu.Lock()
	s.points = append(s.points, points[0].Timestamp)
	s.mu.Unlock()
	if s.block != nil {
		<-s.block
	}
	if s.failSeries {
		return errors.New("intake refused a body")
	}
	return nil
}

func (s *blockingSink) FlushEvents(_ context.Context, events []metric.Event, _ []metric.ServiceCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events[0].Timestamp)
	return nil
}

// A shutdown while the outputs still send the last tick's interval waits
// for them and then sends the final interval too: nothing is skipped or
// left held with no Forward to come.
func TestFinalWaitsForBusyOutputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agg := &fakeAggregator{}
		block := make(chan struct{})
		sink := &blockingSink{block: block}
		fwd := &recordingForwarder{block: block}
		f := New(Config{Aggregator: agg, Sinks: []sinks.Sink{sink}, Forwarder: fwd, Interval: 10 * time.Second,
			Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(12 * time.Second) // the :10 tick's outputs are blocked
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}

		finalDone := make(chan struct{})
		go func() {
			fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer fcancel()
			f.Final(fctx)
			close(finalDone)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := agg.recycledCount(); n != 0 {
			t.Errorf("%d flushes' points recycled while the sink still had them", n)
		}
		close(block) // the tick's outputs finish, late
		<-finalDone
		if n := agg.recycledCount(); n != 2 {
			t.Errorf("%d flushes' points recycled, want both once their outputs were done", n)
		}

		agg.mu.Lock()
		tick, final := agg.flushes[0].Unix(), agg.flushes[1].Unix()
		agg.mu.Unlock()
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.points) != 2 || sink.points[0] != tick || sink.points[1] != final {
			t.Errorf("sink got flushes of %v, want the tick's %d and the final %d", sink.points, tick, final)
		}
		fwd.mu.Lock()
		defer fwd.mu.Unlock()
		if len(fwd.starts) != 2 || len(fwd.held) != 0 {
			t.Errorf("forwarded %v, held %v; want both intervals forwarded, none held", fwd.starts, fwd.held)
		}
	})
}

// A sink whose series flush fails still gets the interval's events.
func TestSeriesFailureKeepsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := telemetry.NewRegistry()
		sink := &blockingSink{failSeries: true}
		f := New(Config{Aggregator: &fakeAggregator{}, Sinks: []sinks.Sink{sink}, Interval: 10 * time.Second, Stats: reg,
			Log: slog.New(slog.DiscardHandler)})
		fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
		defer fcancel()
		f.Final(fctx)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.points) != 1 || len(sink.events) != 1 {
			t.Errorf("sink got %d series flushes and %d event flushes, want 1 and 1", len(sink.points), len(sink.events))
		}
		if n := reg.Counter("flush.errors", "output:sink:blocking").Load(); n != 1 {
			t.Errorf("flush.errors = %d, want 1", n)
		}
	})
}

// A wall clock that steps back after a tick does not flush that tick a
// second time.
func TestClockStepBackDoesNotRepeatTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var back atomic.Int64
		agg := &fakeAggregator{}
		f := New(Config{Aggregator: agg, Interval: 10 * time.Second,
			Now: func() time.Time { return time.Now().Add(-time.Duration(back.Load())) }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(10*time.Second + 100*time.Millisecond) // the :10 tick
		synctest.Wait()
		back.Store(int64(2 * time.Second)) // an NTP step to :08.1
		time.Sleep(15 * time.Second)       // to :25.1 real, :23.1 by the clock
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		agg.mu.Lock()
		defer agg.mu.Unlock()
		var got []string
		for _, at := range agg.flushes {
			got = append(got, at.Format(time.TimeOnly))
		}
		if len(got) != 2 || got[0] != "00:00:10" || got[1] != "00:00:20" {
			t.Errorf("flushes stamped %v, want 00:00:10 and 00:00:20 once each", got)
		}
	})
}

// Wait (shutdown without a final flush) lets the last tick's outputs
// finish, and gives up at its deadline.
func TestWaitForInFlightOutputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		sink := &blockingSink{block: block}
		f := New(Config{Aggregator: &fakeAggregator{}, Sinks: []sinks.Sink{sink}, Interval: 10 * time.Second,
			Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(11 * time.Second) // the :10 tick's sink is blocked
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}

		for _, tc := range []struct {
			release, deadline, want time.Duration
		}{
			{time.Hour, time.Second, time.Second},               // still blocked: gives up at the deadline
			{2 * time.Second, 5 * time.Second, 2 * time.Second}, // returns when the sink is done
		} {
			wctx, wcancel := context.WithTimeout(context.Background(), tc.deadline)
			began := time.Now()
			release := time.AfterFunc(tc.release, func() { close(block) })
			f.Wait(wctx)
			wcancel()
			release.Stop()
			if waited := time.Since(began); waited != tc.want {
				t.Errorf("Wait returned after %v, want %v", waited, tc.want)
			}
		}
	})
}

// captureSink keeps every flush's points.
type captureSink struct {
	mu      sync.Mutex
	flushes [][]metric.Point
}

func (s *captureSink) Name() string { return "capture" }

func (s *captureSink) Flush(_ context.Context, points []metric.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes = append(s.flushes, slices.Clone(points)) // the flusher recycles points
	return nil
}

// TestRootMergesOwnAndImportedDigests: on the root of the tier, samples
// sent to the instance directly and digests forwarded by a local for the
// same interval make ONE fleet series per percentile, without a host,
// flushed one interval late; the direct samples' aggregates still flush
// at once, with the host.
func TestRootMergesOwnAndImportedDigests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const g = 10 * time.Second
		agg, err := aggregate.New(aggregate.Config{Hostname: "g1", Aggregates: []aggregate.Aggregate{aggregate.AggCount}})
		if err != nil {
			t.Fatal(err)
		}
		fleet, err := global.New(global.Config{Interval: g, Percentiles: metric.MustPercentiles(0.5, 0.99)})
		if err != nil {
			t.Fatal(err)
		}
		sink := &captureSink{}
		f := New(Config{Aggregator: agg, Fleet: fleet, Sinks: []sinks.Sink{sink}, Interval: g, Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()

		start := time.Now() // an interval boundary under synctest
		lat := func(v float64) metric.Sample {
			return metric.Sample{Name: []byte("lat"), Tags: []byte("svc:api"), Value: v, Rate: 1, Kind: metric.Histogram}
		}
		agg.Push([]metric.Sample{lat(1), lat(2)}) // sent to the global directly
		local, err := aggregate.New(aggregate.Config{Hostname: "l1"})
		if err != nil {
			t.Fatal(err)
		}
		local.Push([]metric.Sample{lat(3), lat(4)})
		forwarded := local.Flush(start.Add(g), g).Forward

		time.Sleep(g + time.Millisecond)  // first tick: the global's own interval ends
		fleet.Import(start, g, forwarded) // the local forwards during the next interval
		time.Sleep(g)                     // second tick: the fleet interval is due
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.flushes) != 2 {
			t.Fatalf("%d flushes, want 2", len(sink.flushes))
		}
		pointtest.Assert(t, sink.flushes[0], []metric.Point{{
			Name: "lat.count", Tags: []string{"svc:api"}, Host: "g1", Type: metric.RatePoint,
			Value: 0.2, Timestamp: start.Add(g).Unix(), Interval: g,
		}})
		second := sink.flushes[1]
		if len(second) != 2 {
			t.Fatalf("second flush:\n%s", pointtest.Format(second))
		}
		for _, p := range second {
			// Flushed at the second tick, stamped as the local's count of
			// the same samples: the end of the interval they were in.
			if p.Host != "" || p.Timestamp != start.Add(g).Unix() {
				t.Errorf("%s: host %q at %d, want a fleet series stamped %d, as lat.count", p.Name, p.Host, p.Timestamp, start.Add(g).Unix())
			}
			switch p.Name {
			case "lat.50percentile": // of 1, 2, 3, 4: only both sources give a median between 2 and 3
				if p.Value < 2 || p.Value > 3 {
					t.Errorf("p50 = %v, want the median of own and imported samples", p.Value)
				}
			case "lat.99percentile":
				if p.Value <= 3 || p.Value > 4 {
					t.Errorf("p99 = %v, want near 4", p.Value)
				}
			default:
				t.Errorf("unexpected point %s", p.Name)
			}
		}
	})
}

// panickingSink blows up on every flush.
type panickingSink struct{}

func (panickingSink) Name() string                                { return "buggy" }
func (panickingSink) Flush(context.Context, []metric.Point) error { panic("sink bug") }

// TestPanickingSinkIsContained: a sink that panics loses its interval,
// counted, while the other outputs get theirs, interval after interval.
func TestPanickingSinkIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := telemetry.NewRegistry()
		good := &captureSink{}
		f := New(Config{Aggregator: &fakeAggregator{}, Sinks: []sinks.Sink{panickingSink{}, good}, Interval: time.Second,
			Stats: reg, Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(3*time.Second + time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.Wait(context.Background())
		good.mu.Lock()
		defer good.mu.Unlock()
		if len(good.flushes) != 3 {
			t.Errorf("the healthy sink got %d flushes, want 3", len(good.flushes))
		}
		if n := reg.Counter("flush.panics", "output:sink:buggy").Load(); n != 3 {
			t.Errorf("flush.panics = %d, want 3", n)
		}
	})
}
