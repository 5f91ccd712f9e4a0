package telemetry

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSpecs declare the metrics these tests register.
var testSpecs = []Spec{
	{"packets", KindCounter, []string{"protocol", "a"}, "Packets."},
	{"depth", KindGauge, nil, "Depth."},
	{"never", KindGauge, nil, "Never set."},
	{"wait_seconds", KindHistogram, []string{"stage"}, "Waits."},
}

func collect(r *Registry) []string {
	var out []string
	r.Collect(func(m Measurement) {
		kind := "gauge"
		if m.Counter {
			kind = "counter"
		}
		out = append(out, string(m.Name)+"|"+string(m.Tags)+"|"+kind+"|"+strconv.FormatFloat(m.Value, 'g', -1, 64))
	})
	slices.Sort(out)
	return out
}

// Counters report their increase since the previous Collect, and only when
// they moved; gauges their last value once set; identity ignores tag order.
func TestCollect(t *testing.T) {
	r := NewRegistryOf(testSpecs)
	c := r.Counter("packets", "protocol:udp", "a:b")
	if r.Counter("packets", "a:b", "protocol:udp") != c {
		t.Fatal("same name and tags in another order gave another counter")
	}
	g := r.Gauge("depth")
	r.Gauge("never") // registered, never set: not reported
	c.Add(5)
	g.Set(3)
	want := []string{
		"veneur.depth|veneur_internal_metric:true|gauge|3",
		"veneur.packets|a:b,protocol:udp,veneur_internal_metric:true|counter|5",
	}
	if got := collect(r); !slices.Equal(got, want) {
		t.Errorf("first collect\n got %v\nwant %v", got, want)
	}
	c.Add(2)
	want = []string{
		"veneur.depth|veneur_internal_metric:true|gauge|3",
		"veneur.packets|a:b,protocol:udp,veneur_internal_metric:true|counter|2",
	}
	if got := collect(r); !slices.Equal(got, want) {
		t.Errorf("second collect\n got %v\nwant %v", got, want)
	}
	want = []string{"veneur.depth|veneur_internal_metric:true|gauge|3"}
	if got := collect(r); !slices.Equal(got, want) {
		t.Errorf("unmoved counter still reported: %v", got)
	}
	if c.Load() != 7 {
		t.Errorf("Load = %d, want 7", c.Load())
	}
}

// A nil registry hands out nil metrics that ignore updates, so components
// need no registry in tests.
func TestNilRegistry(t *testing.T) {
	var r *Registry
	c := r.Counter("x")
	g := r.Gauge("y")
	c.Inc()
	g.Set(1)
	if c.Load() != 0 || g.Load() != 0 {
		t.Error("nil metrics recorded something")
	}
	r.Collect(func(Measurement) { t.Error("nil registry emitted") })
}

// Visit reports counter totals and leaves Collect's increases alone: a
// /metrics scrape between two flushes must not eat the second flush's delta.
func TestVisitDoesNotDisturbCollect(t *testing.T) {
	r := NewRegistryOf(testSpecs)
	c := r.Counter("packets", "protocol:udp")
	g := r.Gauge("depth")
	r.Gauge("never")
	c.Add(5)
	g.Set(1.5)
	visit := func() []string {
		var out []string
		r.Visit(func(m Measurement) {
			out = append(out, string(m.Name)+"|"+strconv.FormatBool(m.Counter)+"|"+strconv.FormatFloat(m.Value, 'g', -1, 64))
		})
		slices.Sort(out)
		return out
	}
	want := []string{"veneur.depth|false|1.5", "veneur.packets|true|5"}
	if got := visit(); !slices.Equal(got, want) {
		t.Errorf("visit %v, want %v", got, want)
	}
	if got := collect(r); len(got) != 2 || got[1] != "veneur.packets|protocol:udp,veneur_internal_metric:true|counter|5" {
		t.Errorf("collect after visit: %v", got)
	}
	c.Add(2)
	want = []string{"veneur.depth|false|1.5", "veneur.packets|true|7"}
	if got := visit(); !slices.Equal(got, want) {
		t.Errorf("visit after collect %v, want %v", got, want)
	}
	if got := collect(r); len(got) != 2 || got[1] != "veneur.packets|protocol:udp,veneur_internal_metric:true|counter|2" {
		t.Errorf("second collect after visits: %v", got)
	}
	var nilReg *Registry
	nilReg.Visit(func(Measurement) { t.Error("nil registry visited something") })
}

// The registry hands out only what its catalog declares, with the declared
// type and tag keys: a self-metric cannot exist undocumented.
func TestRegistryRefusesWhatTheCatalogLacks(t *testing.T) {
	r := NewRegistryOf(testSpecs)
	for _, tc := range []struct {
		name     string
		register func()
		want     string
	}{
		{"unknown name", func() { r.Counter("packetz") }, "veneur.packetz is not in the catalog"},
		{"wrong kind", func() { r.Gauge("packets") }, "veneur.packets is a counter in the catalog, registered as a gauge"},
		{"unknown tag key", func() { r.Counter("packets", "protocol:udp", "host:x") }, `veneur.packets has no tag key "host"`},
		{"histogram as gauge", func() { r.Gauge("wait_seconds") }, "is a histogram in the catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if msg, _ := p.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v, want one containing %q", p, tc.want)
				}
			}()
			tc.register()
		})
	}
	// The process's registry knows the catalog.
	NewRegistry().Counter("listener.packets_received", "protocol:udp")
}

// A histogram counts each observation in the first bucket whose bound it
// does not exceed, and flushes its interval as .count and .sum increases
// and the interval's .max; an interval without observations flushes
// nothing.
func TestHistogram(t *testing.T) {
	r := NewRegistryOf(testSpecs)
	h := r.Histogram("wait_seconds", "stage:decode")
	if r.Histogram("wait_seconds", "stage:decode") != h {
		t.Fatal("same histogram registered twice")
	}
	for _, v := range []float64{0.001, 0.0011, 0.3, 100, -1} {
		h.Observe(v)
	}
	h.ObserveDuration(2 * time.Millisecond)
	snap := h.Snapshot()
	if snap.Count != 6 || math.Abs(snap.Sum-100.3041) > 1e-9 {
		t.Errorf("count %d sum %v", snap.Count, snap.Sum)
	}
	// Bounds 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 ...: -1 (as 0)
	// and 0.001 in the first, 0.0011 and 0.002 in the second, 0.3 ≤ 0.5,
	// 100 only in +Inf.
	wantCum := [len(Buckets)]uint64{2, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5}
	if snap.Cumulative != wantCum {
		t.Errorf("cumulative %v, want %v", snap.Cumulative, wantCum)
	}
	tags := "stage:decode,veneur_internal_metric:true"
	want := []string{
		"veneur.wait_seconds.count|" + tags + "|counter|6",
		"veneur.wait_seconds.max|" + tags + "|gauge|100",
		"veneur.wait_seconds.sum|" + tags + "|counter|" + strconv.FormatFloat(snap.Sum, 'g', -1, 64),
	}
	if got := collect(r); !slices.Equal(got, want) {
		t.Errorf("first collect\n got %v\nwant %v", got, want)
	}
	if got := collect(r); len(got) != 0 {
		t.Errorf("collect without observations: %v", got)
	}
	h.Observe(0.5)
	want = []string{
		"veneur.wait_seconds.count|" + tags + "|counter|1",
		"veneur.wait_seconds.max|" + tags + "|gauge|0.5",
		"veneur.wait_seconds.sum|" + tags + "|counter|" + strconv.FormatFloat(snap.Sum+0.5-snap.Sum, 'g', -1, 64),
	}
	if got := collect(r); !slices.Equal(got, want) {
		t.Errorf("second collect (max is the interval's)\n got %v\nwant %v", got, want)
	}
	var visited []Measurement
	r.Visit(func(m Measurement) { visited = append(visited, m) })
	if len(visited) != 1 || visited[0].Histogram == nil || visited[0].Histogram.Count != 7 || visited[0].Spec.Help != "Waits." {
		t.Errorf("visit %+v", visited)
	}
	var nilH *Histogram
	nilH.Observe(1)
	if nilH.Snapshot().Count != 0 {
		t.Error("nil histogram counted")
	}
}
