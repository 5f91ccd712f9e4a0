package aggregate

import (
	"sync"
	"unsafe"

	"github.com/axiomhq/hyperloglog"
	"golang.org/x/sys/cpu"

	"github.com/veneur-lite/veneur-lite/internal/cardinality"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sketch"
	"github.com/veneur-lite/veneur-lite/sketch/agentsketch"
)

// shard is one lock and the series behind it. Series live across
// intervals: a slot is made when a series first appears and is reused
// every interval it keeps receiving samples, so the steady state builds
// nothing. A series that got no sample in an interval is dropped at the
// flush that ends it, so idle series cost no memory past one interval.
//
// The per-sample state sits in slots, an array without pointers that the
// garbage collector does not scan; what a flush needs besides (name, tags,
// host, digests, sketches) hangs off the series' meta, made once.
type shard struct {
	mu sync.Mutex
	// index maps a key's hash to its slot; slots whose keys share a hash
	// chain through slot.next. Neither holds a pointer.
	index map[uint64]int32
	slots []slot
	metas []*meta // parallel to slots; nil for a free slot
	// live lists the slots that got a sample in the current interval.
	live []int32
	free []int32 // slots to reuse
	// interval counts this shard's flushes; slot.seen compares to it.
	interval uint32
	// limits counts the series of the interval this shard is in. take
	// moves it to the next interval's together with interval, under mu,
	// so that a sample is counted against the limits of the interval it is
	// flushed with, even when it arrives while a flush is taking shards.
	limits *cardinality.Interval
	_      cpu.CacheLinePad
}

// slot is one series' state for the current interval.
type slot struct {
	hash  uint64
	value float64 // Counter: weighted sum; Gauge: last value
	next  int32   // the next slot with the same hash, or -1
	// gen changes whenever the slot is freed, so that a Writer's cached
	// slot number is trusted only while the series still holds it.
	gen  uint32
	seen uint32 // the interval of the last sample
	// samples counts the interval's samples, for Aggregator.Stats.
	samples uint32
	kind    metric.Kind
}

// meta is what a series keeps besides its per-sample state: its identity
// and, for the interval under way, its sketches. The identity never
// changes; hist and set are handed to the flush with the interval.
type meta struct {
	identity
	forward bool // its state goes to the global tier (Flushed.Forward)
	// names holds, back to back, every point name of a histogram series
	// (name.min, name.max, …, name.50percentile, …), made once so that
	// flushes cut them instead of concatenating.
	names string
	hist  *histogram
	set   *hyperloglog.Sketch
}

// histogram is the state of a histogram series in one interval. The
// digest keeps min, max and the weighted count exactly beside its
// centroids, and answers a series of few distinct values exactly; only
// larger series' percentiles are estimates. A d series has the Agent's
// sketch instead (dist, and an unused digest): what its outputs come
// from, what sinks that take sketches ship and what it forwards.
type histogram struct {
	sum    float64 // weighted by 1/rate
	digest sketch.Digest
	dist   *agentsketch.Sketch
}

// The histogram outputs, from whichever state the series keeps.

func (h *histogram) min() float64 {
	if h.dist != nil {
		return h.dist.Min()
	}
	return h.digest.Min()
}

func (h *histogram) max() float64 {
	if h.dist != nil {
		return h.dist.Max()
	}
	return h.digest.Max()
}

// count is the weighted count (a d series': 1/rate truncated, as the Agent).
func (h *histogram) count() float64 {
	if h.dist != nil {
		return float64(h.dist.Count())
	}
	return h.digest.Count()
}

func (h *histogram) avg() float64 {
	if h.dist != nil {
		return h.dist.Avg()
	}
	return h.sum / h.digest.Count()
}

// Quantile makes a histogram the metric.Quantiler its percentiles read.
func (h *histogram) Quantile(q float64) float64 {
	if h.dist != nil {
		return h.dist.Quantile(q)
	}
	return h.digest.Quantile(q)
}

// noSlot ends a chain and marks a Writer's unresolved cache entry.
const noSlot = -1

// find returns the slot of the series with key and hash, or noSlot.
func (sh *shard) find(hash uint64, key string) int32 {
	i, ok := sh.index[hash]
	if !ok {
		return noSlot
	}
	for ; i != noSlot; i = sh.slots[i].next {
		if m := sh.metas[i]; sameString(m.key, key) {
			return i
		}
	}
	return noSlot
}

// add makes a slot for a series new to the shard, live in the current
// interval.
func (sh *shard) add(hash uint64, m *meta) int32 {
	var i int32
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		i = int32(len(sh.slots))
		sh.slots = append(sh.slots, slot{})
		sh.metas = append(sh.metas, nil)
	}
	next := int32(noSlot)
	if head, ok := sh.index[hash]; ok {
		next = head
	}
	gen := sh.slots[i].gen
	sh.slots[i] = slot{hash: hash, next: next, gen: gen, seen: sh.interval, kind: m.kind}
	sh.metas[i] = m
	sh.index[hash] = i
	sh.live = append(sh.live, i)
	return i
}

// remove frees slot i, unlinking it from its hash chain.
func (sh *shard) remove(i int32) {
	s := &sh.slots[i]
	if head := sh.index[s.hash]; head == i {
		if s.next == noSlot {
			delete(sh.index, s.hash)
		} else {
			sh.index[s.hash] = s.next
		}
	} else {
		for p := head; p != noSlot; p = sh.slots[p].next {
			if sh.slots[p].next == i {
				sh.slots[p].next = s.next
				break
			}
		}
	}
	s.gen++
	sh.metas[i] = nil
	sh.free = append(sh.free, i)
}

// addSample folds one sample into slot i; weight is 1/rate. The caller
// holds the shard's lock. A series held over from the last interval counts
// towards this one's limits at its first sample.
func (sh *shard) addSample(i int32, s *metric.Sample, weight float64, iv *cardinality.Interval) {
	sl := &sh.slots[i]
	var last uint32 // the samples of the interval before, when this is the first of this one
	if sl.seen != sh.interval {
		sl.seen = sh.interval
		last = sl.samples
		sl.samples = 0
		sh.live = append(sh.live, i)
		iv.Count(sh.metas[i].name)
	}
	sl.samples++
	switch sl.kind {
	case metric.Counter:
		sl.value += s.Value * weight
	case metric.Gauge:
		sl.value = s.Value
	case metric.Set:
		m := sh.metas[i]
		if m.set == nil {
			m.set = sketch.NewSet()
		}
		m.set.Insert(s.SetMember)
	default: // histogram
		m := sh.metas[i]
		h := m.hist
		if h == nil {
			h = new(histogram)
			if sl.kind == metric.Distribution {
				h.dist = new(agentsketch.Sketch)
			} else {
				// As many samples as last interval are likely: the
				// digest grows once, not step by step.
				h.digest.Grow(int(last))
			}
			m.hist = h
		}
		h.sum += s.Value * weight
		if h.dist != nil {
			h.dist.Insert(s.Value, weight)
		} else {
			h.digest.Add(s.Value, weight)
		}
	}
}

// taken is one series' interval, handed from a shard to the flush.
type taken struct {
	meta  *meta
	value float64
	hist  *histogram
	set   *hyperloglog.Sketch
}

// take ends the interval: it hands over every series that got samples,
// resets them for the next interval, and frees the series that got none.
// It holds the lock for a copy per series; the points are made outside
// it. next counts the series of the shard's next interval.
func (sh *shard) take(dst []taken, next *cardinality.Interval) []taken {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.limits = next
	before := len(dst)
	for _, i := range sh.live {
		sl := &sh.slots[i]
		m := sh.metas[i]
		dst = append(dst, taken{meta: m, value: sl.value, hist: m.hist, set: m.set})
		sl.value = 0 // a gauge is only flushed again when set again
		m.hist, m.set = nil, nil
	}
	sh.live = sh.live[:0]
	// Slots idle for the whole interval go.
	if len(sh.slots)-len(sh.free) > len(dst)-before {
		for i := range sh.slots {
			if sh.metas[i] != nil && sh.slots[i].seen != sh.interval {
				sh.remove(int32(i))
			}
		}
	}
	sh.interval++
	return dst
}

// sameString compares two strings, first by pointer: a Writer caches the
// very key string its slot holds.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// unsafeString views b as a string for a comparison or a map lookup that
// does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
