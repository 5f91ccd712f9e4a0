// Package prometheus is the metric sink that delivers flushed series with
// the Prometheus remote-write protocol (1.0: a snappy-compressed
// prometheus.WriteRequest protobuf), which Prometheus itself
// (--web.enable-remote-write-receiver), Mimir, Cortex, Thanos, VictoriaMetrics
// and most hosted Prometheus services accept.
//
// Data path of one flush:
//
//	[]metric.Point ─ names and tags mapped (internal/promname), one sample
//	each, series that collide after sanitising reduced to one ─▶ runs of
//	FlushMaxPerBody ─▶ ≤ MaxConcurrency goroutines, each: protobuf ─▶ snappy
//	─▶ POST url, retried within the flush deadline
//
// Counters reach the sink as per-second rates (metric.RatePoint) and go out
// as gauges holding that rate: remote write has no notion of a delta, and a
// Prometheus counter would need a running total that resets with every
// restart of this process.
//
// Backpressure policy: bounded retry, then drop and count, as in the
// Datadog sink. Nothing is queued between flushes, so a dead receiver costs
// at most MaxConcurrency bodies of memory and never holds back the next
// interval. Delivery is at least once: an attempt that timed out after the
// receiver took it is sent again, and Prometheus accepts a sample equal to
// the one it holds (same series, timestamp and value) as a no-op.
package prometheus

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/golang/snappy"

	"github.com/veneur-lite/veneur-lite/internal/address"
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/internal/httpsink"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

var _ sinks.Sink = (*Sink)(nil)

// Sink delivers to one remote-write endpoint. Its methods are safe for
// concurrent use.
type Sink struct {
	name  string
	cfg   Config
	log   *slog.Logger
	core  *httpsink.Core
	write *httpsink.Endpoint

	bufs sync.Pool // *bodyBuf

	m metrics
}

// causeDuplicate counts series that became one after sanitising, in
// veneur.sink.errors beside the delivery causes.
const causeDuplicate httpclient.Cause = "duplicate"

type metrics struct {
	seriesSent, seriesDropped *telemetry.Counter
	labelsDropped             *telemetry.Counter
}

// New returns a sink named name. cfg must already hold its defaults
// (Config.SetDefaults); New validates it and reads the TLS files. Its
// errors name the offending key; the caller names the sink. reg and log
// may be nil.
func New(name string, cfg Config, reg *telemetry.Registry, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sink", name)
	var dialTLS httpclient.DialFunc
	if t := cfg.TLS; t != nil {
		// Rotated files are picked up by the next connection's handshake.
		r, err := tlsconfig.NewReloader(t.files(), func(err error) {
			log.Error("reload TLS files; keeping the previous ones", "error", err)
		})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		dialTLS = r.DialTLS(t.ServerName, nil)
	}
	s := &Sink{
		name: name,
		cfg:  cfg,
		log:  log,
		// A redirect would carry the configured headers wherever it
		// points (Go strips only Authorization, and only across
		// domains): the core follows none.
		core: httpsink.New(httpsink.Config{
			Name: name, Peer: "receiver",
			Timeout: cfg.Timeout, MaxConcurrency: cfg.MaxConcurrency,
			DialTLS: dialTLS,
			Secrets: cfg.secrets(),
			Causes:  []httpclient.Cause{causeDuplicate},
			Stats:   reg, Log: log,
		}),
	}
	header := http.Header{}
	for k, v := range cfg.Headers {
		header.Set(k, v)
	}
	if ba := cfg.BasicAuth; ba != nil {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(ba.Username+":"+ba.Password)))
	}
	// The protocol's headers (remote write 1.0), after the configured
	// ones; Validate refuses configured headers of these names anyway.
	header.Set("Content-Encoding", "snappy")
	header.Set("Content-Type", "application/x-protobuf")
	header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	// One endpoint: no endpoint tag. Messages name it by its URL, its
	// userinfo and query redacted.
	s.write = s.core.Endpoint("", address.Redact(cfg.URL), cfg.URL, header)
	s.bufs.New = func() any { return new(bodyBuf) }

	tag := "sink:" + name
	s.m.seriesSent = reg.Counter("sink.series_sent", tag)
	s.m.seriesDropped = reg.Counter("sink.series_dropped", tag)
	s.m.labelsDropped = reg.Counter("sink.labels_dropped", tag)
	return s, nil
}

// Name returns the sink's name from metric_sinks.
func (s *Sink) Name() string { return s.name }

// bodyBuf holds one request's encodings between flushes.
type bodyBuf struct {
	raw, snappy []byte
}

// Flush sends points as remote-write requests of at most FlushMaxPerBody
// series each, up to MaxConcurrency at a time, and returns when every
// request was accepted, failed for good, or ctx ended. Undelivered series
// are dropped, counted, and summarized in the error. Series dropped because
// they collided with another after sanitising are counted and logged, but
// are no delivery failure.
func (s *Sink) Flush(ctx context.Context, points []metric.Point) error {
	if len(points) == 0 {
		return nil
	}
	series := s.toSeries(points)
	out := s.core.Flush(ctx, "remote write", len(series), s.cfg.FlushMaxPerBody, func(lo, hi int, out *httpsink.Outcome) {
		if err := s.send(ctx, series[lo:hi]); err != nil {
			out.Fail(hi-lo, err)
			return
		}
		s.m.seriesSent.Add(uint64(hi - lo))
	})
	s.m.seriesDropped.Add(uint64(out.Dropped()))
	return out.Err("series", len(series))
}

// send encodes one run of series as a WriteRequest and posts it.
func (s *Sink) send(ctx context.Context, run []timeSeries) error {
	b := s.bufs.Get().(*bodyBuf)
	defer s.bufs.Put(b)
	b.raw = appendWriteRequest(slices.Grow(b.raw[:0], writeRequestSize(run)), run)
	// Remote write specifies snappy's block format, not the framed
	// stream format. Encode uses b.snappy when it is long enough, so
	// after the first flushes no body allocates.
	b.snappy = snappy.Encode(b.snappy[:cap(b.snappy)], b.raw)
	return s.core.Post(ctx, s.write, b.snappy)
}
