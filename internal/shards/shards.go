// Package shards sizes the independently locked parts that the local
// aggregator and the global tier spread their series over.
package shards

import (
	"fmt"
	"math/bits"
)

// Default is the shard count asked for with zero: many more shards than
// cores, so that two writers pushing at once rarely want the same lock,
// and few enough that a batch of a few hundred series takes each lock it
// needs once.
const Default = 256

// Max bounds the shard count: more only cost memory.
const Max = 1 << 12

// Count returns the shard count for n: Default when n is not positive,
// else n rounded up to a power of two (so that a hash picks a shard with a
// mask). More than Max is an error.
func Count(n int) (int, error) {
	if n <= 0 {
		return Default, nil
	}
	if n > Max {
		return 0, fmt.Errorf("shards %d: at most %d", n, Max)
	}
	return 1 << bits.Len(uint(n-1)), nil
}
