package aggregate

import (
	"bytes"
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
	// table maps a sample's raw key (kind, name, '|', tags) to the
	// series it resolves to; cold holds what only resolving a slot
	// needs, indexed by tableEntry.ref (cold[0] is unused).
	table    seriesTable
	cold     []coldSeries
	freeCold []int32
	// maxSeries is maxCachedSeries but in tests.
	maxSeries int

	// Per-batch scratch, kept between calls so a steady stream of
	// batches allocates nothing.
	entries  []pushEntry
	raw      []byte   // the batch's raw keys, back to back
	order    []int32  // indexes into entries, grouped by shard
	perShard []int32  // per shard: entry count, then the next free position in order
	touched  []uint32 // the shards with entries, in first-touch order
	shed     []int32  // cold refs of the series shed in this batch
	// touch keeps the compiler from dropping the loads that only start
	// cache misses early.
	touch uint64

	// lastRate and lastWeight memoize sampleWeight: a batch usually
	// repeats one rate.
	lastRate   float32
	lastWeight float64

	// unlimited makes the series limits let this Writer's new series in
	// (counted, never shed): it carries the process's own measurements,
	// which must get through a flood above all.
	unlimited bool
}

// coldSeries is what a Writer keeps of a series besides its table entry.
type coldSeries struct {
	hash    uint64 // of the canonical key: the shard's index and shard choice
	rawHash uint64 // of the raw key: to find the table entry again
	// meta is the series' identity: the shard's own once the slot is
	// known, or the one this Writer resolved before it was.
	meta *meta
	shed bool // removed from the table at the end of this batch
}

// pushEntry is one sample of a batch, resolved outside the locks.
type pushEntry struct {
	hash   uint64 // of the raw key
	rawOff uint32 // the raw key is Writer.raw[rawOff:rawOff+rawLen]
	rawLen uint32
	pos    int32 // the series' position in the table
	shard  uint32
	sample int32
	weight float64 // 1/rate
}

// maxCachedSeries bounds a Writer's table. Past it the table starts over:
// a client that puts a request id in a tag costs a resolution per sample,
// as without a cache, instead of memory without bound. 2^18 series cover
// the series of a busy host many times and cost ~40 MB at worst.
const maxCachedSeries = 1 << 18

// NewWriter returns a Writer for one goroutine.
func (a *Aggregator) NewWriter() *Writer {
	return &Writer{
		a:          a,
		res:        resolver{hostname: a.hostname, extendTags: a.extendTags, extendKeys: a.extendKeys},
		cold:       make([]coldSeries, 1),
		maxSeries:  maxCachedSeries,
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
//
// With many series nearly every lookup misses the CPU caches, so the
// batch goes through in passes, each short enough that the processor has
// many samples' loads in flight at once instead of waiting for one after
// the other: hash every raw key (touching its table entry), then look
// every entry up, then update the slots shard by shard.
func (w *Writer) Push(samples []metric.Sample) {
	if len(samples) == 0 {
		return
	}
	a := w.a
	w.entries = w.entries[:0]
	w.touched = w.touched[:0]
	raw := w.raw[:0]
	dropped := 0
	var touch uint64
	for i := range samples {
		s := &samples[i]
		if !aggregatable(s) {
			dropped++
			continue
		}
		off := len(raw)
		raw = appendRawKey(raw, s)
		hash := maphash.Bytes(a.seed, raw[off:])
		if len(w.table.entries) > 0 {
			// Start the load of the series' entry; the lookup pass
			// finds it on its way.
			touch += w.table.entries[hash&w.table.mask].hash
		}
		weight := 1.0
		if s.Rate != 1 {
			if s.Rate != w.lastRate {
				w.lastRate, w.lastWeight = s.Rate, sampleWeight(s.Rate)
			}
			weight = w.lastWeight
		}
		w.entries = append(w.entries, pushEntry{hash: hash, rawOff: uint32(off), rawLen: uint32(len(raw) - off), sample: int32(i), weight: weight})
	}
	w.raw = raw
	w.touch = touch
	if dropped > 0 {
		a.stats.samplesDropped.Add(uint64(dropped))
	}
	w.lookup(samples)

	// Group entries by shard with a counting sort over the shards the
	// batch touched (a datagram's batch touches a few of hundreds); it is
	// stable, so a batch's gauge samples keep their order and the last one
	// wins.
	for i := range w.entries {
		sh := w.entries[i].shard
		if w.perShard[sh] == 0 {
			w.touched = append(w.touched, sh)
		}
		w.perShard[sh]++
	}
	pos := int32(0)
	for _, sh := range w.touched {
		n := w.perShard[sh]
		w.perShard[sh] = pos
		pos += n
	}
	w.order = slices.Grow(w.order[:0], len(w.entries))[:len(w.entries)]
	for i := range w.entries {
		sh := w.entries[i].shard
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
	w.forgetShed()
}

// appendRawKey appends the key a Writer files s's series under: kind,
// name, '|' and the tags as sent.
func appendRawKey(dst []byte, s *metric.Sample) []byte {
	dst = append(dst, byte(s.Kind))
	dst = append(dst, s.Name...)
	dst = append(dst, '|')
	return append(dst, s.Tags...)
}

// lookup finds every entry's series in the table, resolving and filing
// the series new to this Writer, and sets the entries' pos and shard.
func (w *Writer) lookup(samples []metric.Sample) {
	t := &w.table
	if misses := w.findAll(); misses > 0 {
		moved := false
		if t.used+misses > w.maxSeries || len(t.keys)+len(w.raw) > maxTableKeyBytes {
			w.forgetAll()
			moved = true
		}
		if t.reserve(misses) || moved {
			w.findAll() // positions moved
		}
		for i := range w.entries {
			e := &w.entries[i]
			if e.pos >= 0 {
				continue
			}
			raw := w.raw[e.rawOff : e.rawOff+e.rawLen]
			p := t.find(e.hash, raw) // an earlier sample of this batch may have filed it
			if p < 0 {
				p = w.resolve(&samples[e.sample], e.hash, raw)
			}
			e.pos = int32(p)
		}
	}
	for i := range w.entries {
		e := &w.entries[i]
		e.shard = t.entries[e.pos].shard
	}
}

// findAll sets every entry's pos, or -1 for the series the table does not
// hold, and returns how many it does not. Its loop is short, and each
// probe depends on nothing before it, so that the probes' cache misses
// overlap.
func (w *Writer) findAll() int {
	t := &w.table
	if len(t.entries) == 0 {
		for i := range w.entries {
			w.entries[i].pos = -1
		}
		return len(w.entries)
	}
	// First every probe, starting the loads of the keys to compare (the
	// second miss of a sample), then every comparison.
	var touch byte
	for i := range w.entries {
		e := &w.entries[i]
		p := t.probe(e.hash, e.hash)
		e.pos = int32(p)
		if te := &t.entries[p]; te.ref != 0 {
			touch += t.keys[te.keyOff]
		}
	}
	w.touch += uint64(touch)
	misses := 0
	for i := range w.entries {
		e := &w.entries[i]
		raw := w.raw[e.rawOff : e.rawOff+e.rawLen]
		te := &t.entries[e.pos]
		if te.ref != 0 && bytes.Equal(t.key(te), raw) {
			continue
		}
		if te.ref != 0 { // a hash collision: look further
			if q := t.find(e.hash, raw); q >= 0 {
				e.pos = int32(q)
				continue
			}
		}
		e.pos = -1
		misses++
	}
	return misses
}

// pushShard applies one shard's share of a batch under a single lock.
func (w *Writer) pushShard(sh *shard, samples []metric.Sample, order []int32) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	iv := sh.limits
	for _, ei := range order {
		e := &w.entries[ei]
		te := &w.table.entries[e.pos]
		if i := w.slotOf(sh, te, iv); i != noSlot {
			sh.addSample(i, &samples[e.sample], e.weight, iv)
		} else if c := &w.cold[te.ref]; !c.shed {
			// A shed series is not remembered: under a flood of new
			// series the table would fill with the flood, and what it
			// costs is memory the limits are there to bound.
			c.shed = true
			w.shed = append(w.shed, te.ref)
		}
	}
}

// slotOf returns the slot of te's series in sh, whose lock the caller
// holds, making it if the series is new to the shard and the interval's
// limits admit it. A series they refuse is shed: noSlot, its sample
// counted.
func (w *Writer) slotOf(sh *shard, te *tableEntry, iv *cardinality.Interval) int32 {
	if te.slot != noSlot && sh.slots[te.slot].gen == te.gen {
		return te.slot
	}
	c := &w.cold[te.ref]
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
	te.slot, te.gen, c.meta = i, sh.slots[i].gen, sh.metas[i]
	return i
}

// forgetShed removes the batch's shed series from the table, now that no
// entry's position is needed any more.
func (w *Writer) forgetShed() {
	for _, ref := range w.shed {
		c := &w.cold[ref]
		t := &w.table
		for p := c.rawHash & t.mask; t.entries[p].ref != 0; p = (p + 1) & t.mask {
			if t.entries[p].ref == ref {
				t.remove(p)
				break
			}
		}
		*c = coldSeries{}
		w.freeCold = append(w.freeCold, ref)
	}
	w.shed = w.shed[:0]
}

// forgetAll empties the table: see maxCachedSeries.
func (w *Writer) forgetAll() {
	w.table.reset()
	clear(w.cold)
	w.cold = w.cold[:1]
	w.freeCold = w.freeCold[:0]
}

// resolve builds the identity of a sample's series and files it under its
// raw key and raw hash, in room reserved; it returns the table position.
func (w *Writer) resolve(s *metric.Sample, rawHash uint64, raw []byte) int {
	a := w.a
	id := w.res.resolve(s.Kind, s.Name, s.Tags)
	hash := maphash.String(a.seed, id.key)
	c := coldSeries{hash: hash, rawHash: rawHash, meta: a.newMeta(id)}
	var ref int32
	if n := len(w.freeCold); n > 0 {
		ref = w.freeCold[n-1]
		w.freeCold = w.freeCold[:n-1]
		w.cold[ref] = c
	} else {
		ref = int32(len(w.cold))
		w.cold = append(w.cold, c)
	}
	return w.table.insert(rawHash, raw, tableEntry{slot: noSlot, shard: uint32(hash & a.shardMask), ref: ref})
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
