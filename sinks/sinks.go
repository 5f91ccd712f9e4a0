// Package sinks defines where flushed metrics go (Sink, EventSink) and the
// hygiene a metric_sinks entry applies in front of its sink (WithHygiene).
// Each kind lives in its own package below this one (sinks/console,
// sinks/datadog, sinks/prometheus); package config lists the kinds and
// builds them.
package sinks

import (
	"context"

	"github.com/veneur-lite/veneur-lite/metric"
)

// Sink receives the points of each flushed interval. Flush is called once
// per interval from its own goroutine with a context that expires before the
// next interval; a slow sink only delays itself. Flush must not keep
// points, or use them, after it returns: the flusher hands the array back
// to the aggregator to fill with a later interval.
type Sink interface {
	Name() string
	Flush(ctx context.Context, points []metric.Point) error
}

// EventSink is implemented by sinks that also deliver DogStatsD events and
// service checks. The flusher finds it by type assertion.
type EventSink interface {
	FlushEvents(ctx context.Context, events []metric.Event, checks []metric.ServiceCheck) error
}

// SketchSink is implemented by sinks that ship d series as the Datadog
// Agent's sketches (the Datadog sink). Such a sink leaves out the points
// marked metric.Point.Distribution: the sketch carries them. The flusher
// finds it by type assertion and calls FlushSketches after Flush, from the
// same goroutine, with the same context.
type SketchSink interface {
	FlushSketches(ctx context.Context, sketches []metric.SketchPoint) error
}
