// Package telemetry holds veneur-lite's measurements of itself (packets
// received, parse errors by reason, flush durations, sink and forward
// requests) and turns them into ordinary samples once per interval, so they
// flow through the process's own pipeline as veneur.* metrics tagged
// veneur_internal_metric:true.
//
// Every self-metric is declared once, in Catalog: the registry hands out
// only what it lists. Counters, gauges and histograms are plain atomics:
// components bump them on their hot paths without locks or allocation, and
// the registry is read only at flush and by /metrics.
package telemetry

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// InternalTag marks every self-metric.
const InternalTag = "veneur_internal_metric:true"

// Counter is a monotonically increasing count. The zero value and a nil
// *Counter are usable (a nil one counts nothing).
type Counter struct {
	v    atomic.Uint64
	last uint64 // value at the previous Collect; guarded by Registry.mu
	name []byte
	tags []byte
	spec *Spec
}

// Add adds n.
func (c *Counter) Add(n uint64) {
	if c != nil {
		c.v.Add(n)
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Load returns the total counted so far.
func (c *Counter) Load() uint64 {
	if c == nil {
		return 0
	}
	return c.v.Load()
}

// Gauge is a last-value measurement. A nil *Gauge ignores Set.
type Gauge struct {
	bits atomic.Uint64
	set  atomic.Bool
	name []byte
	tags []byte
	spec *Spec
}

// Set records v as the current value.
func (g *Gauge) Set(v float64) {
	if g != nil {
		g.bits.Store(math.Float64bits(v))
		g.set.Store(true)
	}
}

// Load returns the last value set.
func (g *Gauge) Load() float64 {
	if g == nil {
		return 0
	}
	return math.Float64frombits(g.bits.Load())
}

// Measurement returns the gauge's identity and current value, for a
// component that reports it itself rather than wait for the next Collect.
func (g *Gauge) Measurement() Measurement {
	return Measurement{Name: g.name, Tags: g.tags, Value: g.Load()}
}

// Registry owns a process's counters, gauges and histograms. A nil
// *Registry hands out nil metrics, so components can be built without one
// in tests.
type Registry struct {
	specs      map[string]*Spec
	mu         sync.Mutex
	counters   map[string]*Counter
	gauges     map[string]*Gauge
	histograms map[string]*Histogram
}

// NewRegistry returns an empty registry of the metrics in Catalog.
func NewRegistry() *Registry { return newRegistry(catalogIndex) }

// NewRegistryOf returns an empty registry of the given metrics instead of
// Catalog's, for tests of the registry's users.
func NewRegistryOf(specs []Spec) *Registry { return newRegistry(indexSpecs(specs)) }

func newRegistry(specs map[string]*Spec) *Registry {
	return &Registry{
		specs:      specs,
		counters:   map[string]*Counter{},
		gauges:     map[string]*Gauge{},
		histograms: map[string]*Histogram{},
	}
}

// Counter returns the counter veneur.<name> with the given tags, creating it
// on first use. Call it at setup, not per event. It panics when name is not
// a counter of the catalog or a tag's key is not one of its keys: a
// self-metric cannot exist undeclared and undocumented.
func (r *Registry) Counter(name string, tags ...string) *Counter {
	if r == nil {
		return nil
	}
	return lookupOrAdd(r, r.counters, name, KindCounter, tags, func(n, t []byte, s *Spec) *Counter {
		return &Counter{name: n, tags: t, spec: s}
	})
}

// Gauge returns the gauge veneur.<name> with the given tags, creating it on
// first use. It panics as Counter does.
func (r *Registry) Gauge(name string, tags ...string) *Gauge {
	if r == nil {
		return nil
	}
	return lookupOrAdd(r, r.gauges, name, KindGauge, tags, func(n, t []byte, s *Spec) *Gauge {
		return &Gauge{name: n, tags: t, spec: s}
	})
}

// Histogram returns the histogram veneur.<name> with the given tags,
// creating it on first use. It panics as Counter does.
func (r *Registry) Histogram(name string, tags ...string) *Histogram {
	if r == nil {
		return nil
	}
	return lookupOrAdd(r, r.histograms, name, KindHistogram, tags, newHistogram)
}

// lookupOrAdd returns the metric of name and tags in m, made by add on
// first use once the catalog allows it.
func lookupOrAdd[M any](r *Registry, m map[string]*M, name string, kind Kind, tags []string, add func(name, tags []byte, s *Spec) *M) *M {
	spec := r.spec(name, kind, tags)
	n, t, key := identity(name, tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := m[key]
	if !ok {
		v = add(n, t, spec)
		m[key] = v
	}
	return v
}

// spec checks name, kind and tag keys against the registry's catalog.
func (r *Registry) spec(name string, kind Kind, tags []string) *Spec {
	s, ok := r.specs[name]
	if !ok {
		panic(fmt.Sprintf("telemetry: veneur.%s is not in the catalog: declare it in telemetry/catalog.go and document it in docs/output.md", name))
	}
	if s.Kind != kind {
		panic(fmt.Sprintf("telemetry: veneur.%s is a %v in the catalog, registered as a %v", name, s.Kind, kind))
	}
	for _, tag := range tags {
		k, _, _ := strings.Cut(tag, ":")
		if !slices.Contains(s.Tags, k) {
			panic(fmt.Sprintf("telemetry: veneur.%s has no tag key %q in the catalog (keys %v)", name, k, s.Tags))
		}
	}
	return s
}

func identity(name string, tags []string) (n, t []byte, key string) {
	all := append([]string{InternalTag}, tags...)
	sort.Strings(all)
	n = []byte("veneur." + name)
	t = []byte(strings.Join(all, ","))
	return n, t, string(n) + "|" + string(t)
}

// Measurement is one self-metric value read at flush time. Name and Tags
// (comma-separated, sorted) stay owned by the registry: read-only.
type Measurement struct {
	Name, Tags []byte
	Value      float64
	// Counter is true for a counter: Value is its increase since the
	// previous Collect, or its total for Visit. It is false for a gauge's
	// current value.
	Counter bool
	// Spec is the catalog row the value belongs to. For the three series a
	// histogram flushes as, it is the histogram's row.
	Spec *Spec
	// Histogram is set by Visit for a histogram, whose Value is then the
	// sum of its observations.
	Histogram *HistogramSnapshot
}

// Collect calls emit once per counter that moved since the previous Collect
// (with its increase), once per gauge that was ever set, and, for each
// histogram observed since the previous Collect, three times: <name>.count
// and <name>.sum as counters (increases of the number of observations and
// of their sum) and <name>.max as a gauge (the interval's largest
// observation). What did not move is left out: no zeros, as for any series.
func (r *Registry) Collect(emit func(Measurement)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.counters {
		now := c.v.Load()
		if now == c.last {
			continue
		}
		emit(Measurement{Name: c.name, Tags: c.tags, Value: float64(now - c.last), Counter: true, Spec: c.spec})
		c.last = now
	}
	for _, g := range r.gauges {
		if g.set.Load() {
			emit(Measurement{Name: g.name, Tags: g.tags, Value: g.Load(), Spec: g.spec})
		}
	}
	for _, h := range r.histograms {
		h.collect(emit)
	}
}

// Visit calls visit once per counter, with its total since the registry
// was made, once per gauge that was ever set, and once per histogram with
// its buckets: counters first, then gauges, then histograms, each in no
// particular order. Unlike Collect it changes nothing, so reading the
// totals (for /metrics) never disturbs the increases that Collect reports
// to the flush. visit runs with the registry locked: it must not call back
// into it.
func (r *Registry) Visit(visit func(Measurement)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.counters {
		visit(Measurement{Name: c.name, Tags: c.tags, Value: float64(c.v.Load()), Counter: true, Spec: c.spec})
	}
	for _, g := range r.gauges {
		if g.set.Load() {
			visit(Measurement{Name: g.name, Tags: g.tags, Value: g.Load(), Spec: g.spec})
		}
	}
	for _, h := range r.histograms {
		snap := h.Snapshot()
		visit(Measurement{Name: h.name, Tags: h.tags, Value: snap.Sum, Spec: h.spec, Histogram: &snap})
	}
}
