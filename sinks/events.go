package sinks

import (
	"context"

	"github.com/veneur-lite/veneur-lite/metric"
)

// EventSelection says which of an interval's events and service checks
// an EventSink is handed: metric_sinks[].send_events and
// send_service_checks. A receiver without an events endpoint (or one that
// discards service checks) is then not asked, and fails no interval.
type EventSelection struct {
	Events, ServiceChecks bool
}

// EventSelector is implemented by a sink that takes only the kinds its
// selection names. The flusher finds it by type assertion and hands the
// sink nothing else.
type EventSelector interface {
	EventSelection() EventSelection
}

// SelectEvents returns s carrying sel, for the flusher, with the optional
// interfaces s has (EventSink, SketchSink). A sink that takes both kinds,
// or that takes no events at all, is returned as it is.
func SelectEvents(s Sink, sel EventSelection) Sink {
	es, ok := s.(EventSink)
	if !ok || sel == (EventSelection{Events: true, ServiceChecks: true}) {
		return s
	}
	sel2 := &selective{Sink: s, events: es, sel: sel}
	if ss, ok := s.(SketchSink); ok {
		return &selectiveSketches{selective: sel2, sketches: ss}
	}
	return sel2
}

// selectiveSketches is a selective sink that also ships sketches.
type selectiveSketches struct {
	*selective
	sketches SketchSink
}

func (s *selectiveSketches) FlushSketches(ctx context.Context, sketches []metric.SketchPoint) error {
	return s.sketches.FlushSketches(ctx, sketches)
}

type selective struct {
	Sink
	events EventSink
	sel    EventSelection
}

func (s *selective) EventSelection() EventSelection { return s.sel }

func (s *selective) FlushEvents(ctx context.Context, events []metric.Event, checks []metric.ServiceCheck) error {
	return s.events.FlushEvents(ctx, events, checks)
}
