package aggregate

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"golang.org/x/sys/cpu"
)

// A global instance merges what locals forward (Import) into global
// intervals kept apart from the series it receives directly, which flush
// exactly as on any instance.
//
// Interval bookkeeping. With G the global interval, a local aggregates
// [T, T+G), flushes at T+G and forwards during [T+G, T+2G) a batch that
// carries T. Import merges it into the global interval containing T, and
// Flush at T+2G flushes that interval: results lag one interval, and one
// fleet interval is never split across two flushes, whichever local is
// slow within its interval. Intervals are created on demand and at most
// maxOpenIntervals are open:
//
//	flushed ... │ oldest open = horizon │ horizon+G │ (current)
//	late batch ─┘──▶ redirected here        future batch ──▶ capped at the current one
//
// The horizon is the start of the oldest interval still open. A batch
// older than that (held by a local through an outage, or a retry that
// arrived after its interval was flushed) merges into the horizon's
// interval, so it is flushed at the next flush rather than lost or
// flushed alone. A batch for an interval beyond the one the wall clock is
// in (clock skew) merges into the current one.
//
// Concurrency. Import finds its interval under imports.mu and read-locks
// the interval before letting go of it; Flush detaches due intervals under
// imports.mu, then write-locks each, which waits for the imports still
// merging into it. Within an interval, series are spread over shards with
// their own locks, so concurrent batches merge in parallel.

// maxOpenIntervals bounds the imported intervals held at once: normally
// two are open (the one locals are forwarding into and the current one),
// three when a flush runs late. Past the bound a batch joins the nearest
// later open interval.
const maxOpenIntervals = 3

// defaultImportInterval is the SPEC default interval, used only when
// neither Config.Interval, a Flush nor the batch says otherwise.
const defaultImportInterval = 10 * time.Second

type imports struct {
	mu       sync.Mutex
	windows  []*importWindow // open intervals, oldest first
	horizon  time.Time       // start of the oldest open interval; zero until known
	interval time.Duration   // Config.Interval
	learned  time.Duration   // Flush's interval, when Config.Interval is zero
	drain    bool            // the next Flush takes every open interval

	now       func() time.Time
	seed      maphash.Seed
	shardMask uint64
	nShards   int
	stats     importStats
}

// importWindow is one global interval's imported state.
type importWindow struct {
	start time.Time
	// rw is read-held by every Import merging into the window and
	// write-held by the Flush that takes it.
	rw     sync.RWMutex
	shards []importShard
}

type importShard struct {
	mu     sync.Mutex
	series map[string]*metric.Series // by Key; state owned by the window
	_      cpu.CacheLinePad
}

type importStats struct {
	series         *telemetry.Counter
	seriesRejected *telemetry.Counter
	lateBatches    *telemetry.Counter
	futureBatches  *telemetry.Counter
	digestSamples  *telemetry.Counter
	openIntervals  *telemetry.Gauge
}

func (im *imports) init(cfg Config, shards int) {
	im.interval = max(cfg.Interval, 0)
	im.now = cfg.Now
	if im.now == nil {
		im.now = time.Now
	}
	im.seed = maphash.MakeSeed()
	im.nShards = shards
	im.shardMask = uint64(shards - 1)
	reg := cfg.Stats
	im.stats = importStats{
		series:         reg.Counter("import.series_merged"),
		seriesRejected: reg.Counter("import.series_rejected"),
		lateBatches:    reg.Counter("import.late_batches"),
		futureBatches:  reg.Counter("import.future_batches"),
		digestSamples:  reg.Counter("import.digest_samples"),
		openIntervals:  reg.Gauge("import.open_intervals"),
	}
}

// length is the global interval length; im.mu must be held.
func (im *imports) length(batch time.Duration) time.Duration {
	switch {
	case im.interval > 0:
		return im.interval
	case im.learned > 0:
		return im.learned
	case batch > 0:
		return batch
	}
	return defaultImportInterval
}

// Import merges series that a local aggregated in [intervalStart,
// intervalStart+interval) into the global interval containing
// intervalStart, to be flushed one interval later (see the bookkeeping
// above). It is safe for concurrent use with Push, Flush and other
// Imports, and returns once the series are merged.
//
// Series merge by Key: digests and sketches merge, counters add up, and
// of gauges the last to arrive wins.
//
// Every series must carry its Key (metric.SeriesKey), as the wire decoder
// and a local's flush build it. Import takes ownership of series: of its
// elements, their strings and tag slices, and their digests and sketches,
// which it may keep (the digest of a series new to the interval becomes
// the interval's) or consume (a digest merged into one already there is
// left shuffled). The caller must not use or change any of them after the
// call, nor pass one digest or sketch twice; wire.Decode's batches fit.
// Tags are read-only to Import too: it never changes a tag slice.
//
// A series that cannot merge (an unknown kind, a missing
// or non-finite payload, a digest the library refuses) is skipped and
// counted as import.series_rejected; wire.Decode rejects all of those
// before they get here.
func (a *Aggregator) Import(intervalStart time.Time, interval time.Duration, series []metric.Series) {
	im := &a.imports
	if len(series) == 0 {
		return
	}
	w := im.acquire(intervalStart, interval)
	defer w.rw.RUnlock()

	// Group the batch by shard, so that each shard is locked once: refs
	// holds shard<<32 | index, sorted. Shards are at most MaxShards and a
	// batch is far below 2^32 series.
	var merged, rejected, samples uint64
	refs := make([]uint64, 0, len(series))
	for i := range series {
		s := &series[i]
		if err := checkForward(s); err != nil {
			rejected++
			continue
		}
		sh := maphash.String(im.seed, s.Key) & im.shardMask
		refs = append(refs, sh<<32|uint64(i))
	}
	slices.Sort(refs)
	for j := 0; j < len(refs); {
		shard := refs[j] >> 32
		sh := &w.shards[shard]
		sh.mu.Lock()
		for ; j < len(refs) && refs[j]>>32 == shard; j++ {
			s := &series[uint32(refs[j])]
			var n uint64
			if s.Digest != nil {
				n = s.Digest.Count() // before the digest is adopted or consumed
			}
			if err := sh.merge(s); err != nil {
				rejected++
				continue
			}
			merged++
			samples += n
		}
		sh.mu.Unlock()
	}
	im.stats.series.Add(merged)
	if rejected > 0 {
		im.stats.seriesRejected.Add(rejected)
	}
	im.stats.digestSamples.Add(samples)
}

// acquire returns the open interval a batch starting at start merges
// into, read-locked.
func (im *imports) acquire(start time.Time, interval time.Duration) *importWindow {
	im.mu.Lock()
	defer im.mu.Unlock()
	g := im.length(interval)
	now := im.now()
	current := now.Truncate(g)
	if im.horizon.IsZero() {
		// Nothing flushed yet: what the locals are forwarding right now
		// is the interval before the current one.
		im.horizon = current.Add(-g)
	}
	s := start.Truncate(g)
	if s.After(current) {
		s = current
		im.stats.futureBatches.Inc()
	}
	if s.Before(im.horizon) {
		s = im.horizon
		im.stats.lateBatches.Inc()
	}
	w := im.window(s)
	w.rw.RLock() // before im.mu is released, so Flush cannot take w in between
	return w
}

// window finds or opens the interval starting at s; im.mu must be held.
func (im *imports) window(s time.Time) *importWindow {
	i, found := slices.BinarySearchFunc(im.windows, s, func(w *importWindow, s time.Time) int { return w.start.Compare(s) })
	if found {
		return im.windows[i]
	}
	if len(im.windows) >= maxOpenIntervals {
		// Flushes have stalled. Never move data into an interval that
		// flushes earlier than its own unless there is none later.
		if i < len(im.windows) {
			im.stats.lateBatches.Inc()
			return im.windows[i]
		}
		im.stats.futureBatches.Inc()
		return im.windows[len(im.windows)-1]
	}
	w := &importWindow{start: s, shards: make([]importShard, im.nShards)}
	for j := range w.shards {
		w.shards[j].series = make(map[string]*metric.Series)
	}
	im.windows = slices.Insert(im.windows, i, w)
	im.stats.openIntervals.Set(float64(len(im.windows)))
	return w
}

// merge folds s, which passed checkForward and has its Key, into the
// shard, whose lock the caller holds. s is owned (see Import): a new
// series adopts its digest if it has this instance's compression (every
// merged digest has), and a digest merging into one already there is
// consumed.
func (sh *importShard) merge(s *metric.Series) error {
	if cur := sh.series[s.Key]; cur != nil {
		return cur.Merge(s)
	}
	cur := &metric.Series{Key: s.Key, Name: s.Name, Tags: s.Tags, Kind: s.Kind}
	switch {
	case s.Kind.IsHistogram():
		if s.Digest.Compression() == metric.DigestCompression {
			cur.Digest = s.Digest
			sh.series[s.Key] = cur
			return nil
		}
		cur.Digest = metric.NewDigest()
	case s.Kind == metric.Set:
		// A set is never adopted: the sketch does not tell its precision,
		// and Merge refuses any but SetPrecision.
		cur.Set = metric.NewSet()
	}
	if err := cur.Merge(s); err != nil {
		return err
	}
	sh.series[s.Key] = cur
	return nil
}

// checkForward rejects a series that cannot merge.
func checkForward(s *metric.Series) error {
	switch {
	case s.Key == "":
		return fmt.Errorf("import series %q: no key", s.Name)
	case s.Name == "" || s.Kind <= metric.KindInvalid || s.Kind > metric.Set:
		return fmt.Errorf("import series %q: invalid kind %v or empty name", s.Name, s.Kind)
	case s.Kind.IsHistogram() && s.Digest == nil, s.Kind == metric.Set && s.Set == nil:
		return fmt.Errorf("import series %q: %v without its sketch", s.Name, s.Kind)
	case (s.Kind == metric.Counter || s.Kind == metric.Gauge) && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)):
		return fmt.Errorf("import series %q: value %v", s.Name, s.Value)
	}
	return nil
}

// DrainImports makes the next Flush also flush the imported intervals
// that are not due yet, instead of dropping them with the process. Call
// it on shutdown, once the import endpoint has stopped, before the final
// flush; the fleet percentiles of those intervals then cover what had
// arrived by then.
func (a *Aggregator) DrainImports() {
	a.imports.mu.Lock()
	a.imports.drain = true
	a.imports.mu.Unlock()
}

// flushImports takes the imported intervals due at now (those that
// started at least two intervals ago, or all of them after DrainImports)
// and adds their output to out: points on a global, forwarded state on a
// global that forwards onward. Flush calls it with flushMu held.
func (a *Aggregator) flushImports(now time.Time, interval time.Duration, out *Flushed, byKind *[kindCount]uint64) {
	im := &a.imports
	im.mu.Lock()
	if im.interval == 0 && interval > 0 {
		im.learned = interval
	}
	g := im.length(interval)
	dueBy := now.Add(-2 * g)
	var due []*importWindow
	open := im.windows[:0]
	for _, w := range im.windows {
		if im.drain || !w.start.After(dueBy) {
			due = append(due, w)
		} else {
			open = append(open, w)
		}
	}
	clear(im.windows[len(open):])
	im.windows = open
	// Whatever starts after dueBy is still open; from now on nothing
	// merges into an interval before that.
	horizon := dueBy.Truncate(g).Add(g)
	if im.drain {
		horizon = now.Truncate(g)
		im.drain = false
	}
	if horizon.After(im.horizon) {
		im.horizon = horizon
	}
	im.stats.openIntervals.Set(float64(len(open)))
	im.mu.Unlock()
	if len(due) == 0 {
		return
	}

	for _, w := range due {
		w.rw.Lock() // waits for the imports still merging into w
	}
	// Several due intervals (flushes that ran late, or a drain) flush
	// as one, later ones merged into the oldest: one point per series.
	first := due[0]
	for _, w := range due[1:] {
		for i := range w.shards {
			dst := first.shards[i].series
			for key, s := range w.shards[i].series {
				if cur := dst[key]; cur != nil {
					if err := cur.Merge(s); err != nil { // w is dropped after this flush
						im.stats.seriesRejected.Inc()
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
	for i := range first.shards {
		for _, s := range first.shards[i].series {
			all = append(all, s)
			byKind[s.Kind]++
		}
	}
	if a.forwarding {
		out.Forward = a.forwardImported(out.Forward, all)
		return
	}
	out.Points = a.importedPoints(out.Points, all, now.Unix(), span)
}

// importedPoints appends the fleet-wide points of merged series: the
// configured percentiles of digests (never aggregates: the locals flush
// min, max, count and the rest from their exact samples, and doing it
// here would count them twice), set estimates, summed counters as rates
// over span (the global interval, or the intervals flushed together)
// and gauges. None carries a host.
func (a *Aggregator) importedPoints(dst []metric.Point, all []*metric.Series, ts int64, span time.Duration) []metric.Point {
	n, tagSlots := 0, 0
	for _, s := range all {
		if s.Kind.IsHistogram() {
			n += len(a.percentiles)
		} else {
			n++
		}
		if len(a.extendTags) > 0 {
			tagSlots += len(s.Tags) + len(a.extendTags)
		}
	}
	dst = slices.Grow(dst, n)
	arena := make([]string, 0, tagSlots)
	seconds := span.Seconds()
	for _, s := range all {
		var tags []string
		arena, tags = a.outputTags(arena, s.Tags)
		base := metric.Point{Name: s.Name, Tags: tags, Type: metric.GaugePoint, Timestamp: ts}
		switch s.Kind {
		case metric.Counter:
			pt := base
			pt.Type, pt.Value, pt.Interval = metric.RatePoint, s.Value/seconds, span
			dst = append(dst, pt)
		case metric.Gauge:
			pt := base
			pt.Value = s.Value
			dst = append(dst, pt)
		case metric.Set:
			pt := base
			pt.Value = float64(s.Set.Estimate())
			dst = append(dst, pt)
		default:
			for i, p := range a.percentiles {
				pt := base
				pt.Name, pt.Value = s.Name+a.pctSuffixes[i], s.Digest.Quantile(p)
				dst = append(dst, pt)
			}
		}
	}
	return dst
}

// forwardImported hands merged series upstream on a chained tier, merged
// with this instance's own forwarded series of the same Key. Of a gauge,
// the own value wins: it was set in the interval just ended, the imported
// one an interval earlier.
func (a *Aggregator) forwardImported(own []metric.Series, all []*metric.Series) []metric.Series {
	var index map[string]int
	if len(own) > 0 {
		index = make(map[string]int, len(own))
		for i := range own {
			index[own[i].Key] = i
		}
	}
	for _, s := range all {
		i, ok := index[s.Key]
		if !ok {
			own = append(own, *s)
			continue
		}
		if s.Kind == metric.Gauge {
			continue
		}
		if err := own[i].Merge(s); err != nil { // s's window is dropped after this flush
			a.imports.stats.seriesRejected.Inc()
		}
	}
	return own
}
