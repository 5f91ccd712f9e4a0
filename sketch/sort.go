package sketch

import "math"

// insertionMax is the length up to which sortCentroids uses insertion
// sort: below it the radix sort's histograms cost more than the compares.
const insertionMax = 48

// sortCentroids sorts src by Mean into dst, which has src's length; src is
// left in no particular order.
//
// It is an LSD radix sort on the float64 bits, one byte per pass, because
// the fold's sort is most of what a sample costs and a comparison sort of
// a 1024-sample buffer spends ten compares on each. Passes over a byte
// that all keys share are skipped, so integer values (most timings) and
// values of one magnitude sort in fewer than eight.
func sortCentroids(src, dst []Centroid) {
	n := len(src)
	if n <= insertionMax {
		copy(dst, src)
		insertionSort(dst)
		return
	}
	var counts [8][256]uint32
	for _, c := range src {
		k := sortKey(c.Mean)
		counts[0][byte(k)]++
		counts[1][byte(k>>8)]++
		counts[2][byte(k>>16)]++
		counts[3][byte(k>>24)]++
		counts[4][byte(k>>32)]++
		counts[5][byte(k>>40)]++
		counts[6][byte(k>>48)]++
		counts[7][byte(k>>56)]++
	}
	from, to := src, dst
	for pass := range counts {
		shift := uint(pass * 8)
		c := &counts[pass]
		if c[byte(sortKey(from[0].Mean)>>shift)] == uint32(n) {
			continue // every key has this byte
		}
		var sum uint32
		for b, v := range c {
			c[b] = sum
			sum += v
		}
		for _, e := range from {
			b := byte(sortKey(e.Mean) >> shift)
			to[c[b]] = e
			c[b]++
		}
		from, to = to, from
	}
	if &from[0] != &dst[0] {
		copy(dst, from)
	}
}

// sortKey maps a float64 to a uint64 of the same order: negative values
// have all bits flipped (larger magnitude, smaller key), others only the
// sign bit. -0 sorts just before +0; they compare equal, which the merge
// handles.
func sortKey(v float64) uint64 {
	b := math.Float64bits(v)
	return b ^ (uint64(int64(b)>>63) | 1<<63)
}

func insertionSort(cs []Centroid) {
	for i := 1; i < len(cs); i++ {
		e := cs[i]
		j := i
		for ; j > 0 && cs[j-1].Mean > e.Mean; j-- {
			cs[j] = cs[j-1]
		}
		cs[j] = e
	}
}
