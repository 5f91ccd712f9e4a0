// Package forward is the client on local instances that ships the series
// bound for the global tier (digests, sets, veneurglobalonly counters and
// gauges) to the import endpoints of forward_address, routed by rendezvous
// hashing of their key. A batch the tier did not take is held or resent
// under its idempotency key at the next Forward, within a bound on the
// memory held. How and why, step by step: docs/global-tier.md; the bytes:
// wire/FORMAT.md.
package forward
