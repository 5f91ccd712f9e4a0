package aggregate

import (
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/metric"
)

// Flushed is the output of one interval.
type Flushed struct {
	// Points are the series this instance flushes itself, in no
	// particular order. The points of one series come one after the
	// other and share one Tags slice, which they may share with Forward
	// and later intervals: treat Tags as read-only. Once every consumer is
	// done with Points, Aggregator.Recycle may take the array back.
	Points []metric.Point
	// Forward is the mergeable state of the series that go to the global
	// tier (docs/output.md): histogram digests and sets not marked
	// veneurlocalonly, counters and gauges marked veneurglobalonly. The
	// receiver owns the digests and sketches.
	Forward []metric.Series
	// Sketches are the d series' Datadog Agent sketches, one per series
	// with this instance's host, for sinks that ship sketches
	// (sinks.SketchSink); their points above are marked Distribution.
	Sketches []metric.SketchPoint
	Events   []metric.Event
	Checks   []metric.ServiceCheck
}

// Flush ends the current interval and returns what it produced.
//
// Each shard hands over its series under its lock (a copy per series), so
// Push goes on into the next interval at once; the points are then
// computed outside the locks, shards in parallel. now is the flush time
// (every Point.Timestamp is now.Unix()) and interval the length of the
// interval that ends, over which counters become rates; a non-positive
// interval is taken as one second.
//
// Series with no samples in the interval are not flushed.
func (a *Aggregator) Flush(now time.Time, interval time.Duration) Flushed {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()

	stamp := metric.Stamp{Timestamp: now.Unix(), Interval: interval}
	// Shards are taken and turned into points in groups, one goroutine per
	// group; each group's output is counted first, so the whole output is
	// allocated once and each group fills its own window of it.
	groups := min(a.workers, len(a.shards))
	// Each shard moves to the next interval's limits as it is taken, so a
	// sample is counted in the interval it is flushed with.
	next := a.limit.NewInterval()
	results := make([]groupFlush, groups)
	var g errgroup.Group
	for gi := range results {
		g.Go(func() error {
			res := &results[gi]
			for si := gi; si < len(a.shards); si += groups {
				res.taken = a.shards[si].take(res.taken, next)
			}
			for _, t := range res.taken {
				res.points += a.localPoints(t.meta.kind, t.meta.forward)
				if t.meta.forward {
					res.forward++
				}
			}
			return nil
		})
	}
	_ = g.Wait() // take cannot fail
	// The next interval counts from zero: its limits admit anew, while
	// every series held over counts at its first sample.
	a.limit.End(a.interval.Swap(next), now)
	a.intervalStart.Store(now.UnixNano())

	var totalPoints, totalForward int
	for i := range results {
		totalPoints += results[i].points
		totalForward += results[i].forward
	}
	out := Flushed{
		Points:  a.pointsArray(totalPoints),
		Forward: make([]metric.Series, 0, totalForward),
	}
	pointOff, forwardOff := 0, 0
	for gi := range results {
		res := &results[gi]
		// Full slice expressions: each group appends within its window.
		pts := out.Points[pointOff : pointOff : pointOff+res.points]
		fwd := out.Forward[forwardOff : forwardOff : forwardOff+res.forward]
		pointOff += res.points
		forwardOff += res.forward
		g.Go(func() error {
			for _, t := range res.taken {
				res.byKind[t.meta.kind]++
				pts, fwd = a.flushOne(pts, fwd, &t, stamp)
				if t.hist != nil && t.hist.dist != nil {
					m := t.meta
					res.sketches = append(res.sketches, metric.SketchPoint{
						Name: m.name, Tags: m.tags, Host: m.host, Timestamp: stamp.Timestamp, Sketch: t.hist.dist})
				}
			}
			return nil
		})
	}
	_ = g.Wait() // flushOne cannot fail
	out.Points = out.Points[:totalPoints]
	out.Forward = out.Forward[:totalForward]
	for i := range results {
		out.Sketches = append(out.Sketches, results[i].sketches...)
	}

	out.Events, out.Checks = a.takeEvents()
	for i := range results {
		for k, n := range results[i].byKind {
			if n > 0 {
				a.stats.seriesFlushed[k].Add(n)
			}
		}
	}
	return out
}

// ReportLiveSeries sets veneur.cardinality.live_series{scope:local} to the
// series of the interval under way, the process's own measurements
// included, and pushes it into that interval. Called after the other
// measurements are pushed and just before Flush, it makes the flush that
// carries new series report them, rather than the flush after it (the
// gauge's last value in an interval wins). The gauge's own series is made
// live first, so that it counts itself.
func (a *Aggregator) ReportLiveSeries() {
	g := a.limit.LiveGauge()
	if g == nil {
		return
	}
	m := g.Measurement()
	s := []metric.Sample{{Name: m.Name, Tags: m.Tags, Rate: 1, Kind: metric.Gauge, Value: m.Value}}
	a.Push(s)
	g.Set(float64(a.interval.Load().Live()))
	s[0].Value = g.Load()
	a.Push(s)
}

// pointsArray returns an empty slice with room for n points: the spare
// one if it is large enough, else a new one with room to grow, so that an
// instance whose series hold steady fills the same array interval after
// interval instead of allocating (and the collector scanning) a new one
// of ~100 bytes per point.
func (a *Aggregator) pointsArray(n int) []metric.Point {
	if spare := a.spare.Swap(nil); spare != nil && cap(*spare) >= n {
		return (*spare)[:0]
	}
	return make([]metric.Point, 0, n+n/8)
}

// Recycle hands back the Points of a Flushed once nothing uses them any
// more (every sink has returned), for a later Flush to fill. Optional: a
// Flushed that is never recycled is collected as garbage.
func (a *Aggregator) Recycle(points []metric.Point) {
	points = points[:cap(points)]
	if len(points) == 0 {
		return
	}
	// Until it is filled again, the array must not keep the last
	// interval's names and tags alive.
	clear(points)
	points = points[:0]
	a.spare.Store(&points)
}

// groupFlush is one group of shards' output.
type groupFlush struct {
	taken           []taken
	points, forward int               // what taken will produce
	byKind          [kindCount]uint64 // series flushed, by kind
	sketches        []metric.SketchPoint
}

// flushOne appends one series' points and forwarded state.
func (a *Aggregator) flushOne(pts []metric.Point, fwd []metric.Series, t *taken, stamp metric.Stamp) ([]metric.Point, []metric.Series) {
	m := t.meta
	if m.forward {
		fwd = append(fwd, forwardSeries(t))
	}
	if a.localPoints(m.kind, m.forward) == 0 {
		return pts, fwd
	}
	base := metric.Point{Name: m.name, Tags: m.tags, Host: m.host, Distribution: m.kind == metric.Distribution}
	if m.kind.IsHistogram() {
		return a.appendHistogramPoints(pts, m, t.hist, base, stamp), fwd
	}
	return append(pts, stamp.ScalarPoint(base, m.kind, t.value, t.set)), fwd
}

// appendHistogramPoints appends a histogram's aggregates and, unless its
// digest is forwarded, its percentiles.
func (a *Aggregator) appendHistogramPoints(dst []metric.Point, m *meta, h *histogram, base metric.Point, stamp metric.Stamp) []metric.Point {
	names := m.names
	for _, g := range a.aggregates {
		n := len(m.name) + 1 + len(g.String())
		pt := base
		pt.Name, names = names[:n], names[n:]
		var v float64
		switch g {
		case AggMin:
			v = h.min()
		case AggMax:
			v = h.max()
		case AggCount: // goes out like a counter (docs/output.md)
			dst = append(dst, stamp.Rate(pt, h.count()))
			continue
		case AggSum:
			v = h.sum
		case AggAvg:
			v = h.avg()
		case AggMedian:
			v = h.Quantile(0.5)
		}
		dst = append(dst, stamp.Gauge(pt, v))
	}
	dst, names = a.hostPercentiles.AppendPoints(dst, stamp, base, h, names)
	if !m.forward {
		dst, _ = a.percentiles.AppendPoints(dst, stamp, base, h, names)
	}
	return dst
}

// histogramNames returns name.<aggregate>…, name.<host percentile>… then,
// if asked, name.<percentile>…
// back to back in one string, which appendHistogramPoints cuts up: one
// allocation per series for all its point names, made when the series is.
func (a *Aggregator) histogramNames(name string, withPercentiles bool) string {
	size := 0
	for _, g := range a.aggregates {
		size += len(name) + 1 + len(g.String())
	}
	size += a.hostPercentiles.NamesLen(name)
	if withPercentiles {
		size += a.percentiles.NamesLen(name)
	}
	var b strings.Builder
	b.Grow(size)
	for _, g := range a.aggregates {
		b.WriteString(name)
		b.WriteByte('.')
		b.WriteString(g.String())
	}
	a.hostPercentiles.AppendNames(&b, name)
	if withPercentiles {
		a.percentiles.AppendNames(&b, name)
	}
	return b.String()
}

// forwardSeries hands a series' mergeable state to the global tier; the
// shard let go of it in take, so nothing is copied.
func forwardSeries(t *taken) metric.Series {
	m := t.meta
	fs := metric.Series{Key: m.key[:m.fleetLen], Name: m.name, Tags: m.tags, Kind: m.kind}
	switch {
	case m.kind == metric.Distribution:
		fs.Dist = t.hist.dist
	case m.kind.IsHistogram():
		fs.Digest = &t.hist.digest
	case m.kind == metric.Set:
		fs.Set = t.set
	default:
		fs.Value = t.value
	}
	return fs
}

// takeEvents empties the event and check queues and fills in the host and
// extend tags.
func (a *Aggregator) takeEvents() ([]metric.Event, []metric.ServiceCheck) {
	a.eventsMu.Lock()
	events, checks := a.events, a.checks
	a.events, a.checks = nil, nil
	a.eventsMu.Unlock()

	for i := range events {
		ev := &events[i]
		if !ev.HostSet { // a line that named a host keeps it, an empty one too
			ev.Hostname = a.hostname
		}
		ev.Tags = a.eventTags(ev.Tags)
	}
	for i := range checks {
		c := &checks[i]
		if !c.HostSet {
			c.Hostname = a.hostname
		}
		c.Tags = a.eventTags(c.Tags)
	}
	return events, checks
}
