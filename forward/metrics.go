package forward

import (
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// cause is why an attempt failed; each has its own veneur.forward.errors
// counter so an operator can tell a down global (dial) from a slow one
// (timeout) from a bad batch (http_4xx).
type cause int

const (
	causeDial      cause = iota // no connection: refused, unreachable, DNS; the request was not sent
	causeTimeout                // the attempt or the interval ran out of time
	causeNetwork                // the connection failed otherwise (reset, EOF)
	causeHTTP4xx                // 408, 429 (retried) and poison 4xx (dropped)
	causeHTTP5xx                // the global failed to merge (retried)
	causeHTTPOther              // 1xx/3xx: a misconfigured address; redirects are not followed
	causeConflict               // 409: another request holds the same key (retried)
	causeEncode                 // the batch could not be encoded or compressed
	causeTLS                    // a certificate did not verify, on either side
	numCauses
)

// causeNames are the cause tags; those forward shares with the sinks come
// from httpclient.
var causeNames = [numCauses]httpclient.Cause{
	"dial", httpclient.CauseTimeout, httpclient.CauseNetwork, httpclient.CauseHTTP4xx, httpclient.CauseHTTP5xx,
	httpclient.CauseHTTPOther, "conflict", httpclient.CauseEncode, httpclient.CauseTLS,
}

func (c cause) String() string { return string(causeNames[c]) }

// metrics are the veneur.forward.* self-metrics.
type metrics struct {
	batchesSent *telemetry.Counter // batches the global acknowledged
	seriesSent  *telemetry.Counter // series in them
	bytesSent   *telemetry.Counter // compressed body bytes, per attempt: what the network carried
	retries     *telemetry.Counter
	errors      [numCauses]*telemetry.Counter // failed attempts, by cause

	poisonDropped *telemetry.Counter // series in batches a global rejected with a 4xx
	encodeDropped *telemetry.Counter // series in batches that could not be encoded

	heldSeries       *telemetry.Gauge   // series held for the next Forward (both kinds)
	heldBytes        *telemetry.Gauge   // their estimated size
	heldDropped      *telemetry.Counter // series dropped because held data exceeded MaxHeldBytes
	ambiguousExpired *telemetry.Counter // series in ambiguous batches given up after ambiguousTTL
	ambiguousResent  *telemetry.Counter // ambiguous batches sent again at a later Forward

	members         *telemetry.Gauge
	resolveErrors   *telemetry.Counter
	requestDuration *telemetry.Histogram // each attempt
	forwardDuration *telemetry.Histogram // each whole Forward
}

func newMetrics(reg *telemetry.Registry) metrics {
	m := metrics{
		batchesSent:      reg.Counter("forward.batches_sent"),
		seriesSent:       reg.Counter("forward.series_sent"),
		bytesSent:        reg.Counter("forward.sent_bytes"),
		retries:          reg.Counter("forward.retries"),
		poisonDropped:    reg.Counter("forward.series_dropped", "reason:poison"),
		encodeDropped:    reg.Counter("forward.series_dropped", "reason:encode"),
		heldSeries:       reg.Gauge("forward.held_series"),
		heldBytes:        reg.Gauge("forward.held_bytes"),
		heldDropped:      reg.Counter("forward.held_dropped", "reason:limit"),
		ambiguousExpired: reg.Counter("forward.held_dropped", "reason:expired"),
		ambiguousResent:  reg.Counter("forward.ambiguous_resent"),
		members:          reg.Gauge("forward.members"),
		resolveErrors:    reg.Counter("forward.resolve_errors"),
		requestDuration:  reg.Histogram("forward.request_duration_seconds"),
		forwardDuration:  reg.Histogram("forward.duration_seconds"),
	}
	for c := range numCauses {
		m.errors[c] = reg.Counter("forward.errors", "cause:"+c.String())
	}
	return m
}
