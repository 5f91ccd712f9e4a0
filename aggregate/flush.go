package aggregate

import (
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"golang.org/x/sync/errgroup"
)

// Flushed is the output of one interval.
type Flushed struct {
	// Points are the series this instance flushes itself, in no
	// particular order. The points of one series share one Tags slice,
	// and may share it with Forward: treat Tags as read-only.
	Points []metric.Point
	// Forward is the mergeable state of the series that go to the global
	// tier (SPEC §3): histogram digests and sets not marked
	// veneurlocalonly, counters and gauges marked veneurglobalonly. The
	// receiver owns the digests and sketches.
	Forward []metric.Series
	Events  []metric.Event
	Checks  []metric.ServiceCheck
}

// Flush ends the current interval and returns what it produced.
//
// Each shard's state is swapped for a fresh one under its lock, so Push
// goes on into the next interval at once; the points are then computed
// outside the locks, shards in parallel. now is the flush time (every
// Point.Timestamp is now.Unix()) and interval the length of the interval
// that ends, over which counters become rates; a non-positive interval is
// taken as one second.
//
// Series with no samples in the interval are not flushed: they are simply
// absent from the fresh state.
func (a *Aggregator) Flush(now time.Time, interval time.Duration) Flushed {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	began := time.Now()

	states := make([]intervalState, len(a.shards))
	for i := range a.shards {
		states[i] = a.shards[i].swap()
	}

	// Every series was counted when it was created, so the output is
	// allocated once and each shard fills its own window of it.
	var totalPoints, totalForward int
	for _, st := range states {
		totalPoints += st.points
		totalForward += st.forwarded
	}
	points := make([]metric.Point, totalPoints)
	forward := make([]metric.Series, totalForward)

	job := flushJob{timestamp: now.Unix(), interval: interval, seconds: interval.Seconds()}
	if job.seconds <= 0 {
		job.seconds = 1
	}
	results := make([]shardFlush, len(states))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	pointOff, forwardOff := 0, 0
	for i, st := range states {
		res := &results[i]
		// Full slice expressions: a miscount can only make a shard's
		// appends reallocate, never spill into its neighbour's window.
		res.points = points[pointOff : pointOff : pointOff+st.points]
		res.forward = forward[forwardOff : forwardOff : forwardOff+st.forwarded]
		pointOff += st.points
		forwardOff += st.forwarded
		if st.count > 0 {
			g.Go(func() error {
				a.flushShard(st, job, res)
				return nil
			})
		}
	}
	_ = g.Wait() // flushShard cannot fail

	out := Flushed{Points: points, Forward: forward}
	var byKind [kindCount]uint64
	for i := range results {
		for k, n := range results[i].byKind {
			byKind[k] += n
		}
	}

	out.Events, out.Checks = a.takeEvents()

	for k, n := range byKind {
		if n > 0 {
			a.stats.seriesFlushed[k].Add(n)
		}
	}
	a.stats.flushDuration.Set(float64(time.Since(began)) / float64(time.Millisecond))
	return out
}

// swap hands over the shard's interval state and installs an empty one,
// sized like the one leaving so the next interval doesn't regrow its map
// from scratch. The map is allocated between two short critical sections,
// not inside one.
func (sh *shard) swap() intervalState {
	sh.mu.Lock()
	size := len(sh.state.series)
	sh.mu.Unlock()
	fresh := make(map[uint64]*series, size)
	sh.mu.Lock()
	old := sh.state
	sh.state = intervalState{series: fresh}
	sh.mu.Unlock()
	return old
}

// flushJob is what every shard's flush shares.
type flushJob struct {
	timestamp int64
	interval  time.Duration
	seconds   float64 // interval in seconds, > 0
}

// shardFlush is one shard's output.
type shardFlush struct {
	points  []metric.Point
	forward []metric.Series
	byKind  [kindCount]uint64 // series flushed, by kind
	// tagArena is where the points' tags are carved from (outputTags).
	tagArena []string
}

// flushShard turns one shard's series into points and forwarded state.
func (a *Aggregator) flushShard(st intervalState, job flushJob, res *shardFlush) {
	res.tagArena = make([]string, 0, st.tagSlots)
	for _, head := range st.series {
		for ser := head; ser != nil; ser = ser.next {
			a.flushOne(ser, job, res)
		}
	}
}

// flushOne turns one series into points or forwarded state.
func (a *Aggregator) flushOne(ser *series, job flushJob, res *shardFlush) {
	res.byKind[ser.kind]++
	if ser.forward {
		res.forward = append(res.forward, forwardSeries(ser))
	}
	if a.localPoints(ser.kind, ser.forward) == 0 {
		return
	}
	var tags []string
	res.tagArena, tags = a.outputTags(res.tagArena, ser.tags)
	base := metric.Point{Tags: tags, Host: ser.host, Type: metric.GaugePoint, Timestamp: job.timestamp}
	switch ser.kind {
	case metric.Counter:
		pt := base
		pt.Name, pt.Type, pt.Value, pt.Interval = ser.name, metric.RatePoint, ser.value/job.seconds, job.interval
		res.points = append(res.points, pt)
	case metric.Gauge:
		pt := base
		pt.Name, pt.Value = ser.name, ser.value
		res.points = append(res.points, pt)
	case metric.Set:
		pt := base
		pt.Name, pt.Value = ser.name, float64(ser.set.Estimate())
		res.points = append(res.points, pt)
	default:
		res.points = a.appendHistogramPoints(res.points, ser, base, job)
	}
}

// appendHistogramPoints appends a histogram's aggregates and, unless its
// digest is forwarded, its percentiles.
func (a *Aggregator) appendHistogramPoints(dst []metric.Point, ser *series, base metric.Point, job flushJob) []metric.Point {
	withPercentiles := !ser.forward
	names := a.histogramNames(ser.name, withPercentiles)
	next := func(suffixLen int) string { // the next name cut from names
		n := len(ser.name) + suffixLen
		name := names[:n]
		names = names[n:]
		return name
	}
	h := ser.hist
	for _, g := range a.aggregates {
		pt := base
		pt.Name = next(1 + len(g.String()))
		switch g {
		case AggMin:
			pt.Value = h.min
		case AggMax:
			pt.Value = h.max
		case AggCount: // goes out like a counter (SPEC §3)
			pt.Type, pt.Value, pt.Interval = metric.RatePoint, h.count/job.seconds, job.interval
		case AggSum:
			pt.Value = h.sum
		case AggAvg:
			pt.Value = h.sum / h.count
		case AggMedian:
			pt.Value = h.digest.Quantile(0.5)
		}
		dst = append(dst, pt)
	}
	if withPercentiles {
		for i, p := range a.percentiles {
			pt := base
			pt.Name, pt.Value = next(len(a.pctSuffixes[i])), h.digest.Quantile(p)
			dst = append(dst, pt)
		}
	}
	return dst
}

// histogramNames returns name.<aggregate>… then, if asked, name.<percentile>…
// back to back in one string, which appendHistogramPoints cuts up: one
// allocation per series instead of one per point.
func (a *Aggregator) histogramNames(name string, withPercentiles bool) string {
	size := 0
	for _, g := range a.aggregates {
		size += len(name) + 1 + len(g.String())
	}
	if withPercentiles {
		for _, suffix := range a.pctSuffixes {
			size += len(name) + len(suffix)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, g := range a.aggregates {
		b.WriteString(name)
		b.WriteByte('.')
		b.WriteString(g.String())
	}
	if withPercentiles {
		for _, suffix := range a.pctSuffixes {
			b.WriteString(name)
			b.WriteString(suffix)
		}
	}
	return b.String()
}

// forwardSeries hands a series' mergeable state to the forward stage; the
// series is no longer used after the swap, so nothing is copied.
func forwardSeries(ser *series) metric.Series {
	fs := metric.Series{Key: metric.SeriesKey(ser.kind, ser.name, ser.tags), Name: ser.name, Tags: ser.tags, Kind: ser.kind}
	switch {
	case ser.kind.IsHistogram():
		fs.Digest = ser.hist.digest
	case ser.kind == metric.Set:
		fs.Set = ser.set
	default:
		fs.Value = ser.value
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
		if ev.Hostname == "" {
			ev.Hostname = a.hostname
		}
		_, ev.Tags = a.outputTags(nil, sortedTags(ev.Tags))
	}
	for i := range checks {
		c := &checks[i]
		if c.Hostname == "" {
			c.Hostname = a.hostname
		}
		_, c.Tags = a.outputTags(nil, sortedTags(c.Tags))
	}
	return events, checks
}

// sortedTags sorts and deduplicates tags in place (PushEvents made them
// ours) and drops empty ones.
func sortedTags(tags []string) []string {
	tags = slices.DeleteFunc(tags, func(t string) bool { return t == "" })
	slices.Sort(tags)
	return slices.Compact(tags)
}
