// Package aggregate turns batches of parsed samples into per-interval
// series, the local intervals of every instance, and flushes each interval
// as points for the sinks and as mergeable state (metric.Series) for the
// global tier (package aggregate/global, through forward on a local).
//
//	listener ──Push([]Sample)──▶ shard[hash(series) & mask] ──Flush──▶ []metric.Point ─▶ sinks
//	                                                         └────────▶ []metric.Series ─▶ forward, or the root's own aggregate/global
//
// A series is name, kind and sorted tags (and host, and the scope the
// veneurlocalonly/veneurglobalonly tags set), one canonical key. Push
// hashes the keys outside any lock and takes each shard's lock once per
// batch. A series keeps its slot across intervals; Flush copies each
// shard's live series out under its lock and computes the points outside
// it, so ingestion never waits for a flush. What is flushed, and where:
// docs/output.md.
package aggregate
