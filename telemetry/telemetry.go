// Package telemetry holds veneur-lite's measurements of itself (packets
// received, parse errors by reason, flush durations, sink and forward
// requests) and turns them into ordinary samples once per interval, so they
// flow through the process's own pipeline as veneur.* metrics tagged
// veneur_internal_metric:true.
//
// Counters and gauges are plain atomics: components bump them on their hot
// paths without locks or allocation, and the registry is read only at flush.
package telemetry

import (
	"math"
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

// Registry owns a process's counters and gauges. A nil *Registry hands out
// nil metrics, so components can be built without one in tests.
type Registry struct {
	mu       sync.Mutex
	counters map[string]*Counter
	gauges   map[string]*Gauge
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{counters: map[string]*Counter{}, gauges: map[string]*Gauge{}}
}

// Counter returns the counter veneur.<name> with the given tags, creating it
// on first use. Call it at setup, not per event.
func (r *Registry) Counter(name string, tags ...string) *Counter {
	if r == nil {
		return nil
	}
	n, t, key := identity(name, tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.counters[key]
	if !ok {
		c = &Counter{name: n, tags: t}
		r.counters[key] = c
	}
	return c
}

// Gauge returns the gauge veneur.<name> with the given tags, creating it on
// first use.
func (r *Registry) Gauge(name string, tags ...string) *Gauge {
	if r == nil {
		return nil
	}
	n, t, key := identity(name, tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gauges[key]
	if !ok {
		g = &Gauge{name: n, tags: t}
		r.gauges[key] = g
	}
	return g
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
}

// Collect calls emit once per counter that moved since the previous Collect
// (with its increase) and once per gauge that was ever set. A counter that
// did not move is left out: no zeros, as for any series.
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
		emit(Measurement{Name: c.name, Tags: c.tags, Value: float64(now - c.last), Counter: true})
		c.last = now
	}
	for _, g := range r.gauges {
		if g.set.Load() {
			emit(Measurement{Name: g.name, Tags: g.tags, Value: g.Load()})
		}
	}
}

// Visit calls visit once per counter, with its total since the registry
// was made, and once per gauge that was ever set: counters first, then
// gauges, each in no particular order. Unlike Collect it changes nothing,
// so reading the totals (for /metrics) never disturbs the increases that
// Collect reports to the flush. visit runs with the registry locked: it
// must not call back into it.
func (r *Registry) Visit(visit func(Measurement)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.counters {
		visit(Measurement{Name: c.name, Tags: c.tags, Value: float64(c.v.Load()), Counter: true})
	}
	for _, g := range r.gauges {
		if g.set.Load() {
			visit(Measurement{Name: g.name, Tags: g.tags, Value: g.Load()})
		}
	}
}
