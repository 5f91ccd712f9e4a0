// Package stats holds the summary statistics the bench commands report
// their repeated runs with.
package stats

import (
	"math"
	"slices"
)

// Median is the middle value (the mean of the two middle ones for an even
// count), NaN for none. xs is left as it is.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
