package agentsketch

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/veneur-lite/veneur-lite/sketch"
)

// compactSize is what a sketch would take on the forwarding wire with the
// simplest framing: count, min, max, sum as 8 bytes each, then each bin as
// a zigzag varint key delta and a varint count.
func compactSize(s *Sketch) int {
	buf := make([]byte, 0, 64)
	prev := int64(0)
	for _, b := range s.AppendBins(nil) {
		buf = binary.AppendVarint(buf, int64(b.Key)-prev)
		buf = binary.AppendUvarint(buf, uint64(b.Count))
		prev = int64(b.Key)
	}
	return 32 + binary.MaxVarintLen32 + len(buf)
}

// TestForwardedStateChoice measures what a d series' forwarded state would
// cost and give: the t-digest veneur-lite forwards (and the global merges)
// against the Agent sketch, merged over three hosts. It pins the bounds each
// promises: the sketch within 1/128 of the value at the rank, the digest
// within 1% of rank. The figures are in docs/output.md.
func TestForwardedStateChoice(t *testing.T) {
	qs := []float64{0.5, 0.9, 0.99, 0.999}
	for _, name := range []string{"uniform", "lognormal", "bimodal"} {
		for _, perHost := range []int{100, 10_000} {
			r := rand.New(rand.NewPCG(uint64(perHost), 9))
			var all []float64
			var merged Sketch
			var mergedDigest sketch.Digest
			digestBytes, sketchBytes := 0, 0
			for range 3 {
				var s Sketch
				var d sketch.Digest
				for range perHost {
					v := distributions[name](r)
					all = append(all, v)
					s.Insert(v, 1)
					d.Add(v, 1)
				}
				digestBytes += len(d.AppendBinary(nil))
				sketchBytes += compactSize(&s)
				merged.Merge(&s)
				mergedDigest.Merge(&d)
			}
			slices.Sort(all)
			var worstSketchRel, worstDigestRel, worstDigestRank float64
			for _, q := range qs {
				exact := all[int(math.RoundToEven(q*float64(len(all)-1)))]
				fromSketch, fromDigest := merged.Quantile(q), mergedDigest.Quantile(q)
				worstSketchRel = max(worstSketchRel, math.Abs(fromSketch-exact)/math.Abs(exact))
				worstDigestRel = max(worstDigestRel, math.Abs(fromDigest-exact)/math.Abs(exact))
				rank, _ := slices.BinarySearch(all, fromDigest)
				worstDigestRank = max(worstDigestRank, math.Abs(float64(rank)/float64(len(all))-q))
			}
			t.Logf("%-9s 3×%-6d  digest: %5d B/host, worst rel %.4f, rank %.4f | sketch: %5d B/host, worst rel %.4f",
				name, perHost, digestBytes/3, worstDigestRel, worstDigestRank, sketchBytes/3, worstSketchRel)
			if worstSketchRel > RelativeAccuracy || worstDigestRank > 0.01 {
				t.Errorf("%s: sketch %.5f, digest rank %.5f over their bounds", name, worstSketchRel, worstDigestRank)
			}
		}
	}
}
