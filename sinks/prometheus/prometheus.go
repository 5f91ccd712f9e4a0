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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/address"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"

	"golang.org/x/sync/errgroup"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

var _ sinks.Sink = (*Sink)(nil)

// Sink delivers to one remote-write endpoint. Its methods are safe for
// concurrent use.
type Sink struct {
	name string
	cfg  Config
	// url is cfg.URL with any password redacted, for messages.
	url     string
	log     *slog.Logger
	client  *http.Client
	secrets []string

	bufs sync.Pool // *bodyBuf

	m metrics

	// backoff is a field so tests can shorten it.
	backoff httpclient.Backoff
}

// Why a request failed, or a series was not sent; each cause has its own
// veneur.sink.errors counter.
type cause int

const (
	causeTimeout cause = iota
	causeNetwork
	causeHTTP4xx
	causeHTTP5xx
	causeHTTPOther // 1xx/3xx: redirects are not followed, see New
	causeEncode
	causeTLS       // certificate verification failed, on either side
	causeDuplicate // series that became one after sanitising
	numCauses
)

var causeNames = [numCauses]string{"timeout", "network", "http_4xx", "http_5xx", "http_other", "encode", "tls", "duplicate"}

type metrics struct {
	seriesSent, seriesDropped *telemetry.Counter
	labelsDropped             *telemetry.Counter
	bytesSent                 *telemetry.Counter
	retries                   *telemetry.Counter
	requests                  [6]*telemetry.Counter // index: status code / 100
	errors                    [numCauses]*telemetry.Counter
	flushDuration             *telemetry.Gauge
}

const userAgent = "veneur-lite"

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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.MaxConcurrency // keep every in-flight connection for the next flush
	if t := cfg.TLS; t != nil {
		// Rotated files are picked up by the next connection's handshake.
		r, err := tlsconfig.NewReloader(t.files(), func(err error) {
			log.Error("reload TLS files; keeping the previous ones", "sink", name, "error", err)
		})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tr.DialTLSContext = r.DialTLS(t.ServerName, nil)
	}
	s := &Sink{
		name:    name,
		cfg:     cfg,
		url:     address.Redact(cfg.URL),
		log:     log.With("sink", name),
		secrets: cfg.secrets(),
		client: &http.Client{
			Transport: tr,
			// A redirect would carry the configured headers wherever it
			// points (Go strips only Authorization, and only across
			// domains), so a 3xx is answered as the error it is here.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		backoff: httpclient.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second},
	}
	s.bufs.New = func() any { return new(bodyBuf) }

	tag := "sink:" + name
	for class := 1; class <= 5; class++ {
		s.m.requests[class] = reg.Counter("sink.requests", tag, fmt.Sprintf("status_class:%dxx", class))
	}
	s.m.seriesSent = reg.Counter("sink.series_sent", tag)
	s.m.seriesDropped = reg.Counter("sink.series_dropped", tag)
	s.m.labelsDropped = reg.Counter("sink.labels_dropped", tag)
	s.m.bytesSent = reg.Counter("sink.bytes_sent", tag)
	s.m.retries = reg.Counter("sink.retries", tag)
	s.m.flushDuration = reg.Gauge("sink.flush_duration_seconds", tag)
	for c := range numCauses {
		s.m.errors[c] = reg.Counter("sink.errors", tag, "cause:"+causeNames[c])
	}
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
	start := time.Now()
	defer func() { s.m.flushDuration.Set(time.Since(start).Seconds()) }()

	series := s.toSeries(points)
	var (
		g   errgroup.Group
		out outcome
	)
	g.SetLimit(s.cfg.MaxConcurrency)
	for lo := 0; lo < len(series); lo += s.cfg.FlushMaxPerBody {
		if err := ctx.Err(); err != nil {
			// Out of time: what remains is dropped, not queued.
			out.fail(len(series)-lo, fmt.Errorf("post remote write: %w", err))
			break
		}
		run := series[lo:min(lo+s.cfg.FlushMaxPerBody, len(series))]
		// Go blocks while MaxConcurrency runs are in flight.
		g.Go(func() error {
			if err := s.send(ctx, run); err != nil {
				out.fail(len(run), err)
				return nil
			}
			s.m.seriesSent.Add(uint64(len(run)))
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through out, never through Wait
	s.m.seriesDropped.Add(uint64(out.items.Load()))
	return out.err(len(series))
}

// send encodes one run of series as a WriteRequest and posts it.
func (s *Sink) send(ctx context.Context, run []prompb.TimeSeries) error {
	b := s.bufs.Get().(*bodyBuf)
	defer s.bufs.Put(b)
	req := prompb.WriteRequest{Timeseries: run}
	size := req.Size()
	if cap(b.raw) < size {
		b.raw = make([]byte, size)
	}
	n, err := req.MarshalToSizedBuffer(b.raw[:size])
	if err != nil {
		s.m.errors[causeEncode].Inc()
		return fmt.Errorf("encode write request of %d series: %w", len(run), err)
	}
	// MarshalToSizedBuffer fills the buffer from its end.
	raw := b.raw[size-n : size]
	// Remote write specifies snappy's block format, not the framed
	// stream format. Encode uses b.snappy when it is long enough, so
	// after the first flushes no body allocates.
	b.snappy = snappy.Encode(b.snappy[:cap(b.snappy)], raw)
	return s.post(ctx, b.snappy)
}

// outcome collects the failures of one flush from its goroutines.
type outcome struct {
	items atomic.Int64 // series not delivered
	mu    sync.Mutex
	first error
	n     int // failures
}

// fail records n undelivered series and why.
func (o *outcome) fail(n int, err error) {
	o.items.Add(int64(n))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = err
	}
	o.n++
}

// err summarizes the flush: nil when every series was delivered.
func (o *outcome) err(total int) error {
	lost := o.items.Load()
	if lost == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = errors.New("dropped")
	}
	if o.n > 1 {
		return fmt.Errorf("%d of %d series not delivered (%d failures, first: %w)", lost, total, o.n, o.first)
	}
	return fmt.Errorf("%d of %d series not delivered: %w", lost, total, o.first)
}
