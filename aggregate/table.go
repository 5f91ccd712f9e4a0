package aggregate

import "bytes"

// seriesTable is a Writer's memory of the series it has seen: an
// open-addressing table with linear probing, keyed by the hash of a
// sample's raw key (kind, name, '|', tags as sent).
//
// It exists for the many-series case, where every sample's lookup misses
// the CPU caches: an entry holds everything a sample's common path needs
// (the hash to check, the series' shard, slot and slot generation) in 32
// bytes, two to a cache line, so a sample costs one miss in the table
// where a Go map of strings costs three (control word, stored key, value).
// The raw keys live back to back in one byte array, compared only on a
// hash match; the rest (the canonical key and the flush-time metadata) is
// the Writer's cold array, read only to resolve a slot. Nothing in the
// table holds a pointer, so the garbage collector does not scan it.
// BenchmarkSeriesTable holds it against a Go map.
//
// Positions are stable as long as nothing is inserted past reserve's
// room and nothing is removed: Writer.Push relies on it within a batch.
type seriesTable struct {
	entries []tableEntry // a power of two of them; ref 0 marks an empty one
	mask    uint64
	used    int
	keys    []byte // the entries' raw keys, back to back
	garbage int    // bytes of keys no entry points to any more
}

// tableEntry is one series as a Writer sees it.
type tableEntry struct {
	hash   uint64 // of the raw key
	keyOff uint32 // the raw key is keys[keyOff:keyOff+keyLen]
	keyLen uint32
	// slot and gen locate the series' slot in its shard, valid while the
	// slot's gen is still gen (the series was not dropped since); slot is
	// noSlot until the series has one.
	slot  int32
	gen   uint32
	shard uint32
	ref   int32 // the series' index in the Writer's cold array; 0: empty
}

// minTableSize is the entries of a new table.
const minTableSize = 64

// maxTableKeyBytes bounds the keys array, so that offsets fit a uint32:
// past it the Writer starts over, as past maxCachedSeries.
const maxTableKeyBytes = 1 << 31

// tableFull is how many entries a table of size n holds before it grows:
// 3/4, which keeps linear probes short.
func tableFull(n int) int { return n - n/4 }

// probe returns the position of the first entry at or after start (in
// probe order) whose hash is hash or that is empty.
func (t *seriesTable) probe(hash uint64, start uint64) uint64 {
	for p := start & t.mask; ; p = (p + 1) & t.mask {
		if e := &t.entries[p]; e.ref == 0 || e.hash == hash {
			return p
		}
	}
}

// find returns the position of the entry with hash and raw key, or -1.
func (t *seriesTable) find(hash uint64, raw []byte) int {
	if len(t.entries) == 0 {
		return -1
	}
	for p := t.probe(hash, hash); ; p = t.probe(hash, p+1) {
		e := &t.entries[p]
		if e.ref == 0 {
			return -1
		}
		if bytes.Equal(t.key(e), raw) {
			return int(p)
		}
	}
}

// key returns e's raw key.
func (t *seriesTable) key(e *tableEntry) []byte {
	return t.keys[e.keyOff : e.keyOff+e.keyLen : e.keyOff+e.keyLen]
}

// reserve makes room for n more entries without growth, and reports
// whether it moved the entries (so positions taken before are void).
func (t *seriesTable) reserve(n int) bool {
	size := len(t.entries)
	if t.used+n <= tableFull(size) {
		return false
	}
	size = max(size, minTableSize)
	for t.used+n > tableFull(size) {
		size *= 2
	}
	old := t.entries
	t.entries = make([]tableEntry, size)
	t.mask = uint64(size - 1)
	for i := range old {
		if e := &old[i]; e.ref != 0 {
			t.entries[t.probeEmpty(e.hash)] = *e
		}
	}
	return true
}

// probeEmpty returns the first empty position in hash's probe sequence.
func (t *seriesTable) probeEmpty(hash uint64) uint64 {
	p := hash & t.mask
	for t.entries[p].ref != 0 {
		p = (p + 1) & t.mask
	}
	return p
}

// insert files a new entry for raw, which must not be in the table, with
// room reserved for it. It returns the entry's position.
func (t *seriesTable) insert(hash uint64, raw []byte, e tableEntry) int {
	e.hash = hash
	e.keyOff, e.keyLen = uint32(len(t.keys)), uint32(len(raw))
	t.keys = append(t.keys, raw...)
	p := t.probeEmpty(hash)
	t.entries[p] = e
	t.used++
	return int(p)
}

// remove deletes the entry at position p, shifting the entries after it
// back so that no probe sequence breaks (no tombstones): positions of
// other entries may change.
func (t *seriesTable) remove(p uint64) {
	t.garbage += int(t.entries[p].keyLen)
	t.used--
	hole := p
	for q := (p + 1) & t.mask; t.entries[q].ref != 0; q = (q + 1) & t.mask {
		home := t.entries[q].hash & t.mask
		// The entry at q may fill the hole if its home is not in (hole, q]
		// circularly: its probe sequence then passes through the hole.
		if (q-home)&t.mask >= (q-hole)&t.mask {
			t.entries[hole] = t.entries[q]
			hole = q
		}
	}
	t.entries[hole] = tableEntry{}
	if t.garbage > len(t.keys)/2 && t.garbage > 1<<16 {
		t.compact()
	}
}

// compact rewrites the keys array without the keys of removed entries.
func (t *seriesTable) compact() {
	keys := make([]byte, 0, len(t.keys)-t.garbage)
	for i := range t.entries {
		if e := &t.entries[i]; e.ref != 0 {
			k := t.key(e)
			e.keyOff = uint32(len(keys))
			keys = append(keys, k...)
		}
	}
	t.keys, t.garbage = keys, 0
}

// reset empties the table, keeping its memory.
func (t *seriesTable) reset() {
	clear(t.entries)
	t.used = 0
	t.keys = t.keys[:0]
	t.garbage = 0
}
