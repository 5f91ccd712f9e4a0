package cardinality

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

// TestAdmitAndCount: new series are admitted up to the bounds, in all and
// per name; series already held always count; a refusal leaves the counts
// as they were.
func TestAdmitAndCount(t *testing.T) {
	l := New(Config{MaxSeries: 3, MaxSeriesPerName: 2})
	iv := l.NewInterval()
	for i, want := range []struct {
		name   string
		ok     bool
		reason Reason
	}{
		{"a", true, 0}, {"a", true, 0}, {"a", false, MaxSeriesPerName}, {"b", true, 0}, {"c", false, MaxSeries},
	} {
		ok, reason := iv.Admit(want.name)
		if ok != want.ok || (!ok && reason != want.reason) {
			t.Errorf("admit %d (%s): %v %v, want %v %v", i, want.name, ok, reason, want.ok, want.reason)
		}
	}
	iv.Count("c") // held over: counted past the bound
	if n := iv.Live(); n != 4 {
		t.Errorf("live %d, want 4", n)
	}
	if ok, _ := l.NewInterval().Admit("c"); !ok {
		t.Error("a new interval starts from zero")
	}
}

// TestConcurrentAdmitNeverExceeds: however many goroutines admit at once,
// the bound holds exactly.
func TestConcurrentAdmitNeverExceeds(t *testing.T) {
	l := New(Config{MaxSeries: 1000})
	iv := l.NewInterval()
	var admitted sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for g := range 8 {
		admitted.Go(func() {
			for i := range 500 {
				if ok, _ := iv.Admit(fmt.Sprintf("n%d-%d", g, i)); ok {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}
		})
	}
	admitted.Wait()
	if got != 1000 || iv.Live() != 1000 {
		t.Errorf("admitted %d (live %d), want exactly 1000", got, iv.Live())
	}
}

// TestEndReportsShedding: End puts an interval's shed samples into the
// per-name self-metrics and one log line naming the top names, throttled;
// per-name counters stop growing at maxNamedCounters.
func TestEndReportsShedding(t *testing.T) {
	reg := telemetry.NewRegistry()
	var logs bytes.Buffer
	l := New(Config{MaxSeries: 1, Scope: "local", Stats: reg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	now := time.Unix(1_700_000_000, 0)
	iv := l.NewInterval()
	iv.Shed(MaxSeries, "runaway", 90)
	iv.Shed(MaxSeries, "other,name", 10)
	l.End(iv, now)
	if n := reg.Counter("cardinality.samples_shed", "scope:local", "reason:max_series").Load(); n != 100 {
		t.Errorf("total shed %d, want 100", n)
	}
	if n := reg.Counter("cardinality.samples_shed_by_name", "scope:local", "reason:max_series", "metric:runaway").Load(); n != 90 {
		t.Errorf("shed for runaway %d, want 90", n)
	}
	if n := reg.Counter("cardinality.samples_shed_by_name", "scope:local", "reason:max_series", "metric:other_name").Load(); n != 10 {
		t.Errorf("shed for other,name %d, want 10 (the comma made safe)", n)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 || !strings.Contains(logs.String(), "runaway") {
		t.Fatalf("log:\n%s", logs.String())
	}

	// Within logEvery: counted, not logged; after it, logged with the sum.
	iv = l.NewInterval()
	iv.Shed(MaxSeries, "runaway", 5)
	l.End(iv, now.Add(time.Second))
	iv = l.NewInterval()
	iv.Shed(MaxSeries, "runaway", 7)
	l.End(iv, now.Add(logEvery+time.Second))
	if lines := strings.Split(strings.TrimSpace(logs.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "shed_samples=12") {
		t.Errorf("throttled log:\n%s", logs.String())
	}

	iv = l.NewInterval()
	for i := range maxNamedCounters + 50 {
		iv.Shed(MaxSeries, fmt.Sprintf("flood%d", i), 1)
	}
	l.End(iv, now.Add(time.Hour))
	if len(l.named) > maxNamedCounters+1 {
		t.Errorf("%d per-name counters, want at most %d and one for other", len(l.named), maxNamedCounters)
	}
}
