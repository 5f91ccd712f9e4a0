package sinks

import (
	"context"
	"slices"
	"strings"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Hygiene is what one sink's metric_sinks entry asks of the points it
// gets, with Veneur's keys: tags taken out and added, and limits on name
// length, tag length and tag count that backends enforce by refusing the
// whole request. Zero limits mean none.
type Hygiene struct {
	// MaxNameLength drops a point whose name is longer (in bytes).
	MaxNameLength int `yaml:"max_name_length"`
	// MaxTagLength drops a point with a longer tag (in bytes).
	MaxTagLength int `yaml:"max_tag_length"`
	// MaxTags drops a point with more tags.
	MaxTags int `yaml:"max_tags"`
	// StripTags removes tags by key ("env" takes out "env" and "env:…"),
	// or by prefix with a trailing '*' ("dd.*").
	StripTags []string `yaml:"strip_tags"`
	// AddTags adds tags to every point, replacing a tag of the same key.
	AddTags []string `yaml:"add_tags"`
}

// IsZero reports whether h changes nothing.
func (h Hygiene) IsZero() bool {
	return h.MaxNameLength == 0 && h.MaxTagLength == 0 && h.MaxTags == 0 && len(h.StripTags) == 0 && len(h.AddTags) == 0
}

// Drop reasons of WithHygiene's sink.points_dropped counter.
const (
	dropNameTooLong = iota
	dropTagTooLong
	dropTooManyTags
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"name_too_long", "tag_too_long", "too_many_tags"}

// WithHygiene returns s with h applied to every flush's points: a point
// beyond a limit is dropped (truncating would merge distinct series into
// one at the backend) and counted as sink.points_dropped{sink,reason}.
// Events and service checks pass through unchanged. A zero h returns s.
func WithHygiene(s Sink, h Hygiene, reg *telemetry.Registry) Sink {
	if h.IsZero() {
		return s
	}
	f := &hygienic{Sink: s, h: h, addKeys: make([]string, len(h.AddTags))}
	for i, tag := range h.AddTags {
		f.addKeys[i], _, _ = strings.Cut(tag, ":")
	}
	slices.Sort(f.h.AddTags)
	for r := range numDropReasons {
		f.dropped[r] = reg.Counter("sink.points_dropped", "sink:"+s.Name(), "reason:"+dropReasonNames[r])
	}
	es, hasEvents := s.(EventSink)
	ss, hasSketches := s.(SketchSink)
	switch {
	case hasEvents && hasSketches:
		return &hygienicEventsSketches{hygienicEvents{hygienic: f, events: es}, ss}
	case hasEvents:
		return &hygienicEvents{hygienic: f, events: es}
	case hasSketches:
		return &hygienicSketches{hygienic: f, sketches: ss}
	}
	return f
}

type hygienic struct {
	Sink
	h       Hygiene
	addKeys []string
	dropped [numDropReasons]*telemetry.Counter
}

// hygienicEvents is a hygienic sink that also takes events.
type hygienicEvents struct {
	*hygienic
	events EventSink
}

func (f *hygienicEvents) FlushEvents(ctx context.Context, events []metric.Event, checks []metric.ServiceCheck) error {
	return f.events.FlushEvents(ctx, events, checks)
}

// hygienicSketches is a hygienic sink that also takes sketches.
type hygienicSketches struct {
	*hygienic
	sketches SketchSink
}

func (f *hygienicSketches) FlushSketches(ctx context.Context, sketches []metric.SketchPoint) error {
	return f.flushSketches(ctx, f.sketches, sketches)
}

// hygienicEventsSketches takes both (the Datadog sink).
type hygienicEventsSketches struct {
	hygienicEvents
	sketches SketchSink
}

func (f *hygienicEventsSketches) FlushSketches(ctx context.Context, sketches []metric.SketchPoint) error {
	return f.flushSketches(ctx, f.sketches, sketches)
}

// flushSketches applies the hygiene to sketches as to points: tags
// rewritten, the ones over a limit dropped and counted.
func (f *hygienic) flushSketches(ctx context.Context, to SketchSink, sketches []metric.SketchPoint) error {
	kept := make([]metric.SketchPoint, 0, len(sketches))
	var arena []string
	var dropped [numDropReasons]uint64
	for _, sp := range sketches {
		arena, sp.Tags = f.retag(arena, sp.Tags)
		if reason := f.check(&metric.Point{Name: sp.Name, Tags: sp.Tags}); reason >= 0 {
			dropped[reason]++
			continue
		}
		kept = append(kept, sp)
	}
	f.countDropped(dropped)
	return to.FlushSketches(ctx, kept)
}

// retag returns tags rewritten by strip_tags and add_tags, carved from
// arena, or tags itself when there are none.
func (f *hygienic) retag(arena, tags []string) ([]string, []string) {
	if len(f.h.StripTags) == 0 && len(f.h.AddTags) == 0 {
		return arena, tags
	}
	start := len(arena)
	arena = f.rewrite(arena, tags)
	return arena, arena[start:len(arena):len(arena)]
}

func (f *hygienic) countDropped(dropped [numDropReasons]uint64) {
	for r, n := range dropped {
		if n > 0 {
			f.dropped[r].Add(n)
		}
	}
}

// Flush applies the hygiene to a copy of points (other sinks get the same
// slice) and hands the kept ones on.
func (f *hygienic) Flush(ctx context.Context, points []metric.Point) error {
	kept := make([]metric.Point, 0, len(points))
	var arena []string // every rewritten tag list, carved from one array
	var dropped [numDropReasons]uint64
	for _, p := range points {
		arena, p.Tags = f.retag(arena, p.Tags)
		switch reason := f.check(&p); reason {
		case -1:
			kept = append(kept, p)
		default:
			dropped[reason]++
		}
	}
	f.countDropped(dropped)
	return f.Sink.Flush(ctx, kept)
}

// rewrite appends tags without the stripped ones and with the added ones,
// sorted, to arena.
func (f *hygienic) rewrite(arena, tags []string) []string {
	start := len(arena)
	for _, tag := range tags {
		if !f.stripped(tag) && !f.replaced(tag) {
			arena = append(arena, tag)
		}
	}
	arena = append(arena, f.h.AddTags...)
	slices.Sort(arena[start:])
	return arena
}

func (f *hygienic) stripped(tag string) bool {
	key, _, _ := strings.Cut(tag, ":")
	for _, s := range f.h.StripTags {
		if prefix, ok := strings.CutSuffix(s, "*"); ok {
			if strings.HasPrefix(tag, prefix) {
				return true
			}
		} else if key == s {
			return true
		}
	}
	return false
}

func (f *hygienic) replaced(tag string) bool {
	key, _, _ := strings.Cut(tag, ":")
	return slices.Contains(f.addKeys, key)
}

// check returns why p must be dropped, or -1.
func (f *hygienic) check(p *metric.Point) int {
	switch {
	case f.h.MaxNameLength > 0 && len(p.Name) > f.h.MaxNameLength:
		return dropNameTooLong
	case f.h.MaxTags > 0 && len(p.Tags) > f.h.MaxTags:
		return dropTooManyTags
	}
	if f.h.MaxTagLength > 0 {
		for _, tag := range p.Tags {
			if len(tag) > f.h.MaxTagLength {
				return dropTagTooLong
			}
		}
	}
	return -1
}
