package telemetry

// Kind is a self-metric's type.
type Kind uint8

// The kinds of self-metric.
const (
	KindCounter Kind = iota + 1
	KindGauge
	KindHistogram
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return "invalid"
}

// Spec describes one self-metric. Catalog is the only place a self-metric
// is declared: the registry refuses a name, type or tag key it does not
// list, /metrics takes its # HELP and # TYPE from it, and a test checks it
// row by row against docs/output.md.
type Spec struct {
	// Name follows "veneur.": a component, a dot, then what is measured
	// with its base unit last (seconds, bytes).
	Name string
	Kind Kind
	// Tags are the tag keys the metric may carry.
	Tags []string
	// Help is one sentence, the "meaning" cell of its docs/output.md row.
	Help string
}

// Catalog lists every self-metric, in the order of docs/output.md.
var Catalog = []Spec{
	// Receiving.
	{"listener.packets_received", KindCounter, []string{"protocol"}, "Datagrams read (TCP: reads)."},
	{"listener.received_bytes", KindCounter, []string{"protocol"}, "Bytes read."},
	{"listener.metrics_received", KindCounter, []string{"protocol"}, "Samples accepted (each value of a multi-value line)."},
	{"listener.events_received", KindCounter, []string{"protocol"}, "Events and service checks accepted."},
	{"listener.packets_dropped", KindCounter, []string{"protocol"}, "UDP: datagrams the kernel dropped because the readers fell behind (SO_RXQ_OVFL); unixgram: datagrams over 64 KiB."},
	{"listener.read_errors", KindCounter, []string{"protocol"}, "Failed reads and TCP accepts (each logged, throttled)."},
	{"listener.connections_refused", KindCounter, []string{"protocol"}, "TCP connections closed at once because 1,024 were open."},
	{"listener.tls_handshake_errors", KindCounter, []string{"protocol"}, "TLS handshakes that failed (no or untrusted client certificate, not TLS)."},
	{"listener.panics", KindCounter, []string{"protocol"}, "TCP connections ended by a panic (the process goes on)."},
	{"listener.parse_errors", KindCounter, []string{"reason"}, "Problems found in received lines, by reason."},

	// Aggregating and flushing.
	{"flush.series", KindCounter, []string{"kind"}, "Series flushed by this instance's own interval."},
	{"flush.fleet_series", KindCounter, []string{"kind"}, "Fleet series flushed (root) or forwarded on (middle tier) from the merged windows."},
	{"flush.points", KindCounter, nil, "Points handed to the sinks."},
	{"flush.duration_seconds", KindHistogram, nil, "Time to end an interval and start its outputs (not the sinks' sending), in seconds."},
	{"flush.skipped", KindCounter, []string{"output"}, "Intervals an output missed because it was still busy with the previous one (the forwarder holds them for the next)."},
	{"flush.errors", KindCounter, []string{"output"}, "Flushes that failed (details in the sink's own metrics and the log)."},
	{"flush.panics", KindCounter, []string{"output"}, "Flushes ended by a panic in the output."},
	{"aggregate.samples_dropped", KindCounter, nil, "Samples the aggregator refused (the parser should have)."},
	{"aggregate.events_dropped", KindCounter, nil, "Events and service checks over 10,000 per interval."},
	{"http.panics", KindCounter, nil, "HTTP requests ended by a panic (answered 500)."},

	// Cardinality limits.
	{"cardinality.live_series", KindGauge, []string{"scope"}, "Series of the interval the flush carries, self-metrics included (scope:local), or of the fleet window flushed at the flush before (scope:global)."},
	{"cardinality.samples_shed", KindCounter, []string{"scope", "reason"}, "Samples of new series dropped over a cardinality limit."},
	{"cardinality.samples_shed_by_name", KindCounter, []string{"scope", "reason", "metric"}, "Samples of new series dropped over a cardinality limit, by metric name (at most 200 names, the rest as metric:other)."},

	// Forwarding (locals).
	{"forward.members", KindGauge, nil, "Global instances currently known."},
	{"forward.batches_sent", KindCounter, nil, "Batches the global tier acknowledged."},
	{"forward.series_sent", KindCounter, nil, "Series in the batches the global tier acknowledged."},
	{"forward.sent_bytes", KindCounter, nil, "Compressed bytes sent to the global tier, every attempt."},
	{"forward.retries", KindCounter, nil, "Forward attempts after the first."},
	{"forward.errors", KindCounter, []string{"cause"}, "Failed forward attempts, by cause (tls: a certificate did not verify, on either side)."},
	{"forward.held_series", KindGauge, nil, "Series held for the next interval because the global tier did not take them."},
	{"forward.held_bytes", KindGauge, nil, "Estimated size of the held series (bounded at 64 MiB)."},
	{"forward.held_dropped", KindCounter, []string{"reason"}, "Held series given up: over the 64 MiB bound, or resent for 10 minutes without an answer."},
	{"forward.series_dropped", KindCounter, []string{"reason"}, "Series in batches a global refused with a 4xx, or that could not be encoded."},
	{"forward.ambiguous_resent", KindCounter, nil, "Batches resent under their idempotency key because an earlier answer was lost."},
	{"forward.resolve_errors", KindCounter, nil, "Failed DNS resolutions of forward_address (the previous members stay)."},
	{"forward.request_duration_seconds", KindHistogram, nil, "Duration of each forward attempt, in seconds."},
	{"forward.duration_seconds", KindHistogram, nil, "Duration of each whole forward, retries included, in seconds."},

	// Importing (globals).
	{"import.batches", KindCounter, nil, "Batches merged."},
	{"import.series", KindCounter, nil, "Series in the batches merged."},
	{"import.received_bytes", KindCounter, []string{"encoding"}, "Import body bytes read, compressed and decoded."},
	{"import.duration_seconds", KindHistogram, []string{"stage"}, "Time to decode and to merge each import batch, by stage, in seconds."},
	{"import.errors", KindCounter, []string{"cause"}, "Refused import requests, by cause."},
	{"import.duplicates", KindCounter, nil, "Retried batches recognised and not merged again."},
	{"import.conflicts", KindCounter, nil, "Batches answered 409 because the same batch was being merged."},
	{"import.series_merged", KindCounter, nil, "Series merged into the fleet windows (imports, and on the root its own)."},
	{"import.series_rejected", KindCounter, nil, "Series that could not be merged."},
	{"import.digest_samples", KindCounter, nil, "Samples in the merged digests."},
	{"import.late_batches", KindCounter, nil, "Batches for an interval already flushed, merged into the oldest open one."},
	{"import.future_batches", KindCounter, nil, "Batches for an interval not begun, merged into the current one."},
	{"import.interval_mismatch", KindCounter, nil, "Batches aggregated over another interval than this instance's, merged anyway."},
	{"import.open_intervals", KindGauge, nil, "Fleet windows open (normally 1 or 2; at most 3)."},
	{"import.journal_syncs", KindCounter, nil, "Import journal fdatasyncs, one per group of batches that arrived together."},
	{"import.journal_written_bytes", KindCounter, nil, "Bytes appended to the import journal."},
	{"import.journal_bytes", KindGauge, nil, "Bytes the import journal holds: the batches of the windows not yet flushed."},
	{"import.journal_sync_duration_seconds", KindHistogram, nil, "Time to write and sync each group of journaled batches, in seconds."},
	{"import.journal_replayed_records", KindCounter, nil, "Batches replayed from the import journal at start."},
	{"import.journal_corrupt_records", KindCounter, nil, "Journal segments whose replay stopped at a torn or corrupt record."},

	// Sinks.
	{"sink.points_dropped", KindCounter, []string{"sink", "reason"}, "Points dropped by the sink's max_name_length, max_tag_length or max_tags."},
	{"sink.series_sent", KindCounter, []string{"sink"}, "Series delivered."},
	{"sink.series_dropped", KindCounter, []string{"sink"}, "Series not delivered within the interval (dropped, never queued)."},
	{"sink.events_sent", KindCounter, []string{"sink"}, "Events delivered."},
	{"sink.service_checks_sent", KindCounter, []string{"sink"}, "Service checks delivered."},
	{"sink.events_dropped", KindCounter, []string{"sink"}, "Events not delivered."},
	{"sink.service_checks_dropped", KindCounter, []string{"sink"}, "Service checks not delivered."},
	{"sink.sketches_sent", KindCounter, []string{"sink"}, "Distribution sketches delivered."},
	{"sink.sketches_dropped", KindCounter, []string{"sink"}, "Distribution sketches not delivered within the interval."},
	{"sink.labels_dropped", KindCounter, []string{"sink"}, "Labels dropped because two tags map to one label name."},
	{"sink.sent_bytes", KindCounter, []string{"sink"}, "Compressed bytes sent, every attempt."},
	{"sink.retries", KindCounter, []string{"sink"}, "Retried requests."},
	{"sink.requests", KindCounter, []string{"sink", "endpoint", "status_class"}, "Answers by status class."},
	{"sink.errors", KindCounter, []string{"sink", "cause"}, "Failed requests, by cause (tls: a certificate did not verify, not retried)."},
	{"sink.flush_duration_seconds", KindHistogram, []string{"sink"}, "Duration of each flush of the sink, in seconds."},
}

// catalogIndex finds a Catalog row by name.
var catalogIndex = indexSpecs(Catalog)

func indexSpecs(specs []Spec) map[string]*Spec {
	idx := make(map[string]*Spec, len(specs))
	for i := range specs {
		idx[specs[i].Name] = &specs[i]
	}
	return idx
}

// Lookup returns the Catalog row of name (without "veneur.").
func Lookup(name string) (*Spec, bool) {
	s, ok := catalogIndex[name]
	return s, ok
}
