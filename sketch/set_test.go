package sketch

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/axiomhq/hyperloglog"
)

// insertMembers inserts n distinct members, named from prefix and i in
// [from, from+n), the way a set's string members arrive.
func insertMembers(sk *hyperloglog.Sketch, prefix string, from, n int) {
	buf := []byte(prefix)
	for i := from; i < from+n; i++ {
		sk.Insert(strconv.AppendInt(buf[:len(prefix)], int64(i), 10))
	}
}

func relErr(est uint64, want int) float64 {
	return math.Abs(float64(est)/float64(want) - 1)
}

// TestSetAccuracy checks the 1% bound at 10^5 and 10^6 members, and for a
// union merged from two overlapping sets, over several seeds (the seed
// picks the member names, so every seed is a different set of hashes).
func TestSetAccuracy(t *testing.T) {
	cases := []struct{ n, seeds int }{{100_000, 4}, {1_000_000, 3}}
	if testing.Short() || raceEnabled {
		cases = []struct{ n, seeds int }{{100_000, 2}, {1_000_000, 1}}
	}
	for _, c := range cases {
		n := c.n
		worst := 0.0
		defer func() {
			t.Logf("%d members: worst error %.2f%% over %d seeds, locally and merged", n, 100*worst, c.seeds)
		}()
		for seed := range c.seeds {
			prefix := "member-" + strconv.FormatUint(rand.New(rand.NewPCG(uint64(seed), 1)).Uint64(), 36) + "-"
			a, b := NewSet(), NewSet()
			// a holds [0, n), b holds [n/2, 3n/2): the union has 3n/2.
			insertMembers(a, prefix, 0, n)
			insertMembers(b, prefix, n/2, n)
			worst = max(worst, relErr(a.Estimate(), n), relErr(b.Estimate(), n))
			if e := relErr(a.Estimate(), n); e > 0.01 {
				t.Errorf("n=%d seed %d: estimate %d, error %.2f%% > 1%%", n, seed, a.Estimate(), 100*e)
			}
			if e := relErr(b.Estimate(), n); e > 0.01 {
				t.Errorf("n=%d seed %d: second set estimate %d, error %.2f%% > 1%%", n, seed, b.Estimate(), 100*e)
			}
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			worst = max(worst, relErr(a.Estimate(), 3*n/2))
			if e := relErr(a.Estimate(), 3*n/2); e > 0.01 {
				t.Errorf("n=%d seed %d: union estimate %d of %d, error %.2f%% > 1%%", n, seed, a.Estimate(), 3*n/2, 100*e)
			}
		}
	}
}

// TestSetMemory measures what a live set costs at a few sizes (the figures
// in SetPrecision's comment) and keeps them from growing unnoticed.
func TestSetMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap over thousands of sets")
	}
	cases := []struct {
		members   int
		estimate  bool // Estimate compacts the sparse form
		sets      int
		atMostKiB float64
	}{
		{0, false, 2000, 1},
		{10, false, 2000, 1},
		{1000, false, 200, 12},
		{1000, true, 200, 18},
		{10_000, false, 50, 48},
		{10_000, true, 50, 48},
		{100_000, true, 5, 129},
	}
	for _, c := range cases {
		perSet := heapPerSet(c.sets, func(i int) *hyperloglog.Sketch {
			sk := NewSet()
			insertMembers(sk, "m"+strconv.Itoa(i)+"-", 0, c.members)
			if c.estimate {
				sk.Estimate()
			}
			return sk
		})
		t.Logf("%7d members (estimated %v): %8.0f bytes per set", c.members, c.estimate, perSet)
		if perSet > c.atMostKiB*1024 {
			t.Errorf("%d members: %.0f bytes per set, more than %.0f KiB", c.members, perSet, c.atMostKiB)
		}
	}
}

// heapPerSet returns the live heap per set of n sets built by mk.
func heapPerSet(n int, mk func(int) *hyperloglog.Sketch) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sets := make([]*hyperloglog.Sketch, n)
	for i := range sets {
		sets[i] = mk(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(sets)
	return float64(after.HeapAlloc-before.HeapAlloc-uint64(8*n)) / float64(n)
}

func TestNewSetPrecision(t *testing.T) {
	p, err := NewSet().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if p[1] != SetPrecision || p[3] != 1 {
		t.Errorf("header %v: want precision %d, sparse", p[:4], SetPrecision)
	}
}
