// Package aggregate turns batches of parsed samples into per-interval series.
//
// Data path:
//
//	listener ──Push([]Sample)──▶ shard[hash(series) & mask] ──Flush──▶ []Point ─▶ sinks
//	                                                         └────────▶ []metric.Series ─▶ forward
//
// A series is name + kind + sorted tags (+ host, + the scope set by the
// veneurlocalonly/veneurglobalonly magic tags), encoded as one canonical key.
// Push builds the keys and hashes them outside any lock, buckets the batch by
// shard and takes each shard's lock once per batch. Flush swaps every shard's
// map for a fresh one under the lock and does the expensive work (percentiles,
// encoding) outside it, so ingestion never waits for a flush.
//
// On a global instance, Import merges the metric.Series that locals send
// (decoded by wire) into global intervals kept apart from the
// series received directly; Flush emits each such interval one interval
// after the locals finished it, as fleet-wide points without a host
// (import.go):
//
//	importsrv ──Import(start, []metric.Series)──▶ interval[start] ──Flush (one interval later)──▶ []Point (no host)
package aggregate
