package aggregate

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"golang.org/x/sys/cpu"
)

// Config is what New needs. The config package fills it from the file.
type Config struct {
	// Shards is the number of independently locked series maps
	// (num_workers). It is rounded up to a power of two, at least 1, so a
	// shard is picked with a mask.
	Shards int
	// Hostname is the host of locally flushed series, events and checks
	// that don't name their own.
	Hostname string
	// ExtendTags are added to every flushed series, event and check. An
	// extend tag replaces a tag with the same key (the text before ':'),
	// as in Veneur, so "env:prod" overrides a client's "env:dev".
	ExtendTags []string
	// Percentiles are flushed for histogram series as
	// name.<PercentileName(p)>; each must be in (0,1).
	Percentiles []float64
	// Aggregates are flushed for histogram series as name.<aggregate>.
	Aggregates []Aggregate
	// Forwarding is true on a local instance (forward_address set):
	// histogram digests and sets not marked veneurlocalonly, and counters
	// and gauges marked veneurglobalonly, go to Flushed.Forward instead of
	// being flushed here (histogram aggregates are still flushed here).
	Forwarding bool
	// Stats receives the aggregator's self-measurements; nil measures
	// nothing.
	Stats *telemetry.Registry
	// Interval is the flush interval (the interval key). A global needs it
	// to place each imported batch into the global interval that contains
	// the batch's interval before any Flush has run. Zero means the
	// interval Flush is called with (and, before the first Flush, the
	// batch's own interval).
	Interval time.Duration
	// Now is the clock Import reads to bound batches from the future and
	// to start its interval bookkeeping; nil means time.Now.
	Now func() time.Time
}

// MaxShards bounds Config.Shards: more shards than this only cost memory.
// The config package checks num_workers against it.
const MaxShards = 1 << 12

// Aggregator accumulates samples into per-interval series. All methods are
// safe for concurrent use; concurrent Flush calls run one after the other.
type Aggregator struct {
	shards    []shard
	shardMask uint64
	seed      maphash.Seed

	hostname    string
	extendTags  []string // sorted, deduplicated
	extendKeys  []string // the key of each extend tag, for overriding
	percentiles []float64
	pctSuffixes []string    // "." + PercentileName(p), parallel to percentiles
	aggregates  []Aggregate // configured, deduplicated, in flush order
	forwarding  bool

	scratch sync.Pool // *pushScratch

	eventsMu sync.Mutex
	events   []metric.Event
	checks   []metric.ServiceCheck

	flushMu sync.Mutex // serializes Flush
	stats   aggregatorStats

	imports imports // forwarded state merged on a global (import.go)
}

// shard is one lock and the series behind it. Shards sit side by side in an
// array; the padding keeps one shard's lock and map pointer off the cache
// line of its neighbour, so readers pushing to different shards don't
// contend on the hardware either.
type shard struct {
	mu    sync.Mutex
	state intervalState
	_     cpu.CacheLinePad
}

// intervalState is everything a shard has gathered during one interval.
// Flush takes it whole and installs a fresh one.
type intervalState struct {
	// series is keyed by the maphash of the canonical key (appendSeriesKey),
	// computed once per sample outside the lock and reused to pick the
	// shard: the map then hashes 8 bytes instead of the whole key again.
	// Series whose keys collide on 64 bits chain through series.next.
	series map[uint64]*series
	count  int // series in the map, chains included
	// points and forwarded count what these series will produce at flush,
	// kept as series are created, so Flush allocates its output exactly.
	points    int
	forwarded int
	// tagSlots bounds the tag strings the points need when extend tags
	// are configured, so Flush carves every Point.Tags from one array.
	tagSlots int
}

// New validates cfg and returns an Aggregator ready for Push.
func New(cfg Config) (*Aggregator, error) {
	a := &Aggregator{
		hostname:   cfg.Hostname,
		forwarding: cfg.Forwarding,
		seed:       maphash.MakeSeed(),
		stats:      newAggregatorStats(cfg.Stats),
	}

	n := max(cfg.Shards, 1)
	if n > MaxShards {
		return nil, fmt.Errorf("shards %d: at most %d", cfg.Shards, MaxShards)
	}
	n = 1 << bits.Len(uint(n-1)) // next power of two
	a.shards = make([]shard, n)
	a.shardMask = uint64(n - 1)
	for i := range a.shards {
		a.shards[i].state.series = make(map[uint64]*series)
	}

	seenPct := make(map[string]bool, len(cfg.Percentiles))
	for _, p := range cfg.Percentiles {
		if err := ValidatePercentile(p); err != nil {
			return nil, err
		}
		suffix := "." + PercentileName(p)
		if seenPct[suffix] {
			return nil, fmt.Errorf("percentile %v: listed twice", p)
		}
		seenPct[suffix] = true
		a.percentiles = append(a.percentiles, p)
		a.pctSuffixes = append(a.pctSuffixes, suffix)
	}

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

	a.imports.init(cfg, len(a.shards))
	a.scratch.New = func() any { return &pushScratch{perShard: make([]int32, len(a.shards)+1), lastWeight: sampleWeight(0)} }
	return a, nil
}

// pushScratch is the per-call working memory of Push, pooled so that a
// steady stream of batches allocates nothing.
type pushScratch struct {
	keys     []byte      // the batch's canonical keys, back to back
	entries  []pushEntry // one per accepted sample, in batch order
	order    []int32     // indexes into entries, grouped by shard
	perShard []int32     // entry count per shard, then start offsets
	tags     []tagSpan   // tag split scratch for appendSeriesKey

	// lastRate and lastWeight memoize sampleWeight: a batch usually
	// repeats one rate.
	lastRate   float32
	lastWeight float64
}

// pushEntry is one sample, canonicalized and routed outside the locks.
type pushEntry struct {
	hash             uint64 // maphash of the key
	keyStart, keyEnd uint32
	sample           int32
	weight           float64 // 1/rate
}

// maxScratchKeyBytes keeps a single huge batch from pinning a huge buffer
// in the pool forever.
const maxScratchKeyBytes = 1 << 20

// Push aggregates samples into the current interval. It is safe for
// concurrent use. It copies what it keeps: samples may point into a read
// buffer that is reused once Push returns.
//
// All per-sample work except the map update (splitting and sorting tags,
// building the key, hashing, weighing) happens before any lock is taken;
// then each shard's lock is taken once for all of the batch's samples in
// that shard.
func (a *Aggregator) Push(samples []metric.Sample) {
	if len(samples) == 0 {
		return
	}
	sc := a.scratch.Get().(*pushScratch)
	sc.keys = sc.keys[:0]
	sc.entries = sc.entries[:0]
	clear(sc.perShard)

	dropped := 0
	for i := range samples {
		s := &samples[i]
		if !aggregatable(s) {
			dropped++
			continue
		}
		start := len(sc.keys)
		sc.keys, sc.tags = appendSeriesKey(sc.keys, s, a.hostname, sc.tags)
		hash := maphash.Bytes(a.seed, sc.keys[start:])
		shardIdx := hash & a.shardMask
		weight := 1.0
		if s.Rate != 1 {
			if s.Rate != sc.lastRate {
				sc.lastRate, sc.lastWeight = s.Rate, sampleWeight(s.Rate)
			}
			weight = sc.lastWeight
		}
		sc.entries = append(sc.entries, pushEntry{
			hash: hash, keyStart: uint32(start), keyEnd: uint32(len(sc.keys)),
			sample: int32(i), weight: weight,
		})
		sc.perShard[shardIdx+1]++
	}
	if dropped > 0 {
		a.stats.samplesDropped.Add(uint64(dropped))
	}

	// Group entries by shard with a counting sort; it is stable, so a
	// batch's gauge samples keep their order and the last one wins.
	for i := 1; i < len(sc.perShard); i++ {
		sc.perShard[i] += sc.perShard[i-1]
	}
	sc.order = slices.Grow(sc.order[:0], len(sc.entries))[:len(sc.entries)]
	next := sc.perShard[:len(sc.perShard)-1] // next free slot per shard
	for i := range sc.entries {
		sh := sc.entries[i].hash & a.shardMask
		sc.order[next[sh]] = int32(i)
		next[sh]++
	}
	// next[sh] now holds the end of shard sh's run, and sh's start is
	// the end of sh-1's.
	start := int32(0)
	for sh := range a.shards {
		end := next[sh]
		if end > start {
			a.pushShard(&a.shards[sh], samples, sc, sc.order[start:end])
		}
		start = end
	}

	if cap(sc.keys) <= maxScratchKeyBytes {
		a.scratch.Put(sc)
	}
}

// pushShard applies one shard's share of a batch under a single lock.
func (a *Aggregator) pushShard(sh *shard, samples []metric.Sample, sc *pushScratch, order []int32) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := &sh.state
	for _, ei := range order {
		e := &sc.entries[ei]
		key := sc.keys[e.keyStart:e.keyEnd]
		s := &samples[e.sample]
		ser := st.series[e.hash]
		for ser != nil && ser.key != string(key) { // compared in place, not allocated
			ser = ser.next
		}
		if ser == nil {
			ser = a.newSeries(st, e.hash, string(key))
		}
		ser.add(s, e.weight)
	}
}

// newSeries creates and registers a series, counting what it will flush.
func (a *Aggregator) newSeries(st *intervalState, hash uint64, key string) *series {
	ser := newSeries(key, a.hostname)
	ser.forward = a.forwards(ser.kind, scope(key[1]))
	ser.next = st.series[hash]
	st.series[hash] = ser
	st.count++
	if n := a.localPoints(ser.kind, ser.forward); n > 0 {
		st.points += n
		if len(a.extendTags) > 0 {
			st.tagSlots += len(ser.tags) + len(a.extendTags)
		}
	}
	if ser.forward {
		st.forwarded++
	}
	return ser
}

// add folds one sample into the series; weight is 1/rate.
func (ser *series) add(s *metric.Sample, weight float64) {
	switch ser.kind {
	case metric.Counter:
		ser.value += s.Value * weight
	case metric.Gauge:
		ser.value = s.Value
	case metric.Set:
		ser.set.Insert(s.SetMember)
	default: // histogram kinds
		h := ser.hist
		h.min = min(h.min, s.Value)
		h.max = max(h.max, s.Value)
		h.sum += s.Value * weight
		h.count += weight
		// The digest only takes integer weights; the count above stays
		// exact. The error cases (NaN, zero weight) are excluded already.
		_ = h.digest.AddWeighted(s.Value, max(uint64(math.Round(weight)), 1))
	}
}

// aggregatable rejects what the parser should already have rejected, so a
// bad sample from any source can't poison a series (a NaN would make a
// counter NaN for the rest of the interval).
func aggregatable(s *metric.Sample) bool {
	if s.Kind <= metric.KindInvalid || s.Kind > metric.Set || len(s.Name) == 0 {
		return false
	}
	return s.Kind == metric.Set || !(math.IsNaN(s.Value) || math.IsInf(s.Value, 0))
}

// sampleWeight returns 1/rate for a sample rate in (0,1]; any other rate
// counts as 1 (SPEC §2).
//
// Sample.Rate is a float32, and float32(0.1) is 0.100000001…, whose inverse
// is not 10. The client wrote a short decimal, so recover it first: the
// shortest k/10^d that rounds to the same float32, which is exactly the
// float64 the client meant. 1000 samples at @0.1 then count 10,000, not
// 9,999.99985.
func sampleWeight(rate float32) float64 {
	if !(rate > 0 && rate < 1) { // NaN fails too
		return 1
	}
	r := float64(rate)
	for scale := 10.0; scale <= 1e9; scale *= 10 {
		if dec := math.Round(r*scale) / scale; float32(dec) == rate {
			return 1 / dec
		}
	}
	return 1 / r
}

// forwards reports whether a series goes upstream (SPEC §3).
func (a *Aggregator) forwards(k metric.Kind, sc scope) bool {
	if !a.forwarding {
		return false
	}
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
			return len(a.aggregates)
		}
		return len(a.aggregates) + len(a.percentiles)
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

// tagKey returns the key of a "key:value" tag, or the whole tag.
func tagKey(tag string) string {
	if i := strings.IndexByte(tag, ':'); i >= 0 {
		return tag[:i]
	}
	return tag
}

// overridden reports whether an extend tag replaces tag: whether tag is
// "<key>" or "<key>:…" for the key of an extend tag.
func (a *Aggregator) overridden(tag string) bool {
	for _, k := range a.extendKeys {
		if strings.HasPrefix(tag, k) && (len(tag) == len(k) || tag[len(k)] == ':') {
			return true
		}
	}
	return false
}

// outputTags returns the tags to flush for sorted series tags: those not
// overridden by an extend tag, plus the extend tags, sorted. Without extend
// tags it returns tags itself, which the caller must then not modify.
//
// The result is appended to arena, which is returned grown, so that a
// flush allocates one array for the tags of all its points. The result's
// capacity ends at its length: appending to it can't overwrite a
// neighbour's tags.
func (a *Aggregator) outputTags(arena, tags []string) (grown, out []string) {
	if len(a.extendTags) == 0 {
		return arena, tags
	}
	start := len(arena)
	ext := a.extendTags
	for _, tag := range tags {
		if a.overridden(tag) {
			continue
		}
		for len(ext) > 0 && ext[0] < tag {
			arena = append(arena, ext[0])
			ext = ext[1:]
		}
		arena = append(arena, tag)
	}
	arena = append(arena, ext...)
	return arena, arena[start:len(arena):len(arena)]
}
