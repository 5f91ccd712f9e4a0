// Package bench measures how much DogStatsD traffic veneur-lite absorbs.
//
// What is measured (figures and the commands that produced them are in
// RESULTS.md):
//
//   - BenchmarkPipelineUDP: the real in-process receive path
//     (listener.New over UDP with SO_REUSEPORT readers → Parser → aggregate)
//     fed by the raw sender over loopback at fixed offered rates. It reports
//     the metrics/s that made it into the flushed aggregates, the loss
//     (sent − aggregated) and the receiver's CPU per metric. Loss is counted
//     from what aggregation flushed (counter sums and histogram counts), not
//     from what the sender believes it sent, so a metric lost anywhere —
//     kernel buffer, parser, aggregator — counts as lost.
//   - BenchmarkParsePush: the CPU chain one datagram goes through once it
//     is read: parse a ~1432-byte packet and Push its samples, per metric.
//   - make bench-compare (cmd/compare): the built veneur-lite binary beside
//     a do-nothing receiver that reads the socket the same way
//     (cmd/nullrecv), under four loads at stepped rates, run after run in
//     a private network namespace; loss is counted end to end at a Datadog
//     intake in the harness. How to run and read it is in README.md.
//   - make bench-import (cmd/importbench): what a global instance spends to
//     merge forwarded histogram digests. Batches a real forward.Forwarder
//     sent for a few template locals are replayed over HTTP, as N locals,
//     to the built binary running as 1 to 16 globals; it reports each
//     global's CPU-s per digest merged and checks it against a per-interval
//     CPU budget (README.md; figures in results/IMPORT.md).
//
// The load generator the benchmarks and cmd/loadgen send with is package
// bench/loadgen.
package bench
