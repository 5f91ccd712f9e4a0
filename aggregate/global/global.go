// Package global is the aggregation of the root of the tier (and of a
// middle tier): Import merges the series locals forward, and the root's
// own, into the fleet window of the interval they were aggregated in;
// Flush takes each window one interval after it ends and returns
// fleet-wide points without a host, or on a middle tier the merged series
// for the next tier up. The window bookkeeping (late and future batches,
// windows flushed together): docs/global-tier.md.
package global

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/veneur-lite/veneur-lite/internal/cardinality"
	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/internal/shards"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Config is what New needs.
type Config struct {
	// Interval is the global interval (the interval key). Zero means the
	// interval Flush is called with (and, before the first Flush, the
	// batch's own interval).
	Interval time.Duration
	// Percentiles are flushed for every merged digest.
	Percentiles metric.Percentiles
	// Forwarding is true on a middle tier (forward_address set): Flush
	// returns the merged series for the next tier up instead of points.
	Forwarding bool
	// Shards spreads each window's series over independently locked maps
	// (package internal/shards); zero means shards.Default.
	Shards int
	// MaxSeries and MaxSeriesPerName bound the series of a window, in all
	// and per metric name (package internal/cardinality); zero means no
	// bound. Past them series new to the tier are shed, counted, while the
	// series the last flushed window held keep merging.
	MaxSeries        int
	MaxSeriesPerName int
	// Stats receives the measurements; nil measures nothing.
	Stats *telemetry.Registry
	// Log receives the throttled report of shed series; nil means
	// slog.Default().
	Log *slog.Logger
	// Now is the clock Import reads to bound batches from the future and to
	// start its bookkeeping; nil means time.Now.
	Now func() time.Time
}

// maxOpenWindows bounds the windows held at once: normally two are open
// (the one locals are forwarding into and the current one), three when a
// flush runs late. Past the bound a batch joins the nearest later window.
const maxOpenWindows = 3

// defaultInterval is the interval key's default (docs/configuration.md),
// used only when neither Config.Interval, a Flush nor the batch says
// otherwise.
const defaultInterval = 10 * time.Second

// Windows merges forwarded series into global intervals. All methods are
// safe for concurrent use.
type Windows struct {
	mu       sync.Mutex
	windows  []*window // open windows, oldest first
	horizon  time.Time // start of the oldest open window; zero until known
	interval time.Duration
	learned  time.Duration // Flush's interval, when Config.Interval is zero
	drain    bool          // the next Flush takes every open window

	percentiles metric.Percentiles
	forwarding  bool
	now         func() time.Time
	seed        maphash.Seed
	shardMask   uint64
	nShards     int
	stats       stats

	limit *cardinality.Limiter
	log   *slog.Logger
	// mismatchLog throttles the log of batches whose interval is not this
	// instance's.
	mismatchLog logthrottle.Throttle
	// known holds, per shard, the keys of the last flushed window: series
	// the tier already holds, which the limits always let through. It is
	// replaced whole at each flush and only read otherwise.
	known atomic.Pointer[[]map[string]struct{}]
}

// window is one global interval's merged state.
type window struct {
	start time.Time
	limit *cardinality.Interval
	// rw is read-held by every Import merging into the window and
	// write-held by the Flush that takes it.
	rw     sync.RWMutex
	shards []shard
}

type shard struct {
	mu     sync.Mutex
	series map[string]*metric.Series // by Key; state owned by the window
	_      cpu.CacheLinePad
}

type stats struct {
	series         *telemetry.Counter
	seriesRejected *telemetry.Counter
	lateBatches    *telemetry.Counter
	futureBatches  *telemetry.Counter
	mismatches     *telemetry.Counter
	digestSamples  *telemetry.Counter
	seriesFlushed  [metric.KindMax + 1]*telemetry.Counter // by kind
	openWindows    *telemetry.Gauge
}

// New validates cfg and returns empty Windows.
func New(cfg Config) (*Windows, error) {
	n, err := shards.Count(cfg.Shards)
	if err != nil {
		return nil, err
	}
	w := &Windows{
		interval:    max(cfg.Interval, 0),
		percentiles: cfg.Percentiles,
		forwarding:  cfg.Forwarding,
		now:         cfg.Now,
		seed:        maphash.MakeSeed(),
		nShards:     n,
		shardMask:   uint64(n - 1),
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.log = cfg.Log
	if w.log == nil {
		w.log = slog.Default()
	}
	w.mismatchLog = logthrottle.Throttle{Every: mismatchLogEvery, Now: w.now}
	w.limit = cardinality.New(cardinality.Config{
		MaxSeries: cfg.MaxSeries, MaxSeriesPerName: cfg.MaxSeriesPerName,
		Scope: "global", Stats: cfg.Stats, Log: cfg.Log,
	})
	reg := cfg.Stats
	w.stats = stats{
		series:         reg.Counter("import.series_merged"),
		seriesRejected: reg.Counter("import.series_rejected"),
		lateBatches:    reg.Counter("import.late_batches"),
		futureBatches:  reg.Counter("import.future_batches"),
		mismatches:     reg.Counter("import.interval_mismatch"),
		digestSamples:  reg.Counter("import.digest_samples"),
		openWindows:    reg.Gauge("import.open_intervals"),
	}
	for k := metric.Counter; k <= metric.KindMax; k++ {
		w.stats.seriesFlushed[k] = reg.Counter("flush.fleet_series", "kind:"+k.String())
	}
	return w, nil
}

// length is the global interval length; w.mu must be held.
func (w *Windows) length(batch time.Duration) time.Duration {
	switch {
	case w.interval > 0:
		return w.interval
	case w.learned > 0:
		return w.learned
	case batch > 0:
		return batch
	}
	return defaultInterval
}

// Import merges series that a local aggregated in [intervalStart,
// intervalStart+interval) into the window containing intervalStart, to be
// flushed one interval later (docs/global-tier.md, "Fleet windows"). It
// returns once the series are merged.
//
// Series merge by Key (metric.Series.Merge): digests and sketches merge,
// counters add up, and of gauges the last to arrive wins. Every series
// must carry its Key (metric.SeriesKey), as the wire decoder and a local's
// flush build it.
//
// Import takes ownership of series: of its elements, whose strings and
// tag slices it may keep, and of their digests and sketches, which it
// merges into the window's own (a series new to the window gets a copy:
// the import endpoint reuses a decoded batch's memory) and may change
// while doing so. The caller must not use or change any of them after
// the call, nor pass one digest or sketch twice; wire.Decode's batches
// fit. Tags are read-only to Import too: it never changes a tag slice.
//
// A series that cannot merge (no key, an unknown kind, a missing or
// non-finite payload, a sketch the library refuses) is skipped and
// counted as import.series_rejected; wire.Decode rejects all of those
// before they get here.
func (w *Windows) Import(intervalStart time.Time, interval time.Duration, series []metric.Series) {
	if len(series) == 0 {
		return
	}
	win := w.acquire(intervalStart, interval)
	defer win.rw.RUnlock()
	w.merge(win, series)
}

// Lease is an open window held for one batch: Flush cannot take it until
// Release. It lets the import endpoint journal a batch under the window it
// will merge into, and know no flush of that window began in between.
type Lease struct {
	w   *Windows
	win *window
}

// Acquire returns a lease on the window a batch that a local aggregated in
// [intervalStart, intervalStart+interval) merges into (as Import chooses
// it). Release it promptly: the window's flush waits for it.
func (w *Windows) Acquire(intervalStart time.Time, interval time.Duration) *Lease {
	return &Lease{w: w, win: w.acquire(intervalStart, interval)}
}

// Window returns the start of the leased window.
func (l *Lease) Window() time.Time { return l.win.start }

// Import merges series into the leased window, as Windows.Import does.
func (l *Lease) Import(series []metric.Series) { l.w.merge(l.win, series) }

// Release lets the window be flushed.
func (l *Lease) Release() { l.win.rw.RUnlock() }

// merge merges series into win, which the caller holds read-locked.
func (w *Windows) merge(win *window, series []metric.Series) {
	// Group the batch by shard, so that each shard is locked once: refs
	// holds shard<<32 | index, sorted. Shards are at most maxShards and a
	// batch is far below 2^32 series.
	var merged, rejected, samples uint64
	refs := make([]uint64, 0, len(series))
	for i := range series {
		s := &series[i]
		if err := check(s); err != nil {
			rejected++
			continue
		}
		sh := maphash.String(w.seed, s.Key) & w.shardMask
		refs = append(refs, sh<<32|uint64(i))
	}
	slices.Sort(refs)
	var known []map[string]struct{}
	if k := w.known.Load(); k != nil {
		known = *k
	}
	for j := 0; j < len(refs); {
		idx := refs[j] >> 32
		sh := &win.shards[idx]
		var shardKnown map[string]struct{}
		if known != nil {
			shardKnown = known[idx]
		}
		sh.mu.Lock()
		for ; j < len(refs) && refs[j]>>32 == idx; j++ {
			s := &series[uint32(refs[j])]
			cur := sh.series[s.Key]
			if cur == nil && !w.admit(win.limit, shardKnown, s) {
				continue
			}
			var n uint64
			switch {
			case s.Digest != nil:
				n = uint64(math.Round(s.Digest.Count()))
			case s.Dist != nil:
				n = uint64(s.Dist.Count())
			}
			if err := sh.merge(cur, s); err != nil {
				rejected++
				continue
			}
			merged++
			samples += n
		}
		sh.mu.Unlock()
	}
	w.stats.series.Add(merged)
	if rejected > 0 {
		w.stats.seriesRejected.Add(rejected)
	}
	w.stats.digestSamples.Add(samples)
}

// admit decides whether a series new to a window may join it: always, when
// the last flushed window held it; otherwise within the window's limits.
// A series refused is shed and counted.
func (w *Windows) admit(iv *cardinality.Interval, known map[string]struct{}, s *metric.Series) bool {
	if _, ok := known[s.Key]; ok {
		iv.Count(s.Name)
		return true
	}
	ok, reason := iv.Admit(s.Name)
	if !ok {
		iv.Shed(reason, s.Name, 1)
	}
	return ok
}

// acquire returns the open window a batch starting at start merges into,
// read-locked.
func (w *Windows) acquire(start time.Time, interval time.Duration) *window {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.length(interval)
	now := w.now()
	if interval > 0 && interval != g {
		w.intervalMismatch(interval, g)
	}
	current := now.Truncate(g)
	if w.horizon.IsZero() {
		// Nothing flushed yet: what the locals are forwarding right now
		// is the interval before the current one.
		w.horizon = current.Add(-g)
	}
	s := start.Truncate(g)
	if s.After(current) {
		s = current
		w.stats.futureBatches.Inc()
	}
	if s.Before(w.horizon) {
		s = w.horizon
		w.stats.lateBatches.Inc()
	}
	win := w.window(s)
	win.rw.RLock() // before w.mu is released, so Flush cannot take win in between
	return win
}

// mismatchLogEvery throttles the log of batches with another interval: a
// misconfigured local sends one every interval, and the counter has them
// all.
const mismatchLogEvery = time.Minute

// intervalMismatch counts and logs (throttled) a batch aggregated over an
// interval other than this instance's g. It still merges, into the window
// its start falls in, which is right for counts, sums and percentiles, but
// not for rates: see docs/output.md.
func (w *Windows) intervalMismatch(batch, g time.Duration) {
	w.stats.mismatches.Inc()
	ok, held := w.mismatchLog.Allow()
	if !ok {
		return
	}
	w.log.Warn("imported a batch aggregated over another interval than this instance's: give the locals the same interval as the global tier",
		"batch_interval", batch.String(), "interval", g.String(), "batches_since_last_log", held+1)
}

// window finds or opens the window starting at s; w.mu must be held.
func (w *Windows) window(s time.Time) *window {
	i, found := slices.BinarySearchFunc(w.windows, s, func(win *window, s time.Time) int { return win.start.Compare(s) })
	if found {
		return w.windows[i]
	}
	if len(w.windows) >= maxOpenWindows {
		// Flushes have stalled. Never move data into a window that
		// flushes earlier than its own unless there is none later.
		if i < len(w.windows) {
			w.stats.lateBatches.Inc()
			return w.windows[i]
		}
		w.stats.futureBatches.Inc()
		return w.windows[len(w.windows)-1]
	}
	win := &window{start: s, limit: w.limit.NewInterval(), shards: make([]shard, w.nShards)}
	for j := range win.shards {
		win.shards[j].series = make(map[string]*metric.Series)
	}
	w.windows = slices.Insert(w.windows, i, win)
	w.stats.openWindows.Set(float64(len(w.windows)))
	return win
}

// merge folds s, which passed check, into cur, the shard's series of its
// key (nil when the window has none yet); the caller holds the shard's
// lock. A series new to the window gets a digest and sketch of its own:
// a decoded batch's digests live in memory the import endpoint reuses,
// which the window must not keep.
func (sh *shard) merge(cur, s *metric.Series) error {
	if cur != nil {
		return cur.Merge(s)
	}
	cur = &metric.Series{Key: s.Key, Name: s.Name, Tags: s.Tags, Kind: s.Kind}
	switch {
	case s.Kind == metric.Distribution:
		cur.Dist = new(agentsketch.Sketch)
	case s.Kind.IsHistogram():
		cur.Digest = new(sketch.Digest)
	case s.Kind == metric.Set:
		// A set is never adopted: the sketch does not tell its precision,
		// and Merge refuses any but SetPrecision.
		cur.Set = sketch.NewSet()
	}
	if err := cur.Merge(s); err != nil {
		return err
	}
	sh.series[s.Key] = cur
	return nil
}

// check rejects a series that cannot merge.
func check(s *metric.Series) error {
	switch {
	case s.Key == "":
		return fmt.Errorf("import series %q: no key", s.Name)
	case s.Name == "" || s.Kind <= metric.KindInvalid || s.Kind > metric.KindMax:
		return fmt.Errorf("import series %q: invalid kind %v or empty name", s.Name, s.Kind)
	case s.Kind == metric.Histogram && s.Digest == nil, s.Kind == metric.Distribution && s.Dist == nil,
		s.Kind == metric.Set && s.Set == nil:
		return fmt.Errorf("import series %q: %v without its sketch", s.Name, s.Kind)
	case (s.Kind == metric.Counter || s.Kind == metric.Gauge) && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)):
		return fmt.Errorf("import series %q: value %v", s.Name, s.Value)
	}
	return nil
}

// Drain makes the next Flush take every open window, not only the due
// ones, instead of dropping them with the process. Call it on shutdown,
// once the import endpoint has stopped, before the final flush; the fleet
// percentiles of those windows then cover what had arrived by then.
func (w *Windows) Drain() {
	w.mu.Lock()
	w.drain = true
	w.mu.Unlock()
}

// Flush takes the windows due at now (those that started at least two
// intervals ago, or all of them after Drain) and returns their output,
// stamped with the end of the interval they cover (see coveredStamp):
// fleet-wide points, or on a middle tier (Config.Forwarding) the merged
// series for the next tier, which the caller owns. interval is the flush
// interval. Flush calls do not overlap (the flusher makes one at a time).
func (w *Windows) Flush(now time.Time, interval time.Duration) ([]metric.Point, []metric.Series) {
	points, series, _ := w.FlushWindows(now, interval)
	return points, series
}

// FlushWindows is Flush that also returns the starts of the windows it
// took, oldest first, so that their journal can be forgotten once every
// output is done with them.
func (w *Windows) FlushWindows(now time.Time, interval time.Duration) ([]metric.Point, []metric.Series, []time.Time) {
	w.mu.Lock()
	if w.interval == 0 && interval > 0 {
		w.learned = interval
	}
	g := w.length(interval)
	dueBy := now.Add(-2 * g)
	var due []*window
	open := w.windows[:0]
	for _, win := range w.windows {
		if w.drain || !win.start.After(dueBy) {
			due = append(due, win)
		} else {
			open = append(open, win)
		}
	}
	clear(w.windows[len(open):])
	w.windows = open
	// Whatever starts after dueBy is still open; from now on nothing
	// merges into a window before that.
	horizon := dueBy.Truncate(g).Add(g)
	if w.drain {
		horizon = now.Truncate(g)
		w.drain = false
	}
	if horizon.After(w.horizon) {
		w.horizon = horizon
	}
	w.stats.openWindows.Set(float64(len(open)))
	w.mu.Unlock()
	if len(due) == 0 {
		return nil, nil, nil
	}
	starts := make([]time.Time, len(due))
	for i, win := range due {
		starts[i] = win.start
	}

	for _, win := range due {
		win.rw.Lock() // waits for the imports still merging into win
	}
	// Several due windows (flushes that ran late, or a drain) flush as
	// one, later ones merged into the oldest: one point per series.
	first := due[0]
	for _, win := range due[1:] {
		for i := range win.shards {
			dst := first.shards[i].series
			for key, s := range win.shards[i].series {
				if cur := dst[key]; cur != nil {
					if err := cur.Merge(s); err != nil { // win is dropped after this flush
						w.stats.seriesRejected.Inc()
					}
				} else {
					dst[key] = s
				}
			}
		}
	}
	// A counter's rate is over the time the merged windows cover, with
	// the point's interval saying so, so that rate × interval is still
	// the count summed across hosts.
	span := due[len(due)-1].start.Add(g).Sub(first.start)
	var all []*metric.Series
	known := make([]map[string]struct{}, len(first.shards))
	for i := range first.shards {
		known[i] = make(map[string]struct{}, len(first.shards[i].series))
		for key, s := range first.shards[i].series {
			all = append(all, s)
			known[i][key] = struct{}{}
			w.stats.seriesFlushed[s.Kind].Inc()
		}
	}
	w.known.Store(&known)
	for _, win := range due {
		w.limit.End(win.limit, now)
	}
	if w.forwarding {
		forward := make([]metric.Series, len(all))
		for i, s := range all {
			forward[i] = *s
		}
		return nil, forward, starts
	}
	return w.points(all, coveredStamp(due[len(due)-1].start, g, now), span), nil, starts
}

// coveredStamp is the timestamp of fleet points whose windows end with the
// one starting at last: the end of that interval, which is the flush time
// the locals stamped their own points of it with, so that a dashboard
// lines a host's count up with the fleet's percentiles of the same
// samples. A window not over yet (the final flush drains it) is stamped
// now, as the locals' final flush is.
func coveredStamp(last time.Time, g time.Duration, now time.Time) int64 {
	end := last.Add(g)
	if end.After(now) {
		end = now
	}
	return end.Unix()
}

// points returns the fleet-wide points of merged series: the configured
// percentiles of digests (never aggregates: the locals flush min, max,
// count and the rest from their exact samples, and doing it here would
// count them twice), set estimates, summed counters as rates over span
// (the global interval, or the intervals flushed together) and gauges.
// None carries a host.
func (w *Windows) points(all []*metric.Series, ts int64, span time.Duration) []metric.Point {
	n := 0
	for _, s := range all {
		if s.Kind.IsHistogram() {
			n += w.percentiles.Len()
		} else {
			n++
		}
	}
	dst := make([]metric.Point, 0, n)
	stamp := metric.Stamp{Timestamp: ts, Interval: span}
	var names strings.Builder
	for _, s := range all {
		base := metric.Point{Name: s.Name, Tags: s.Tags, Distribution: s.Kind == metric.Distribution}
		if !s.Kind.IsHistogram() {
			dst = append(dst, stamp.ScalarPoint(base, s.Kind, s.Value, s.Set))
			continue
		}
		names.Reset()
		names.Grow(w.percentiles.NamesLen(s.Name))
		w.percentiles.AppendNames(&names, s.Name)
		var merged metric.Quantiler = s.Digest
		if s.Dist != nil {
			merged = s.Dist
		}
		dst, _ = w.percentiles.AppendPoints(dst, stamp, base, merged, names.String())
	}
	return dst
}
