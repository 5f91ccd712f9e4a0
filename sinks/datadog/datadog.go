// Package datadog is the metric sink that delivers flushed series, events
// and service checks to the Datadog HTTP API, or to any receiver that speaks
// it (VictoriaMetrics serves it under /datadog).
//
// Data path of one flush:
//
//	[]metric.Point ─ runs of FlushMaxPerBody ─▶ ≤ MaxConcurrency goroutines, each:
//	    hand-written JSON ─▶ zlib/gzip body, cut again at the documented size limits
//	    ─▶ POST /api/v1/series (or /api/v2/series), retried within the flush deadline
//
// Events go one per POST to /api/v1/events and service checks in arrays to
// /api/v1/check_run, uncompressed.
//
// Backpressure policy: bounded retry, then drop and count. The sink keeps
// no queue between flushes: what could not be delivered before the flush
// context ended is dropped and counted (veneur.sink.series_dropped), so a
// dead intake costs at most MaxConcurrency bodies of memory and never holds
// back the next interval.
//
// Delivery is at least once: an attempt that times out after the intake
// took it is sent again. The repeat has the same series and timestamp,
// which Datadog documents (for historical ingestion) as replacing the
// earlier value; VictoriaMetrics keeps both unless deduplication is on.
package datadog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/metric"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

var (
	_ sinks.Sink       = (*Sink)(nil)
	_ sinks.EventSink  = (*Sink)(nil)
	_ sinks.SketchSink = (*Sink)(nil)
)

// Sink delivers to one Datadog API endpoint. Its methods are safe for
// concurrent use.
type Sink struct {
	name   string
	cfg    Config
	log    *slog.Logger
	client *http.Client
	lim    limits
	// appendSeries encodes one point in the configured API version;
	// a body is seriesPrefix, the points (comma-separated in JSON, back
	// to back in protobuf), seriesSuffix.
	appendSeries               func([]byte, *metric.Point, *fieldCache) []byte
	seriesPrefix, seriesSuffix []byte

	series, events, checks, sketches endpoint

	bodies      sync.Pool // *body with the configured compression
	plainBodies sync.Pool // *body sent uncompressed (check_run)

	m metrics

	// backoff is a field so tests can shorten it.
	backoff httpclient.Backoff
	now     func() time.Time
}

// endpoint is one API path and its request counters by status class.
type endpoint struct {
	name        string
	url         string
	contentType string                // empty: application/json
	requests    [6]*telemetry.Counter // index: status code / 100
}

// Why a request failed; each cause has its own veneur.sink.errors counter.
type cause int

const (
	causeTimeout cause = iota
	causeNetwork
	causeHTTP4xx
	causeHTTP5xx
	causeHTTPOther // 1xx/3xx: redirects are not followed, see New
	causeEncode
	numCauses
)

var causeNames = [numCauses]string{"timeout", "network", "http_4xx", "http_5xx", "http_other", "encode"}

type metrics struct {
	seriesSent, seriesDropped *telemetry.Counter
	eventsSent, eventsDropped *telemetry.Counter
	checksSent, checksDropped *telemetry.Counter
	sketchesSent              *telemetry.Counter
	sketchesDropped           *telemetry.Counter
	bytesSent                 *telemetry.Counter
	retries                   *telemetry.Counter
	errors                    [numCauses]*telemetry.Counter
	flushDuration             *telemetry.Gauge
}

const (
	seriesPrefix = `{"series":[`
	seriesSuffix = `]}`
	userAgent    = "veneur-lite"
)

// New returns a sink named name. cfg must already hold its defaults
// (Config.SetDefaults); New validates it. reg and log may be nil.
func New(name string, cfg Config, reg *telemetry.Registry, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("datadog sink %q: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.MaxConcurrency // keep every in-flight connection for the next flush
	s := &Sink{
		name: name,
		cfg:  cfg,
		log:  log.With("sink", name),
		client: &http.Client{
			Transport: tr,
			// A redirect would carry DD-API-KEY to wherever it points
			// (Go strips only its own sensitive headers), so answer 3xx
			// as the error it is for an intake.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		backoff: httpclient.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second},
		now:     time.Now,
	}
	base := strings.TrimRight(cfg.APIHostname, "/")
	if cfg.APIVersion == "v2" {
		s.lim, s.appendSeries = v2Limits, appendSeriesV2
		s.series.url = base + "/api/v2/series"
		s.series.contentType = protobufContentType
	} else {
		s.lim, s.appendSeries = v1Limits, appendSeriesV1
		s.series.url = base + "/api/v1/series"
		s.seriesPrefix, s.seriesSuffix = []byte(seriesPrefix), []byte(seriesSuffix)
	}
	s.lim.maxItems = cfg.FlushMaxPerBody
	s.events.url = base + "/api/v1/events"
	s.checks.url = base + "/api/v1/check_run"
	s.sketches.url = base + "/api/beta/sketches"
	s.sketches.contentType = protobufContentType
	s.bodies.New = func() any { return newBody(cfg.Compression) }
	s.plainBodies.New = func() any { return newBody("") }

	tag := "sink:" + name
	for _, ep := range []struct {
		e    *endpoint
		name string
	}{{&s.series, "series"}, {&s.events, "events"}, {&s.checks, "check_run"}, {&s.sketches, "sketches"}} {
		ep.e.name = ep.name
		for class := 1; class <= 5; class++ {
			ep.e.requests[class] = reg.Counter("sink.requests", tag, "endpoint:"+ep.name, fmt.Sprintf("status_class:%dxx", class))
		}
	}
	s.m = metrics{
		seriesSent:      reg.Counter("sink.series_sent", tag),
		seriesDropped:   reg.Counter("sink.series_dropped", tag),
		eventsSent:      reg.Counter("sink.events_sent", tag),
		eventsDropped:   reg.Counter("sink.events_dropped", tag),
		checksSent:      reg.Counter("sink.service_checks_sent", tag),
		checksDropped:   reg.Counter("sink.service_checks_dropped", tag),
		sketchesSent:    reg.Counter("sink.sketches_sent", tag),
		sketchesDropped: reg.Counter("sink.sketches_dropped", tag),
		bytesSent:       reg.Counter("sink.bytes_sent", tag),
		retries:         reg.Counter("sink.retries", tag),
		flushDuration:   reg.Gauge("sink.flush_duration_seconds", tag),
	}
	for c := range numCauses {
		s.m.errors[c] = reg.Counter("sink.errors", tag, "cause:"+causeNames[c])
	}
	return s, nil
}

// Name returns the sink's name from metric_sinks.
func (s *Sink) Name() string { return s.name }

// Flush sends points as series bodies and returns when every body was
// accepted, failed for good, or ctx ended. Undelivered series are dropped,
// counted, and summarized in the error.
//
// The points are cut into runs of FlushMaxPerBody, and up to
// MaxConcurrency goroutines each encode a run and send its bodies (one,
// or more if the size limits cut it). Compression is the costly part of a
// flush, so this spreads it over the cores, and memory stays bounded by
// one body per goroutine however slow the intake is.
func (s *Sink) Flush(ctx context.Context, points []metric.Point) error {
	if len(points) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { s.m.flushDuration.Set(time.Since(start).Seconds()) }()

	var (
		g   errgroup.Group
		out outcome
	)
	g.SetLimit(s.cfg.MaxConcurrency)
	send := func(b *body) bool {
		defer s.putBody(b)
		if err := ctx.Err(); err != nil {
			// Out of time: what remains is dropped, not queued.
			out.fail(b.items, fmt.Errorf("post series: %w", err))
			return false
		}
		if err := s.post(ctx, &s.series, b.buf.Bytes(), s.cfg.Compression); err != nil {
			out.fail(b.items, err)
			return ctx.Err() == nil
		}
		s.m.seriesSent.Add(uint64(b.items))
		return true
	}
	for lo := 0; lo < len(points); lo += s.lim.maxItems {
		if err := ctx.Err(); err != nil {
			out.fail(len(points)-lo, fmt.Errorf("post series: %w", err))
			break
		}
		run := points[lo:min(lo+s.lim.maxItems, len(points))]
		// Go blocks while MaxConcurrency runs are in progress.
		g.Go(func() error {
			s.encodeSeries(run, &out, send)
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through out, never through Wait
	s.m.seriesDropped.Add(uint64(out.items.Load()))
	return out.err("series", len(points))
}

// encodeSeries encodes points into bodies within the limits and hands each
// full one to emit (see chunker.emit). Points that cannot be encoded, or
// that remain when emit stops the encoding, are recorded in out.
func (s *Sink) encodeSeries(points []metric.Point, out *outcome, emit func(*body) bool) {
	c := chunker{
		prefix:      s.seriesPrefix,
		suffix:      s.seriesSuffix,
		noSeparator: s.seriesPrefix == nil,
		lim:         s.lim,
		get:         s.getBody,
		put:         s.putBody,
		emit:        emit,
	}
	var (
		item  []byte
		cache fieldCache
	)
	for i := range points {
		p := &points[i]
		if p.Distribution { // FlushSketches ships the series' sketch
			continue
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			s.m.errors[causeEncode].Inc()
			out.fail(1, fmt.Errorf("encode series %q: %w", p.Name, errNonFinite))
			continue
		}
		item = s.appendSeries(item[:0], p, &cache)
		ok, err := c.add(item)
		if err != nil {
			s.m.errors[causeEncode].Inc()
			out.fail(1, fmt.Errorf("encode series %q (%d bytes): %w", p.Name, len(item), err))
			continue
		}
		if !ok {
			// emit already accounted for the body it refused; the points
			// not yet encoded are dropped with it.
			out.fail(len(points)-i, nil)
			break
		}
	}
	c.flush()
	if c.err != nil {
		s.m.errors[causeEncode].Inc()
		out.fail(c.lost, fmt.Errorf("encode series: %w", c.err))
	}
}

// FlushEvents posts each event to /api/v1/events and the service checks in
// arrays to /api/v1/check_run, with the same concurrency bound and retry
// policy as Flush.
func (s *Sink) FlushEvents(ctx context.Context, events []metric.Event, checks []metric.ServiceCheck) error {
	if len(events) == 0 && len(checks) == 0 {
		return nil
	}
	now := s.now().Unix()
	var (
		g               errgroup.Group
		evOut, checkOut outcome
	)
	g.SetLimit(s.cfg.MaxConcurrency)
	for i := range events {
		if err := ctx.Err(); err != nil {
			evOut.fail(len(events)-i, fmt.Errorf("post events: %w", err))
			break
		}
		// Events are small and few: one allocation each keeps the
		// goroutines independent. They go uncompressed because the events
		// API documents no Content-Encoding.
		payload := appendEvent(nil, &events[i], now)
		g.Go(func() error {
			if err := s.post(ctx, &s.events, payload, ""); err != nil {
				evOut.fail(1, err)
				return nil
			}
			s.m.eventsSent.Inc()
			return nil
		})
	}

	c := chunker{
		prefix: []byte{'['},
		suffix: []byte{']'},
		lim:    checkLimits,
		get:    func() *body { b := s.plainBodies.Get().(*body); b.reset(); return b },
		put:    func(b *body) { s.plainBodies.Put(b) },
	}
	c.emit = func(b *body) bool {
		if err := ctx.Err(); err != nil {
			checkOut.fail(b.items, fmt.Errorf("post service checks: %w", err))
			c.put(b)
			return false
		}
		g.Go(func() error {
			defer c.put(b)
			if err := s.post(ctx, &s.checks, b.buf.Bytes(), ""); err != nil {
				checkOut.fail(b.items, err)
				return nil
			}
			s.m.checksSent.Add(uint64(b.items))
			return nil
		})
		return true
	}
	var item []byte
	for i := range checks {
		item = appendCheck(item[:0], &checks[i], now)
		ok, err := c.add(item)
		if err != nil {
			s.m.errors[causeEncode].Inc()
			checkOut.fail(1, fmt.Errorf("encode service check %q: %w", checks[i].Name, err))
			continue
		}
		if !ok {
			checkOut.fail(len(checks)-i, nil)
			break
		}
	}
	c.flush()
	if c.err != nil {
		s.m.errors[causeEncode].Inc()
		checkOut.fail(c.lost, fmt.Errorf("encode service checks: %w", c.err))
	}
	_ = g.Wait()
	s.m.eventsDropped.Add(uint64(evOut.items.Load()))
	s.m.checksDropped.Add(uint64(checkOut.items.Load()))
	return errors.Join(evOut.err("events", len(events)), checkOut.err("service checks", len(checks)))
}

func (s *Sink) getBody() *body {
	b := s.bodies.Get().(*body)
	b.reset()
	return b
}

func (s *Sink) putBody(b *body) { s.bodies.Put(b) }

// outcome collects the failures of one flush from its goroutines.
type outcome struct {
	items atomic.Int64 // items not delivered
	mu    sync.Mutex
	first error
	n     int // failures with an error
}

// fail records n undelivered items and, if err is not nil, one failure.
func (o *outcome) fail(n int, err error) {
	o.items.Add(int64(n))
	if err == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = err
	}
	o.n++
}

// err summarizes the flush: nil when everything was delivered.
func (o *outcome) err(what string, total int) error {
	lost := o.items.Load()
	if lost == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = errors.New("dropped") // every path that drops items records why; keep the message sane if not
	}
	if o.n > 1 {
		return fmt.Errorf("%d of %d %s not delivered (%d failures, first: %w)", lost, total, what, o.n, o.first)
	}
	return fmt.Errorf("%d of %d %s not delivered: %w", lost, total, what, o.first)
}
