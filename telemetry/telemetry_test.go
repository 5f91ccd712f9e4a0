package telemetry

import (
	"slices"
	"strconv"
	"testing"
)

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
	r := NewRegistry()
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
	r := NewRegistry()
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
