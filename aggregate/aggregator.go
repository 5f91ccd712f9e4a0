package aggregate

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/cardinality"
	"github.com/veneur-lite/veneur-lite/internal/shards"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Config is what New needs. The config package fills it from the file.
type Config struct {
	// Shards is the number of independently locked parts the series are
	// spread over (package internal/shards); zero means shards.Default.
	Shards int
	// Workers bounds the goroutines a flush uses (num_workers); zero means
	// GOMAXPROCS.
	Workers int
	// Hostname is the host of locally flushed series, events and checks
	// that don't name their own.
	Hostname string
	// ExtendTags are added to every series, event and check. An extend tag
	// replaces a line's tag with the same key (the text before ':'), as in
	// Veneur, so "env:prod" overrides a client's "env:dev"; and it is part
	// of the series' identity, so lines that flush alike are one series.
	ExtendTags []string
	// Percentiles are flushed for veneurlocalonly histogram series. The
	// global tier computes the others' (package aggregate/global).
	Percentiles metric.Percentiles
	// HostPercentiles (histogram_percentiles, the Datadog Agent's key) are
	// flushed for every histogram series by this instance, with its host,
	// at once; none may share a name with Percentiles.
	HostPercentiles metric.Percentiles
	// Aggregates are flushed for histogram series as name.<aggregate>.
	Aggregates []Aggregate
	// MaxSeries and MaxSeriesPerName bound the series of an interval, in
	// all and per metric name (package internal/cardinality); zero means
	// no bound. Past them new series are shed, counted, while the series
	// that were live in the interval before keep aggregating.
	MaxSeries        int
	MaxSeriesPerName int
	// Stats receives the aggregator's self-measurements; nil measures
	// nothing.
	Stats *telemetry.Registry
	// Log receives the throttled report of shed series; nil means
	// slog.Default().
	Log *slog.Logger
}

// Aggregator accumulates samples into per-interval series. All methods are
// safe for concurrent use; concurrent Flush calls run one after the other.
type Aggregator struct {
	shards    []shard
	shardMask uint64
	seed      maphash.Seed
	workers   int

	hostname    string
	extendTags  []string // sorted, deduplicated
	extendKeys  []string // the key of each extend tag, for replacing
	percentiles metric.Percentiles
	// hostPercentiles are HostPercentiles, flushed by every instance for
	// its own series.
	hostPercentiles metric.Percentiles
	aggregates      []Aggregate // configured, deduplicated, in flush order

	// shared serves Push, for callers without a Writer of their own: the
	// flusher's self-metrics (and tests). Its new series are never shed.
	sharedMu sync.Mutex
	shared   *Writer

	eventsMu sync.Mutex
	events   []metric.Event
	checks   []metric.ServiceCheck

	// limit bounds the series; interval holds the current interval's
	// counts, swapped at every flush once every shard has moved to them
	// (shard.limits).
	limit    *cardinality.Limiter
	interval atomic.Pointer[cardinality.Interval]
	// intervalStart is when the interval under way began (unix ns).
	intervalStart atomic.Int64

	flushMu sync.Mutex // serializes Flush
	// spare is a Points array handed back by Recycle for the next Flush.
	spare atomic.Pointer[[]metric.Point]
	stats aggregatorStats
}

// New validates cfg and returns an Aggregator ready for Push.
func New(cfg Config) (*Aggregator, error) {
	a := &Aggregator{
		hostname: cfg.Hostname,
		seed:     maphash.MakeSeed(),
		workers:  cfg.Workers,
		stats:    newAggregatorStats(cfg.Stats),
	}
	if a.workers <= 0 {
		a.workers = runtime.GOMAXPROCS(0)
	}

	n, err := shards.Count(cfg.Shards)
	if err != nil {
		return nil, err
	}
	a.shards = make([]shard, n)
	a.shardMask = uint64(n - 1)
	a.limit = cardinality.New(cardinality.Config{
		MaxSeries: cfg.MaxSeries, MaxSeriesPerName: cfg.MaxSeriesPerName,
		Scope: "local", Stats: cfg.Stats, Log: cfg.Log,
	})
	first := a.limit.NewInterval()
	a.interval.Store(first)
	a.intervalStart.Store(time.Now().UnixNano())
	for i := range a.shards {
		a.shards[i].limits = first
		a.shards[i].index = make(map[uint64]int32)
		a.shards[i].interval = 1 // seen = 0 is before the first interval
	}

	a.percentiles = cfg.Percentiles
	if name, shared := cfg.HostPercentiles.SharedName(cfg.Percentiles); shared {
		// One name, per host and fleet-wide: two series a dashboard could
		// not tell apart.
		return nil, fmt.Errorf("host percentile %s is also flushed by percentiles", name)
	}
	a.hostPercentiles = cfg.HostPercentiles

	var aggMask Aggregate
	for _, g := range cfg.Aggregates {
		if _, ok := g.name(); !ok {
			return nil, fmt.Errorf("aggregate %d: not a known aggregate", uint8(g))
		}
		aggMask |= g
	}
	for _, g := range allAggregates {
		if aggMask&g != 0 {
			a.aggregates = append(a.aggregates, g)
		}
	}

	for _, tag := range cfg.ExtendTags {
		if tag != "" {
			a.extendTags = append(a.extendTags, tag)
		}
	}
	slices.Sort(a.extendTags)
	a.extendTags = slices.Compact(a.extendTags)
	for _, tag := range a.extendTags {
		a.extendKeys = append(a.extendKeys, tagKey(tag))
	}
	a.shared = a.NewWriter()
	a.shared.unlimited = true
	return a, nil
}

// Push aggregates samples through a Writer shared by every caller that
// has none of its own: the process's own measurements, which the series
// limits never shed. Readers of client traffic use NewWriter instead.
func (a *Aggregator) Push(samples []metric.Sample) {
	a.sharedMu.Lock()
	defer a.sharedMu.Unlock()
	a.shared.Push(samples)
}

// forwards reports whether a series' state goes to the global tier
// (docs/output.md, "Local and global"): histograms and sets unless veneurlocalonly, counters and gauges
// only when veneurglobalonly.
func (a *Aggregator) forwards(k metric.Kind, sc scope) bool {
	switch {
	case k.IsHistogram(), k == metric.Set:
		return sc != scopeLocalOnly
	default: // counter, gauge
		return sc == scopeGlobalOnly
	}
}

// localPoints is how many points a series of kind k flushes here.
func (a *Aggregator) localPoints(k metric.Kind, forward bool) int {
	switch {
	case k.IsHistogram():
		if forward { // the global computes percentiles from merged digests
			return len(a.aggregates) + a.hostPercentiles.Len()
		}
		return len(a.aggregates) + a.hostPercentiles.Len() + a.percentiles.Len()
	case forward:
		return 0
	default:
		return 1
	}
}

// maxQueuedEvents bounds the events, and separately the service checks,
// held between two flushes. Events are rare and meant for humans; a client
// looping on them should not be able to grow memory without bound. The
// excess is dropped and counted as aggregate.events_dropped.
const maxQueuedEvents = 10_000

// PushEvents queues events and service checks for the next flush. They are
// copied by value and their Tags slices are copied, so the caller may reuse
// its batch.
func (a *Aggregator) PushEvents(events []metric.Event, checks []metric.ServiceCheck) {
	if len(events) == 0 && len(checks) == 0 {
		return
	}
	a.eventsMu.Lock()
	defer a.eventsMu.Unlock()
	dropped := 0
	for _, ev := range events {
		if len(a.events) >= maxQueuedEvents {
			dropped++
			continue
		}
		ev.Tags = slices.Clone(ev.Tags)
		a.events = append(a.events, ev)
	}
	for _, c := range checks {
		if len(a.checks) >= maxQueuedEvents {
			dropped++
			continue
		}
		c.Tags = slices.Clone(c.Tags)
		a.checks = append(a.checks, c)
	}
	if dropped > 0 {
		a.stats.eventsDropped.Add(uint64(dropped))
	}
}

// eventTags returns an event's or check's tags with the extend tags
// applied (a tag with an extend tag's key gives way to it), sorted and
// deduplicated. tags is the event's own copy (PushEvents made it).
func (a *Aggregator) eventTags(tags []string) []string {
	tags = slices.DeleteFunc(tags, func(t string) bool {
		if t == "" {
			return true
		}
		for _, k := range a.extendKeys {
			if tagKey(t) == k {
				return true
			}
		}
		return false
	})
	tags = append(tags, a.extendTags...)
	slices.Sort(tags)
	return slices.Compact(tags)
}
