// Package sketch holds the mergeable state of veneur-lite's histograms and
// sets: Digest, a merging t-digest with exact min, max and count that
// answers small series exactly, and HyperLogLog sets at SetPrecision.
//
// The data path of a histogram:
//
//	local:  Add(v, 1/rate) ─▶ buffer ─(full: sort, one merge pass)─▶ centroids
//	        flush: Quantile… (local-only series), AppendBinary ─▶ forward
//	global: DecodeRun(arena, bytes) for a whole batch (validates all of it)
//	        then MergeRun(run) per series ─▶ buffered runs ─(full, or read:
//	        k-way merge, one compression)─▶ centroids ─▶ Quantile… at flush
//
// A Digest is not safe for concurrent use; every method, the read-only
// looking ones included, may fold pending samples into the centroids.
package sketch
