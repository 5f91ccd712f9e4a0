package aggregate

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/cputime"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// TestSeriesTableAgainstMap runs random inserts, lookups and removals
// against a map. Hashes come from a tiny space, so that nearly every key
// collides, probe runs wrap around the end of the table and removals
// shift long runs back.
func TestSeriesTableAgainstMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		hashSpace := 1 + rng.IntN(64)
		var tab seriesTable
		oracle := map[string]int32{} // raw key → ref
		seedHash := maphash.MakeSeed()
		hash := func(k string) uint64 { return maphash.String(seedHash, k) % uint64(hashSpace) }
		nextRef := int32(1)
		for op := range 4000 {
			k := fmt.Sprintf("k%d", rng.IntN(300))
			h := hash(k)
			p := tab.find(h, []byte(k))
			ref, ok := oracle[k]
			switch {
			case ok != (p >= 0):
				t.Fatalf("seed %d op %d: find(%q) = %d, the map holds it: %v", seed, op, k, p, ok)
			case ok && tab.entries[p].ref != ref:
				t.Fatalf("seed %d op %d: find(%q) found ref %d, want %d", seed, op, k, tab.entries[p].ref, ref)
			case ok && rng.IntN(3) == 0:
				tab.remove(uint64(p))
				delete(oracle, k)
			case !ok:
				tab.reserve(1)
				p := tab.insert(h, []byte(k), tableEntry{ref: nextRef, slot: noSlot})
				if got := string(tab.key(&tab.entries[p])); got != k {
					t.Fatalf("seed %d op %d: inserted %q, the entry's key is %q", seed, op, k, got)
				}
				oracle[k] = nextRef
				nextRef++
			}
			if tab.used != len(oracle) {
				t.Fatalf("seed %d op %d: used %d, the map holds %d", seed, op, tab.used, len(oracle))
			}
		}
		for k, ref := range oracle {
			if p := tab.find(hash(k), []byte(k)); p < 0 || tab.entries[p].ref != ref {
				t.Fatalf("seed %d: %q lost at the end", seed, k)
			}
		}
	}
}

// TestSeriesTableCompactsKeys checks that removed keys' bytes are given
// back once they are most of the keys array, and the rest still found.
func TestSeriesTableCompactsKeys(t *testing.T) {
	var tab seriesTable
	key := func(i int) []byte { return fmt.Appendf(nil, "%0100d", i) }
	const n = 2000 // 200 kB of keys
	tab.reserve(n)
	for i := range n {
		tab.insert(uint64(i), key(i), tableEntry{ref: int32(i + 1)})
	}
	for i := range n - 10 {
		tab.remove(uint64(tab.find(uint64(i), key(i))))
	}
	if len(tab.keys) > n/2*100 {
		t.Errorf("keys array of %d bytes for 10 keys of 100", len(tab.keys))
	}
	for i := n - 10; i < n; i++ {
		if p := tab.find(uint64(i), key(i)); p < 0 || tab.entries[p].ref != int32(i+1) {
			t.Errorf("key %d lost in compaction", i)
		}
	}
}

// TestWriterSlotGenerations: a series dropped at a flush frees its slot,
// which another series then takes; the Writer that still remembers the
// first series' slot must not update the second's.
func TestWriterSlotGenerations(t *testing.T) {
	a := newTestAggregator(t, Config{Shards: 1})
	w := a.NewWriter()
	w.Push(parseTestLines(t, "x:1|c"))
	a.Flush(testNow, time.Second)
	a.Flush(testNow, time.Second) // x was idle: dropped, its slot freed
	w.Push(parseTestLines(t, "y:10|c"))
	w.Push(parseTestLines(t, "x:2|c"))
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{
		rate("y", 10, time.Second),
		rate("x", 2, time.Second),
	})
}

// TestWriterForgetsShedSeries: a series the limits shed leaves the
// Writer's table (a flood must not fill it), every one of its samples is
// shed, and the series admitted around it keep their entries and counts.
func TestWriterForgetsShedSeries(t *testing.T) {
	reg := telemetry.NewRegistry()
	a := newTestAggregator(t, Config{MaxSeries: 1, Stats: reg})
	w := a.NewWriter()
	w.Push(parseTestLines(t, "a:1|c", "b:1|c", "a:2|c", "b:1|c", "c:1|c"))
	w.Push(parseTestLines(t, "b:1|c", "a:4|c"))
	if w.table.used != 1 || len(w.cold)-len(w.freeCold) != 2 {
		t.Errorf("table holds %d series, %d cold, want 1 and 1 (+ the unused cold[0])", w.table.used, len(w.cold)-len(w.freeCold))
	}
	if p := w.table.find(maphash.Bytes(a.seed, appendRawKey(nil, &parseTestLines(t, "a:1|c")[0])), []byte("\x01a|")); p < 0 {
		t.Errorf("the admitted series left the table")
	}
	if got := a.Stats(testNow, 10, ByShed).ShedSamples["max_series"]; got != 4 {
		t.Errorf("%d samples shed, want 4", got)
	}
	assertPoints(t, a.Flush(testNow, time.Second).Points, []metric.Point{rate("a", 7, time.Second)})
}

// TestWriterStartsOver: past maxSeries, a Writer forgets every series and
// files them anew; samples before and after count alike, and a batch that
// straddles the reset loses nothing.
func TestWriterStartsOver(t *testing.T) {
	a := newTestAggregator(t, Config{Shards: 2})
	w := a.NewWriter()
	w.maxSeries = 8
	var want []metric.Point
	for round := range 3 {
		var lines []string
		for i := range 6 {
			lines = append(lines, fmt.Sprintf("m%d:%d|c|#r:%d", i, i+1, round))
		}
		lines = append(lines, "m0:1|c|#r:0") // the first round's series again
		w.Push(parseTestLines(t, lines...))
		if w.table.used > w.maxSeries {
			t.Fatalf("round %d: %d series filed, want ≤ %d", round, w.table.used, w.maxSeries)
		}
		for i := range 6 {
			v := float64(i + 1)
			if round == 0 && i == 0 {
				v = 4 // m0|#r:0 three times
			}
			want = append(want, rate(fmt.Sprintf("m%d", i), v, time.Second, fmt.Sprintf("r:%d", round)))
		}
	}
	assertPoints(t, a.Flush(testNow, time.Second).Points, want)
}

// BenchmarkSeriesTable is what justifies seriesTable: looking up 640 raw
// keys at a time among 1,000 or 100,000, as Writer.Push does, against a
// Go map of the raw keys (what Writer used before) and against a Go map
// from the raw hash to the same entries. ns/op is per batch; cpu-ns/key
// (the process's CPU) is the figure on a shared machine.
//
//	go test ./aggregate -run '^$' -bench SeriesTable -count 6
func BenchmarkSeriesTable(b *testing.B) {
	for _, series := range []int{1000, 100_000} {
		seed := maphash.MakeSeed()
		keys := make([][]byte, series)
		hashes := make([]uint64, series)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "\x01app.requests.m%d|service:svc-%d,env:production,az:us-east-1%c", i%1000, i/1000, 'a'+byte(i%3))
			hashes[i] = maphash.Bytes(seed, keys[i])
		}
		rng := rand.New(rand.NewPCG(1, 2))
		const batch, batches = 640, 256
		// The batches' raw keys back to back, as Push lays them out.
		raws := make([][]byte, batches)
		offsets := make([][]uint32, batches)
		for n := range raws {
			offsets[n] = make([]uint32, batch+1)
			for j := range batch {
				offsets[n][j] = uint32(len(raws[n]))
				raws[n] = append(raws[n], keys[rng.IntN(series)]...)
			}
			offsets[n][batch] = uint32(len(raws[n]))
		}
		var raw []byte
		var offs []uint32
		hs := make([]uint64, batch)
		found := make([]int32, batch)
		var sink int64
		// run times lookup, which finds the batch raw, offs in found.
		run := func(b *testing.B, lookup func()) {
			n := 0
			cpu := cputime.Process()
			for b.Loop() {
				raw, offs = raws[n%batches], offsets[n%batches]
				n++
				lookup()
				sink += int64(found[batch-1])
			}
			cpu = cputime.Process() - cpu
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch), "ns/key")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*batch), "cpu-ns/key")
		}

		b.Run(fmt.Sprintf("series=%d/table", series), func(b *testing.B) {
			var tab seriesTable
			tab.reserve(series)
			for i, k := range keys {
				tab.insert(hashes[i], k, tableEntry{ref: int32(i + 1)})
			}
			run(b, func() {
				for j := range batch {
					hs[j] = maphash.Bytes(seed, raw[offs[j]:offs[j+1]])
					sink += int64(tab.entries[hs[j]&tab.mask].hash)
				}
				for j := range batch {
					p := tab.probe(hs[j], hs[j])
					if te := &tab.entries[p]; te.ref != 0 && string(tab.key(te)) == string(raw[offs[j]:offs[j+1]]) {
						found[j] = te.ref
					} else {
						found[j] = int32(tab.find(hs[j], raw[offs[j]:offs[j+1]]))
					}
				}
			})
		})
		b.Run(fmt.Sprintf("series=%d/map-of-keys", series), func(b *testing.B) {
			type cold struct { // the size of the Writer's old entry
				ref int32
				_   [60]byte
			}
			m := make(map[string]*cold, series)
			for i, k := range keys {
				m[string(k)] = &cold{ref: int32(i + 1)}
			}
			run(b, func() {
				for j := range batch {
					found[j] = m[unsafeString(raw[offs[j]:offs[j+1]])].ref
				}
			})
		})
		b.Run(fmt.Sprintf("series=%d/map-of-hashes", series), func(b *testing.B) {
			// The same entries and keys array as the table, found through
			// a map from the raw hash: collisions left out, which only
			// flatters the map.
			var tab seriesTable
			tab.reserve(series)
			m := make(map[uint64]int32, series)
			for i, k := range keys {
				m[hashes[i]] = int32(tab.insert(hashes[i], k, tableEntry{ref: int32(i + 1)}))
			}
			run(b, func() {
				for j := range batch {
					hs[j] = maphash.Bytes(seed, raw[offs[j]:offs[j+1]])
				}
				for j := range batch {
					p, ok := m[hs[j]]
					if te := &tab.entries[p]; ok && string(tab.key(te)) == string(raw[offs[j]:offs[j+1]]) {
						found[j] = te.ref
					}
				}
			})
		})
		_ = sink
	}
}

// FuzzSeriesTable drives a table with the operations a fuzzed byte string
// spells, two bytes an operation (a key among 32, then find, insert or
// remove), under a hash of 3 bits, and checks every answer against a map.
func FuzzSeriesTable(f *testing.F) {
	f.Add([]byte{1, 1, 2, 1, 9, 1, 17, 1, 2, 2, 2, 0})
	f.Add([]byte{0, 1, 8, 1, 16, 1, 24, 1, 0, 2, 8, 0, 16, 2, 24, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var tab seriesTable
		oracle := map[string]int32{}
		nextRef := int32(1)
		for i := 0; i+1 < len(ops); i += 2 {
			n := ops[i] % 32
			k := fmt.Sprintf("key-%d", n)
			h := uint64(n % 8)
			p := tab.find(h, []byte(k))
			ref, ok := oracle[k]
			if ok != (p >= 0) || ok && tab.entries[p].ref != ref {
				t.Fatalf("op %d: find(%q) = %d, the map says %v, ref %d", i/2, k, p, ok, ref)
			}
			switch ops[i+1] % 3 {
			case 1:
				if !ok {
					tab.reserve(1)
					tab.insert(h, []byte(k), tableEntry{ref: nextRef})
					oracle[k] = nextRef
					nextRef++
				}
			case 2:
				if ok {
					tab.remove(uint64(p))
					delete(oracle, k)
				}
			}
		}
		for k, ref := range oracle {
			n, _ := strconv.Atoi(strings.TrimPrefix(k, "key-"))
			if p := tab.find(uint64(n%8), []byte(k)); p < 0 || tab.entries[p].ref != ref {
				t.Fatalf("%q lost", k)
			}
		}
	})
}
