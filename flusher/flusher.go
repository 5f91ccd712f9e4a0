// Package flusher drives the interval: at every wall-clock-aligned tick it
// ends the aggregator's interval and hands the result to the sinks and, on a
// local instance, to the forwarder — each on its own goroutine with a
// deadline before the next tick, so a slow sink or global tier delays only
// itself, never ingestion or the next interval.
//
//	tick ──▶ Aggregator.Flush ──▶ sink₁.Flush ┐ (concurrent, deadline = next tick)
//	                            ├▶ sinkₙ.Flush ┘
//	                            └▶ Forwarder.Forward
package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Aggregator is the interval state the flusher ends.
type Aggregator interface {
	Push(samples []metric.Sample)
	Flush(now time.Time, interval time.Duration) aggregate.Flushed
	// Recycle takes back the points of a flush every output is done with.
	Recycle(points []metric.Point)
}

// liveSeriesReporter is an Aggregator that reports the series of the
// interval under way into that interval, once every other self-metric is
// in it (aggregate.Aggregator does).
type liveSeriesReporter interface {
	ReportLiveSeries()
}

var _ liveSeriesReporter = (*aggregate.Aggregator)(nil)

// Fleet is the global tier's aggregation on this instance (package
// aggregate/global): what it merged is flushed one interval late, as
// fleet-wide points or, on a middle tier, as series for the next tier.
type Fleet interface {
	Import(intervalStart time.Time, interval time.Duration, series []metric.Series)
	Flush(now time.Time, interval time.Duration) ([]metric.Point, []metric.Series)
}

// Settler is a Fleet that keeps what it flushed (in a journal) until every
// output is done with it, or has given up: FlushSettle is Flush returning
// also what to call then (nil when nothing was flushed).
type Settler interface {
	FlushSettle(now time.Time, interval time.Duration) (points []metric.Point, forward []metric.Series, settled func())
}

// Forwarder ships the series aggregation marked global. Forward must return
// by ctx's deadline; what it could not deliver is its own to keep or drop.
// Hold takes an interval's series while a Forward is still running, to be
// sent by the next one.
type Forwarder interface {
	Forward(ctx context.Context, intervalStart time.Time, series []metric.Series)
	Hold(intervalStart time.Time, series []metric.Series)
}

// Config wires a Flusher.
type Config struct {
	Aggregator Aggregator
	Sinks      []sinks.Sink
	// Fleet merges and flushes the global tier's intervals; nil when this
	// instance takes no part in it (tests of the local pipeline alone).
	Fleet Fleet
	// Forwarder sends the interval's global state up the tier; nil on the
	// root of the tier, whose Fleet takes that state itself.
	Forwarder Forwarder
	Interval  time.Duration
	Stats     *telemetry.Registry
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Flusher runs the flush loop.
type Flusher struct {
	cfg      Config
	outputs  []*output
	inFlight sync.WaitGroup
	lastTick time.Time // of the last regular flush; owned by Run, then Final

	flushDuration *telemetry.Histogram
	pointsFlushed *telemetry.Counter
}

// output is one destination with its own "still busy" lock, so a sink that
// ignores its deadline skips intervals instead of piling up goroutines.
type output struct {
	name string
	// busy holds a token while the output runs: a regular flush that
	// cannot put one skips (or holds) its interval, the final one waits
	// for room until its deadline.
	busy    chan struct{}
	skipped *telemetry.Counter
	errors  *telemetry.Counter
	panics  *telemetry.Counter
	run     func(ctx context.Context, f *aggregate.Flushed, intervalStart time.Time) error
	// whileBusy, if set, takes the interval instead when the output is
	// still busy with the previous one.
	whileBusy func(f *aggregate.Flushed, intervalStart time.Time)
}

// New returns a flusher for cfg.
func New(cfg Config) *Flusher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := &Flusher{
		cfg:           cfg,
		flushDuration: cfg.Stats.Histogram("flush.duration_seconds"),
		pointsFlushed: cfg.Stats.Counter("flush.points"),
	}
	for _, s := range cfg.Sinks {
		eventSink, _ := s.(sinks.EventSink)
		sketchSink, _ := s.(sinks.SketchSink)
		f.addOutput("sink:"+s.Name(), func(ctx context.Context, fl *aggregate.Flushed, _ time.Time) error {
			// Events go out even when some series failed: one refused
			// body must not cost the interval's events.
			err := s.Flush(ctx, fl.Points)
			if sketchSink != nil && len(fl.Sketches) > 0 {
				err = errors.Join(err, sketchSink.FlushSketches(ctx, fl.Sketches))
			}
			if eventSink != nil && (len(fl.Events) > 0 || len(fl.Checks) > 0) {
				err = errors.Join(err, eventSink.FlushEvents(ctx, fl.Events, fl.Checks))
			}
			return err
		})
	}
	if cfg.Forwarder != nil {
		// Called every interval, even with nothing new: it also resends
		// what an earlier interval could not deliver.
		f.addOutput("forward", func(ctx context.Context, fl *aggregate.Flushed, start time.Time) error {
			cfg.Forwarder.Forward(ctx, start, fl.Forward)
			return nil
		})
		f.outputs[len(f.outputs)-1].whileBusy = func(fl *aggregate.Flushed, start time.Time) {
			if len(fl.Forward) > 0 {
				cfg.Forwarder.Hold(start, fl.Forward)
			}
		}
	}
	return f
}

func (f *Flusher) addOutput(name string, run func(context.Context, *aggregate.Flushed, time.Time) error) {
	f.outputs = append(f.outputs, &output{
		name:    name,
		busy:    make(chan struct{}, 1),
		run:     run,
		skipped: f.cfg.Stats.Counter("flush.skipped", "output:"+name),
		errors:  f.cfg.Stats.Counter("flush.errors", "output:"+name),
		panics:  f.cfg.Stats.Counter("flush.panics", "output:"+name),
	})
}

// nextTick returns the first multiple of interval (since the Unix epoch)
// after now: flushes land on :00, :10, :20 for a 10s interval.
func nextTick(now time.Time, interval time.Duration) time.Time {
	return now.Truncate(interval).Add(interval)
}

// Run flushes at every tick until ctx ends. It does not flush on the way
// out: the caller stops the listeners first and then calls Final.
func (f *Flusher) Run(ctx context.Context) error {
	for {
		next := nextTick(f.cfg.Now(), f.cfg.Interval)
		if !f.lastTick.IsZero() && !next.After(f.lastTick) {
			// The wall clock stepped back: the tick just flushed must not
			// flush again, with a few milliseconds' data over its values.
			next = f.lastTick.Add(f.cfg.Interval)
		}
		timer := time.NewTimer(next.Sub(f.cfg.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		// Outputs must be done before the next tick, with a margin so the
		// next flush never finds them still marked busy.
		f.flush(context.WithoutCancel(ctx), next, next.Add(-f.cfg.Interval), next.Add(f.cfg.Interval-f.cfg.Interval/10), false)
		f.lastTick = next
	}
}

// Final flushes what the aggregator holds now and waits, until ctx's
// deadline, for every output (including earlier flushes still running).
// An output still busy with the last tick gets the final interval once it
// is done, not never.
func (f *Flusher) Final(ctx context.Context) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = f.cfg.Now().Add(f.cfg.Interval)
	}
	now := f.cfg.Now()
	// Points are stamped in whole seconds, and Datadog keeps one point per
	// series and second: a final flush in the same second as the last tick
	// would overwrite that tick's values, so it moves to the next second.
	if !f.lastTick.IsZero() && now.Unix() <= f.lastTick.Unix() {
		now = time.Unix(f.lastTick.Unix()+1, 0)
	}
	// The data is the partial interval that began at the last tick.
	f.flush(ctx, now, now.Truncate(f.cfg.Interval), deadline, true)
	f.Wait(ctx)
}

// Wait returns once no output is flushing, or when ctx ends. Without a
// final flush (flush_on_shutdown: false), it still lets the last tick's
// outputs finish before the process exits.
func (f *Flusher) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		f.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		f.cfg.Log.Warn("shutdown deadline reached with outputs still flushing")
	}
}

// flush ends the interval that began at intervalStart, stamping its points
// with now, and starts every output with the given deadline. It returns
// once the outputs are started, not finished. An output still busy skips
// the interval, unless final: then it runs when the output is free.
func (f *Flusher) flush(ctx context.Context, now, intervalStart, deadline time.Time, final bool) {
	start := time.Now()
	// Self-metrics of the interval just ended join it.
	var self []metric.Sample
	f.cfg.Stats.Collect(func(m telemetry.Measurement) {
		kind := metric.Gauge
		if m.Counter {
			kind = metric.Counter
		}
		self = append(self, metric.Sample{Name: m.Name, Tags: m.Tags, Value: m.Value, Rate: 1, Kind: kind})
	})
	if len(self) > 0 {
		f.cfg.Aggregator.Push(self)
	}
	if r, ok := f.cfg.Aggregator.(liveSeriesReporter); ok {
		r.ReportLiveSeries()
	}
	flushed := f.cfg.Aggregator.Flush(now, f.cfg.Interval)
	var settled func()
	if fl := f.cfg.Fleet; fl != nil {
		if f.cfg.Forwarder == nil {
			// The root of the tier is its own global: its digests and
			// sets join every host's in one fleet series.
			fl.Import(intervalStart, f.cfg.Interval, flushed.Forward)
			flushed.Forward = nil
		}
		var points []metric.Point
		var forward []metric.Series
		if s, ok := fl.(Settler); ok {
			points, forward, settled = s.FlushSettle(now, f.cfg.Interval)
		} else {
			points, forward = fl.Flush(now, f.cfg.Interval)
		}
		flushed.Points = append(flushed.Points, points...)
		// The merged state goes first: of a gauge, the forwarder keeps the
		// later value, and this instance's own was set an interval later.
		flushed.Forward = append(forward, flushed.Forward...)
	}
	f.pointsFlushed.Add(uint64(len(flushed.Points)))
	// The last output to finish hands the points back, and settles the
	// fleet's windows; an output that skips the interval never sees them.
	var running atomic.Int32
	running.Add(1) // the loop's own hold, released after it
	release := func() {
		if running.Add(-1) == 0 {
			f.cfg.Aggregator.Recycle(flushed.Points)
			if settled != nil {
				settled()
			}
		}
	}
	defer release()
	for _, o := range f.outputs {
		if !final && !tryAcquire(o.busy) {
			o.skipped.Inc()
			if o.whileBusy != nil {
				o.whileBusy(&flushed, intervalStart)
				f.cfg.Log.Warn("output still busy with the previous interval; holding this one for the next", "output", o.name)
				continue
			}
			f.cfg.Log.Warn("output still flushing the previous interval; skipping this one", "output", o.name)
			continue
		}
		f.inFlight.Add(1)
		running.Add(1)
		go func() {
			defer f.inFlight.Done()
			defer release()
			octx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			if final {
				select {
				case o.busy <- struct{}{}:
				case <-octx.Done():
					o.skipped.Inc()
					f.cfg.Log.Warn("output still flushing the previous interval at the shutdown deadline; final interval not sent", "output", o.name)
					return
				}
			}
			defer func() { <-o.busy }()
			if err := o.safeRun(octx, &flushed, intervalStart); err != nil {
				o.errors.Inc()
				f.cfg.Log.Error("flush failed", "output", o.name, "error", err)
			}
		}()
	}
	f.flushDuration.Since(start)
}

// safeRun runs the output, turning a panic into an error: a sink with a
// bug loses its interval, counted in flush.panics, and neither ingestion
// nor the other outputs notice.
func (o *output) safeRun(ctx context.Context, fl *aggregate.Flushed, start time.Time) (err error) {
	defer func() {
		if p := recover(); p != nil {
			o.panics.Inc()
			err = fmt.Errorf("output panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return o.run(ctx, fl, start)
}

// tryAcquire puts a token in busy if there is room.
func tryAcquire(busy chan struct{}) bool {
	select {
	case busy <- struct{}{}:
		return true
	default:
		return false
	}
}
