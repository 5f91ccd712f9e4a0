// Package cardinality bounds how many series an interval may hold, in all
// and per metric name, so that one client putting a request id in a tag
// cannot grow memory until the host's OOM killer picks a victim.
//
// Each interval has its own counts (an Interval from Limiter.NewInterval),
// asked once per series: Admit for a series new to the instance, refused
// past either bound (the series is then shed: its samples are dropped and
// counted), Count for a series the instance already holds, which is always
// let through. A series that was
// live in the last interval therefore keeps aggregating exactly through a
// flood of new ones, and the interval's series stay within the bound:
// every series of an interval was either admitted under it or live in the
// interval before, which was within it too.
//
// Shed samples are counted by reason (veneur.cardinality.samples_shed
// {scope,reason}) and by metric name: Limiter.End adds each interval's to
// veneur.cardinality.samples_shed_by_name{scope,reason,metric}, for at most
// maxNamedCounters names over the process's life (the rest as
// metric:other), and reports them in a log line at most every logEvery.
package cardinality

import (
	"cmp"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Reason is why a series was shed.
type Reason uint8

const (
	// MaxSeries: the interval already holds the most series allowed.
	MaxSeries Reason = iota
	// MaxSeriesPerName: the metric name already has the most series
	// allowed per name.
	MaxSeriesPerName
	numReasons
)

var reasonNames = [numReasons]string{"max_series", "max_series_per_name"}

func (r Reason) String() string { return reasonNames[r] }

// Config bounds an interval; zero means no bound.
type Config struct {
	MaxSeries        int
	MaxSeriesPerName int
	// Scope names what is limited in logs and self-metrics ("local",
	// "global"), as both tiers of one process report.
	Scope string
	Stats *telemetry.Registry
	Log   *slog.Logger
}

// Limiter holds what outlives an interval: the bounds, the self-metrics
// and the log's throttle. End is called by one goroutine at a time.
type Limiter struct {
	cfg  Config
	seed maphash.Seed

	// Self-metrics: totals by reason, and per name for the names that
	// shed the most (registered lazily, at most maxNamedCounters).
	total    [numReasons]*telemetry.Counter
	named    map[string]*telemetry.Counter
	liveG    *telemetry.Gauge
	lastLog  time.Time
	held     uint64 // shed samples not yet logged
	heldBy   [numReasons]uint64
	topNames [numReasons][]string
}

// Interval counts one interval's series. Its methods are safe for
// concurrent use.
type Interval struct {
	l    *Limiter
	live atomic.Int64
	// names holds the live series per metric name, striped by the name's
	// hash so that concurrent shards rarely share a lock. Only used when
	// MaxSeriesPerName is set.
	names [nameStripes]nameStripe

	shedMu sync.Mutex
	shed   [numReasons]map[string]uint64 // samples shed, by name
}

const nameStripes = 64

type nameStripe struct {
	mu    sync.Mutex
	count map[string]int32
}

// logEvery throttles the shedding log line: a flood lasts and must not
// flood the log too. The counters have every sample.
const logEvery = 10 * time.Second

// maxNamedCounters bounds the per-name self-metrics over the life of the
// process: the names that shed are exactly the ones that cannot be
// trusted to be few.
const maxNamedCounters = 200

// maxShedNames bounds the names remembered per interval and reason; the
// rest are counted as "other".
const maxShedNames = 1000

// New returns a limiter for cfg.
func New(cfg Config) *Limiter {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Limiter{cfg: cfg, seed: maphash.MakeSeed(), named: map[string]*telemetry.Counter{}}
	for r := range numReasons {
		l.total[r] = cfg.Stats.Counter("cardinality.samples_shed", "scope:"+cfg.Scope, "reason:"+r.String())
	}
	l.liveG = cfg.Stats.Gauge("cardinality.live_series", "scope:"+cfg.Scope)
	return l
}

// NewInterval returns empty counts for an interval.
func (l *Limiter) NewInterval() *Interval {
	iv := &Interval{l: l}
	for r := range numReasons {
		iv.shed[r] = map[string]uint64{}
	}
	if l.cfg.MaxSeriesPerName > 0 {
		for i := range iv.names {
			iv.names[i].count = map[string]int32{}
		}
	}
	return iv
}

// Admit counts a series new to the interval if both bounds allow it; if
// not, it counts nothing and says why.
func (iv *Interval) Admit(name string) (bool, Reason) {
	cfg := &iv.l.cfg
	if cfg.MaxSeries > 0 {
		if iv.live.Add(1) > int64(cfg.MaxSeries) {
			iv.live.Add(-1)
			return false, MaxSeries
		}
	} else {
		iv.live.Add(1)
	}
	if cfg.MaxSeriesPerName > 0 {
		st := &iv.names[maphash.String(iv.l.seed, name)%nameStripes]
		st.mu.Lock()
		n := st.count[name]
		if int(n) >= cfg.MaxSeriesPerName {
			st.mu.Unlock()
			iv.live.Add(-1)
			return false, MaxSeriesPerName
		}
		st.count[name] = n + 1
		st.mu.Unlock()
	}
	return true, 0
}

// Count counts a series the instance already holds, live again in this
// interval, whatever the bounds.
func (iv *Interval) Count(name string) {
	iv.live.Add(1)
	if iv.l.cfg.MaxSeriesPerName > 0 {
		st := &iv.names[maphash.String(iv.l.seed, name)%nameStripes]
		st.mu.Lock()
		st.count[name]++
		st.mu.Unlock()
	}
}

// Shed counts samples of a series that was not admitted.
func (iv *Interval) Shed(r Reason, name string, samples uint64) {
	iv.l.total[r].Add(samples)
	iv.shedMu.Lock()
	defer iv.shedMu.Unlock()
	m := iv.shed[r]
	if _, ok := m[name]; !ok && len(m) >= maxShedNames {
		name = "other"
	}
	m[name] += samples
}

// LiveGauge returns the veneur.cardinality.live_series gauge of this
// scope, nil without a registry.
func (l *Limiter) LiveGauge() *telemetry.Gauge { return l.liveG }

// MaxSeries and MaxSeriesPerName return the bounds, 0 for none.
func (l *Limiter) MaxSeries() int        { return l.cfg.MaxSeries }
func (l *Limiter) MaxSeriesPerName() int { return l.cfg.MaxSeriesPerName }

// ShedByName returns a copy of the interval's shed samples so far, by
// reason and metric name.
func (iv *Interval) ShedByName() map[string]map[string]uint64 {
	iv.shedMu.Lock()
	defer iv.shedMu.Unlock()
	out := map[string]map[string]uint64{}
	for r := range numReasons {
		if len(iv.shed[r]) > 0 {
			out[r.String()] = maps.Clone(iv.shed[r])
		}
	}
	return out
}

// Live returns the series counted in the interval so far.
func (iv *Interval) Live() int64 { return iv.live.Load() }

// End reports a finished interval: its live series as a gauge, its shed
// samples in the per-name self-metrics and in a log line, at most every
// logEvery. iv must no longer be used.
func (l *Limiter) End(iv *Interval, now time.Time) {
	l.liveG.Set(float64(iv.live.Load()))
	iv.shedMu.Lock()
	shed := iv.shed
	iv.shedMu.Unlock()

	for r := range numReasons {
		if len(shed[r]) == 0 {
			continue
		}
		names := make([]string, 0, len(shed[r]))
		for name, n := range shed[r] {
			names = append(names, name)
			l.held += n
			l.heldBy[r] += n
			l.namedCounter(r, name).Add(n)
		}
		slices.SortFunc(names, func(a, b string) int { return cmp.Compare(shed[r][b], shed[r][a]) })
		l.topNames[r] = names[:min(len(names), 5)]
	}
	if l.held == 0 || now.Sub(l.lastLog) < logEvery {
		return
	}
	l.lastLog = now
	attrs := []any{"scope", l.cfg.Scope, "shed_samples", l.held,
		"max_series", l.cfg.MaxSeries, "max_series_per_name", l.cfg.MaxSeriesPerName}
	for r := range numReasons {
		if l.heldBy[r] > 0 {
			attrs = append(attrs, "shed_"+r.String(), l.heldBy[r], "top_names_"+r.String(), l.topNames[r])
		}
	}
	l.cfg.Log.Warn("series over the cardinality limit were shed; existing series keep aggregating", attrs...)
	l.held = 0
	l.heldBy = [numReasons]uint64{}
}

// namedCounter returns the per-name counter of r, or the shared "other"
// one once maxNamedCounters exist.
func (l *Limiter) namedCounter(r Reason, name string) *telemetry.Counter {
	key := strconv.Itoa(int(r)) + name
	if c, ok := l.named[key]; ok {
		return c
	}
	if len(l.named) >= maxNamedCounters {
		name = "other"
		key = strconv.Itoa(int(r)) + name
		if c, ok := l.named[key]; ok {
			return c
		}
	}
	// Telemetry tags are comma-separated; a name may hold a comma.
	c := l.cfg.Stats.Counter("cardinality.samples_shed_by_name", "scope:"+l.cfg.Scope, "reason:"+r.String(), "metric:"+strings.ReplaceAll(name, ",", "_"))
	l.named[key] = c
	return c
}
