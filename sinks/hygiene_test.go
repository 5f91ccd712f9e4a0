package sinks

import (
	"context"
	"slices"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

type recordSink struct{ got []metric.Point }

func (r *recordSink) Name() string { return "rec" }
func (r *recordSink) Flush(_ context.Context, p []metric.Point) error {
	r.got = p
	return nil
}

type recordEventSink struct{ recordSink }

func (r *recordEventSink) FlushEvents(context.Context, []metric.Event, []metric.ServiceCheck) error {
	return nil
}

// TestHygiene: strip_tags and add_tags rewrite each point's tags (sorted,
// an added tag replacing one of its key) without touching the shared
// input; a point beyond a limit is dropped and counted by reason.
func TestHygiene(t *testing.T) {
	reg := telemetry.NewRegistry()
	rec := &recordSink{}
	s := WithHygiene(rec, Hygiene{
		MaxNameLength: 10, MaxTagLength: 12, MaxTags: 3,
		StripTags: []string{"pod", "dd.*"}, AddTags: []string{"team:core", "env:prod"},
	}, reg)
	shared := []string{"dd.version:1", "env:dev", "pod:web-7f9", "route:/a"}
	in := []metric.Point{
		{Name: "ok", Tags: shared},
		{Name: "a.very.long.name", Tags: []string{"x"}},
		{Name: "longtag", Tags: []string{"route:/a/very/long"}},
		{Name: "manytags", Tags: []string{"a", "b"}}, // + 2 added = 4
	}
	if err := s.Flush(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 1 || rec.got[0].Name != "ok" || !slices.Equal(rec.got[0].Tags, []string{"env:prod", "route:/a", "team:core"}) {
		t.Fatalf("kept %+v", rec.got)
	}
	if !slices.Equal(shared, []string{"dd.version:1", "env:dev", "pod:web-7f9", "route:/a"}) {
		t.Errorf("the shared input tags changed: %q", shared)
	}
	for reason, want := range map[string]uint64{"name_too_long": 1, "tag_too_long": 1, "too_many_tags": 1} {
		if n := reg.Counter("sink.points_dropped", "sink:rec", "reason:"+reason).Load(); n != want {
			t.Errorf("dropped{%s} = %d, want %d", reason, n, want)
		}
	}
	if WithHygiene(rec, Hygiene{}, reg) != Sink(rec) {
		t.Error("no hygiene should hand back the sink itself")
	}
	if _, isEvents := WithHygiene(&recordEventSink{}, Hygiene{MaxTags: 1}, reg).(EventSink); !isEvents {
		t.Error("an event sink stays one")
	}
}

type recordSketchSink struct {
	recordSink
	sketches []metric.SketchPoint
}

func (r *recordSketchSink) FlushSketches(_ context.Context, s []metric.SketchPoint) error {
	r.sketches = s
	return nil
}

// Sketches get the same hygiene as points, and a sketch sink stays one.
func TestHygieneOfSketches(t *testing.T) {
	reg := telemetry.NewRegistry()
	rec := &recordSketchSink{}
	s := WithHygiene(rec, Hygiene{MaxTags: 2, StripTags: []string{"pod"}, AddTags: []string{"env:prod"}}, reg)
	ss, ok := s.(SketchSink)
	if !ok {
		t.Fatal("a sketch sink lost its FlushSketches to the hygiene")
	}
	if err := ss.FlushSketches(context.Background(), []metric.SketchPoint{
		{Name: "ok", Tags: []string{"env:dev", "pod:a", "svc:x"}},
		{Name: "many", Tags: []string{"a", "b"}},
	}); err != nil {
		t.Fatal(err)
	}
	if len(rec.sketches) != 1 || !slices.Equal(rec.sketches[0].Tags, []string{"env:prod", "svc:x"}) {
		t.Fatalf("kept %+v", rec.sketches)
	}
	if n := reg.Counter("sink.points_dropped", "sink:rec", "reason:too_many_tags").Load(); n != 1 {
		t.Errorf("dropped %d, want 1", n)
	}
}
