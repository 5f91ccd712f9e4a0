// Package listener receives DogStatsD traffic (UDP, TCP, Unix datagram) and
// parses it into batches of metric.Sample, events and service checks.
//
// Data path:
//
//	socket ──read batch──▶ Parser.Parse (per packet, no allocation per line)
//	       ──▶ reader-owned metric.Batch ──Push──▶ aggregate.Aggregator
//
// Nothing in this package keeps a parsed sample: names and tags point into
// the read buffer and are valid only until the reader reads again.
package listener
