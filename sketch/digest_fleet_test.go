package sketch

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

var fleet = flag.Bool("sketch.fleet", false, "run TestFleetAccuracyTable (about 20 s): the accuracy table of RESULTS.md")

// fleetQuantiles are the percentiles the fleet accuracy targets name.
var fleetQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// fleetFamilies are what a heterogeneous fleet's hosts draw from: each
// host takes one, with its own scale and shift.
var fleetFamilies = []func(r *rand.Rand) float64{
	distributions[0].draw, // lognormal
	distributions[1].draw, // uniform
	distributions[2].draw, // bimodal
	func(r *rand.Rand) float64 { return 10 * r.ExpFloat64() },
}

// fleetResult is the error of one merged fleet against its exact union.
type fleetResult struct {
	rank      []float64 // |F(estimate) − q| at fleetQuantiles
	centroids int
}

// mergeFleet builds hosts digests, each of perHost(r) samples from its own
// family, scale and shift, and merges them as a global does (AppendBinary,
// then DecodeRun and MergeRun of each in turn), returning the merged
// digest and the sorted union.
func mergeFleet(seed uint64, hosts int, perHost func(r *rand.Rand) int, draw func(r *rand.Rand, host int) float64) (*Digest, []float64) {
	r := rand.New(rand.NewPCG(seed, 19))
	var all []float64
	var g Digest
	var arena []Centroid
	for h := range hosts {
		var host Digest
		for range perHost(r) {
			v := draw(r, h)
			all = append(all, v)
			host.Add(v, 1)
		}
		run, a, err := DecodeRun(arena[:0], host.AppendBinary(nil))
		if err != nil {
			panic(err)
		}
		arena = a
		g.MergeRun(run)
	}
	slices.Sort(all)
	return &g, all
}

// heterogeneous returns a draw in which every host has its own family,
// scale in [0.5, 2.5) and shift in [0, 100), fixed by the seed.
func heterogeneous(seed uint64, hosts int) func(r *rand.Rand, host int) float64 {
	r := rand.New(rand.NewPCG(seed, 23))
	type shape struct {
		family       int
		scale, shift float64
	}
	shapes := make([]shape, hosts)
	for i := range shapes {
		shapes[i] = shape{r.IntN(len(fleetFamilies)), 0.5 + 2*r.Float64(), 100 * r.Float64()}
	}
	return func(r *rand.Rand, host int) float64 {
		s := shapes[host]
		return s.shift + s.scale*fleetFamilies[s.family](r)
	}
}

func fleetErrors(g *Digest, all []float64) fleetResult {
	res := fleetResult{centroids: len(g.Centroids())}
	for _, q := range fleetQuantiles {
		res.rank = append(res.rank, rankError(all, g.Quantile(q), q))
	}
	return res
}

// exactQuantile is the sample at rank ⌈q·n⌉ of sorted, the definition
// Quantile's exact mode uses.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

// TestFleetAccuracyTable measures what sketch/RESULTS.md's fleet table
// holds: the rank error at p50–p99.9 of 8 and of 200 heterogeneous hosts
// merged from the wire (mean and worst over the seeds), and the p99.9
// value error of lognormal data, against the exact answer from the
// samples.
//
//	go test ./sketch -run FleetAccuracyTable -sketch.fleet -v
func TestFleetAccuracyTable(t *testing.T) {
	if !*fleet {
		t.Skip("run with -sketch.fleet")
	}
	const seeds = 8
	fleets := []struct {
		name    string
		hosts   int
		perHost func(r *rand.Rand) int
	}{
		{"8 hosts × 50,000", 8, func(*rand.Rand) int { return 50_000 }},
		{"200 hosts × 500–5,000", 200, func(r *rand.Rand) int { return 500 + r.IntN(4501) }},
	}
	for _, f := range fleets {
		mean := make([]float64, len(fleetQuantiles))
		worst := make([]float64, len(fleetQuantiles))
		cents := 0
		for seed := range uint64(seeds) {
			g, all := mergeFleet(seed, f.hosts, f.perHost, heterogeneous(seed, f.hosts))
			res := fleetErrors(g, all)
			for i, e := range res.rank {
				mean[i] += e / seeds
				worst[i] = max(worst[i], e)
			}
			cents = max(cents, res.centroids)
		}
		t.Logf("%s: rank error %% mean/worst at p50 %s, p90 %s, p99 %s, p99.9 %s; up to %d centroids",
			f.name, pct(mean[0], worst[0]), pct(mean[1], worst[1]), pct(mean[2], worst[2]), pct(mean[3], worst[3]), cents)
	}

	lognormal := func(r *rand.Rand, _ int) float64 { return distributions[0].draw(r) }
	for _, c := range []struct {
		name           string
		hosts, perHost int
	}{{"1 host × 1e6", 1, 1_000_000}, {"8 hosts × 125,000", 8, 125_000}} {
		worst, mean := 0.0, 0.0
		for seed := range uint64(seeds) {
			g, all := mergeFleet(seed, c.hosts, func(*rand.Rand) int { return c.perHost }, lognormal)
			want := exactQuantile(all, 0.999)
			e := math.Abs(g.Quantile(0.999)-want) / want
			worst, mean = max(worst, e), mean+e/seeds
		}
		t.Logf("lognormal %s: p99.9 value error %% mean %.3f, worst %.3f", c.name, 100*mean, 100*worst)
	}
}

func pct(mean, worst float64) string { return fmt.Sprintf("%.4f/%.4f", 100*mean, 100*worst) }
