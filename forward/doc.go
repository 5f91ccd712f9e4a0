// Package forward is the client on local instances that ships the series
// aggregation marked global — histogram, timer and distribution t-digests,
// set HyperLogLogs, veneurglobalonly counters and gauges — to the global
// tier, whose import endpoint (package importsrv) merges them into
// fleet-wide percentiles and unique counts.
//
// Data path, once per interval (Forward, on the flusher's goroutine, with a
// deadline before the next tick):
//
//	flusher ──Forward(ctx, intervalStart, []metric.Series)──▶ coalesce ◀── held series (not merged last time)
//	                                                            │   same Key: digests and sets merged,
//	                                                            │   counters summed, gauges last
//	                                                            ▼
//	                          route: rendezvous(xxhash(Key)) over the current members
//	                                                            │
//	                         ┌──────────────────────┬───────────┴──────────┐
//	                         ▼                      ▼                      ▼
//	                    member A               member B               member C
//	          batches ≤ MaxBatchSeries and ≤ 4 MiB encoded, each wire.AppendEncode
//	          + zstd, with one random Idempotency-Key kept across all its retries
//	                         │                      │                      │
//	                         └──── POST {member}/import, ≤ MaxInFlight at once ────┐
//	                                  retried with full-jitter backoff until       │
//	                                  2xx, a poison 4xx, or ctx's deadline         │
//	    held ambiguous batches (same key, same member, same bytes) ─── resent ─────┘
//
// A batch still undelivered at the deadline is classified by what the
// global can have seen of it:
//
//   - Not merged: no attempt was ever written in full (refused or failed
//     connection), or the global answered every attempt with 408, 429 or
//     503.
//     Its series are held and merged into the next Forward's series —
//     t-digests and HLLs are mergeable, so held data costs no more than one
//     interval's worth per series — and re-routed by the membership then
//     current.
//   - Ambiguous: some attempt was written and its answer lost (timeout,
//     connection reset, 409 while another request holds the key, a 5xx
//     other than 503 that a proxy may answer for a global that merged). The
//     global may have merged it, so its data must never travel again under
//     a new key: the encoded batch is kept with its key and member and
//     resent as is at the next Forward until the global acknowledges (2xx)
//     or rejects (4xx) that key — a 5xx settles nothing, as an earlier
//     attempt may still have been merged — or until it is 10 minutes old,
//     inside the 15 the global remembers keys for, when it is dropped and
//     counted.
//
// Both kinds are bounded together by Config.MaxHeldBytes; beyond it the
// oldest data is dropped and counted (veneur.forward.held_dropped). The
// wire format is package wire's, documented in wire/FORMAT.md.
package forward
