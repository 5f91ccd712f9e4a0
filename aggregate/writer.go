package aggregate

import (
	"hash/maphash"
	"math"
	"slices"

	"github.com/veneur-lite/veneur-lite/internal/cardinality"
	"github.com/veneur-lite/veneur-lite/metric"
)

// Writer pushes one goroutine's batches into the aggregator: each
// listener reader owns one. It is not safe for concurrent use; many
// Writers push concurrently.
//
// A Writer remembers what every name and tag section it has seen resolves
// to (the series' canonical key, its hash and shard, and the slot that
// holds it), so that splitting, sorting and hashing the tags happen once
// per series, not once per sample, and a sample usually reaches its slot
// without a map lookup in the shard.
type Writer struct {
	a   *Aggregator
	res resolver
	// cache maps a sample's kind, name and raw tag bytes (rawKey) to the
	// series they resolve to.
	cache map[string]*cached
	raw   []byte // rawKey scratch

	// Per-batch scratch, kept between calls so a steady stream of
	// batches allocates nothing.
	entries  []pushEntry
	order    []int32  // indexes into entries, grouped by shard
	perShard []int32  // per shard: entry count, then the next free position in order
	touched  []uint32 // the shards with entries, in first-touch order

	// lastRate and lastWeight memoize sampleWeight: a batch usually
	// repeats one rate.
	lastRate   float32
	lastWeight float64

	// unlimited makes the series limits let this Writer's new series in
	// (counted, never shed): it carries the process's own measurements,
	// which must get through a flood above all.
	unlimited bool
}

// cached is what one raw name and tag section resolves to.
type cached struct {
	hash  uint64
	shard uint32
	// slot and gen locate the series' slot, valid while the slot's gen
	// is still gen (the series was not dropped since).
	slot int32
	gen  uint32
	// meta is the series' identity: the shard's own once the slot is
	// known, or the one this Writer resolved before it was.
	meta *meta
	// raw is the cache key this entry is filed under.
	raw string
}

// pushEntry is one sample of a batch, resolved outside the locks.
type pushEntry struct {
	c      *cached
	sample int32
	weight float64 // 1/rate
}

// maxCachedSeries bounds a Writer's cache. Past it the cache starts over:
// a client that puts a request id in a tag costs a resolution per sample,
// as without a cache, instead of memory without bound. 2^18 entries cover
// the series of a busy host many times and cost ~40 MB at worst.
const maxCachedSeries = 1 << 18

// NewWriter returns a Writer for one goroutine.
func (a *Aggregator) NewWriter() *Writer {
	return &Writer{
		a:          a,
		res:        resolver{hostname: a.hostname, extendTags: a.extendTags, extendKeys: a.extendKeys},
		cache:      make(map[string]*cached),
		perShard:   make([]int32, len(a.shards)),
		lastWeight: 1,
		lastRate:   1,
	}
}

// Push aggregates samples into the current interval. It copies what it
// keeps: samples may point into a read buffer that is reused once Push
// returns.
//
// Everything per sample except the update itself (finding the series,
// weighing the sample) happens before any lock is taken; then each
// shard's lock is taken once for all of the batch's samples in that shard.
func (w *Writer) Push(samples []metric.Sample) {
	if len(samples) == 0 {
		return
	}
	a := w.a
	w.entries = w.entries[:0]
	w.touched = w.touched[:0]
	dropped := 0
	for i := range samples {
		s := &samples[i]
		if !aggregatable(s) {
			dropped++
			continue
		}
		raw := append(w.raw[:0], byte(s.Kind))
		raw = append(raw, s.Name...)
		raw = append(raw, '|')
		raw = append(raw, s.Tags...)
		w.raw = raw
		c := w.cache[unsafeString(raw)] // looked up without a copy
		if c == nil {
			c = w.resolve(s)
		}
		weight := 1.0
		if s.Rate != 1 {
			if s.Rate != w.lastRate {
				w.lastRate, w.lastWeight = s.Rate, sampleWeight(s.Rate)
			}
			weight = w.lastWeight
		}
		w.entries = append(w.entries, pushEntry{c: c, sample: int32(i), weight: weight})
		if w.perShard[c.shard] == 0 {
			w.touched = append(w.touched, c.shard)
		}
		w.perShard[c.shard]++
	}
	if dropped > 0 {
		a.stats.samplesDropped.Add(uint64(dropped))
	}

	// Group entries by shard with a counting sort over the shards the
	// batch touched (a datagram's batch touches a few of hundreds); it is
	// stable, so a batch's gauge samples keep their order and the last one
	// wins.
	pos := int32(0)
	for _, sh := range w.touched {
		n := w.perShard[sh]
		w.perShard[sh] = pos
		pos += n
	}
	w.order = slices.Grow(w.order[:0], len(w.entries))[:len(w.entries)]
	for i := range w.entries {
		sh := w.entries[i].c.shard
		w.order[w.perShard[sh]] = int32(i)
		w.perShard[sh]++
	}
	// perShard[sh] now holds the end of shard sh's run; touched lists the
	// runs in order.
	start := int32(0)
	for _, sh := range w.touched {
		end := w.perShard[sh]
		w.pushShard(&a.shards[sh], samples, w.order[start:end])
		w.perShard[sh] = 0
		start = end
	}
}

// pushShard applies one shard's share of a batch under a single lock.
func (w *Writer) pushShard(sh *shard, samples []metric.Sample, order []int32) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	iv := sh.limits
	for _, ei := range order {
		e := &w.entries[ei]
		if i := w.slotOf(sh, e.c, iv); i != noSlot {
			sh.addSample(i, &samples[e.sample], e.weight, iv)
		} else if e.c.raw != "" {
			// A shed series is not remembered: under a flood of new
			// series the cache would fill with the flood, and what it
			// costs is memory the limits are there to bound.
			delete(w.cache, e.c.raw)
			e.c.raw = ""
		}
	}
}

// slotOf returns the slot of c's series in sh, whose lock the caller
// holds, making it if the series is new to the shard and the interval's
// limits admit it. A series they refuse is shed: noSlot, its sample
// counted.
func (w *Writer) slotOf(sh *shard, c *cached, iv *cardinality.Interval) int32 {
	if c.slot != noSlot && sh.slots[c.slot].gen == c.gen {
		return c.slot
	}
	i := sh.find(c.hash, c.meta.key)
	if i == noSlot {
		if w.unlimited {
			iv.Count(c.meta.name)
		} else if ok, reason := iv.Admit(c.meta.name); !ok {
			iv.Shed(reason, c.meta.name, 1)
			return noSlot
		}
		i = sh.add(c.hash, c.meta)
	}
	c.slot, c.gen, c.meta = i, sh.slots[i].gen, sh.metas[i]
	return i
}

// resolve builds the identity of a sample's series and caches it.
func (w *Writer) resolve(s *metric.Sample) *cached {
	a := w.a
	id := w.res.resolve(s.Kind, s.Name, s.Tags)
	hash := maphash.String(a.seed, id.key)
	c := &cached{hash: hash, shard: uint32(hash & a.shardMask), slot: noSlot, meta: a.newMeta(id)}
	if len(w.cache) >= maxCachedSeries {
		clear(w.cache)
	}
	c.raw = string(w.raw)
	w.cache[c.raw] = c
	return c
}

// newMeta returns the flush-time description of a series new to this
// instance.
func (a *Aggregator) newMeta(id identity) *meta {
	m := &meta{identity: id, forward: a.forwards(id.kind, id.scope)}
	if id.kind.IsHistogram() {
		m.names = a.histogramNames(id.name, !m.forward)
	}
	return m
}

// PushEvents queues events and service checks for the next flush; see
// Aggregator.PushEvents.
func (w *Writer) PushEvents(events []metric.Event, checks []metric.ServiceCheck) {
	w.a.PushEvents(events, checks)
}

// aggregatable rejects what the parser should already have rejected, so a
// bad sample from any source can't poison a series (a NaN would make a
// counter NaN for the rest of the interval).
func aggregatable(s *metric.Sample) bool {
	if s.Kind <= metric.KindInvalid || s.Kind > metric.KindMax || len(s.Name) == 0 {
		return false
	}
	return s.Kind == metric.Set || !(math.IsNaN(s.Value) || math.IsInf(s.Value, 0))
}

// sampleWeight returns 1/rate for a sample rate in (0,1]; any other rate
// counts as 1 (docs/input.md, "Sample rates").
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
