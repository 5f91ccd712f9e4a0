// Package aggregate turns batches of parsed samples into per-interval
// series: the local intervals of every instance.
//
// Data path:
//
//	listener ──Push([]Sample)──▶ shard[hash(series) & mask] ──Flush──▶ []metric.Point ─▶ sinks
//	                                                         └────────▶ []metric.Series ─▶ forward, or the root's own aggregate/global
//
// A series is name + kind + sorted tags (+ host, + the scope set by the
// veneurlocalonly/veneurglobalonly magic tags), encoded as one canonical key.
// Push builds the keys and hashes them outside any lock, buckets the batch by
// shard and takes each shard's lock once per batch. Flush swaps every shard's
// map for a fresh one under the lock and does the expensive work (percentiles,
// encoding) outside it, so ingestion never waits for a flush.
//
// What goes to the global tier (histogram digests and sets, counters and
// gauges tagged veneurglobalonly) leaves as metric.Series; the global
// tier's merging and its intervals are package aggregate/global's.
package aggregate
