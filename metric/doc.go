// Package metric holds the types every stage of veneur-lite shares: the
// samples the listener parses, the points sinks receive, and the mergeable
// state of a series that locals forward and globals merge, with the one
// canonical identity of a series across the fleet.
//
//	listener ──[]Sample──▶ aggregate ──[]Point──▶ sinks
//	                                └──[]Series──▶ forward ──wire──▶ importsrv ──▶ merged on the global
//
// It has no behaviour beyond what the types need (a key, a merge), so that
// the wire format, the aggregator and the forwarder agree on one
// definition of each.
package metric
