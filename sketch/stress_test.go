package sketch

import (
	"flag"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

var stress = flag.Bool("sketch.stress", false, "run TestMergedAccuracyStress (about 10 s)")

// TestMergedAccuracyStress is a harsher TestMergedAccuracy: in each family
// every host's samples are scaled by its own factor in [1, 3], so the
// union's density is lumpy (for "bimodal", 200 narrow modes), over 12
// seeds. It prints the worst and mean rank error over p50–p99.9 per family
// (the figures in RESULTS.md). The worst case goes past the 0.1% target
// here (RESULTS.md says by how much and what it would cost to avoid), so
// it fails only on a mean error past 0.05% or a worst past 0.5%: it keeps
// a record of where the target is tight rather than gating on it.
//
//	go test ./sketch -run Stress -sketch.stress -v
func TestMergedAccuracyStress(t *testing.T) {
	if !*stress {
		t.Skip("run with -sketch.stress")
	}
	families := map[string]func(r *rand.Rand) float64{
		"exponential": func(r *rand.Rand) float64 { return 10 * r.ExpFloat64() },
	}
	for _, dist := range distributions {
		families[dist.name] = dist.draw
	}
	names := []string{"lognormal", "uniform", "bimodal", "exponential", "mixed"}
	for _, name := range names {
		const seeds = 12
		worst, mean := 0.0, 0.0
		for seed := range uint64(seeds) {
			r := rand.New(rand.NewPCG(seed, 7))
			var all []float64
			var g Digest
			for range 200 {
				draw := families[name]
				if name == "mixed" {
					draw = families[names[r.IntN(4)]]
				}
				var host Digest
				scale := 1 + 2*r.Float64()
				for range 500 + r.IntN(4501) {
					v := scale * draw(r)
					all = append(all, v)
					host.Add(v, 1)
				}
				g.Merge(&host)
			}
			slices.Sort(all)
			for _, q := range testQuantiles {
				e := rankError(all, g.Quantile(q), q)
				worst = max(worst, e)
				mean += e / seeds / float64(len(testQuantiles))
			}
		}
		t.Logf("%-12s worst rank error %.5f, mean %.5f", name, worst, mean)
		if mean > 0.0005 || worst > 0.005 || math.IsNaN(worst) {
			t.Errorf("%s: mean rank error %.5f, worst %.5f", name, mean, worst)
		}
	}
}
