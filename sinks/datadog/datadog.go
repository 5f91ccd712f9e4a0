// Package datadog is the metric sink that delivers flushed series, events
// and service checks to the Datadog HTTP API, or to any receiver that speaks
// it (VictoriaMetrics serves it under /datadog).
//
// Data path of one flush:
//
//	[]metric.Point ─ runs of FlushMaxPerBody ─▶ ≤ MaxConcurrency goroutines, each:
//	    hand-written JSON (v1) or MetricPayload protobuf (v2) ─▶ zlib/gzip body,
//	    cut again at the documented size limits
//	    ─▶ POST /api/v1/series (or /api/v2/series), retried within the flush deadline
//	[]metric.SketchPoint (d series) ─▶ SketchPayload protobuf, the same way
//	    ─▶ POST /api/beta/sketches
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
	"time"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/internal/httpsink"
	"github.com/veneur-lite/veneur-lite/metric"

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
	name string
	cfg  Config
	core *httpsink.Core
	lim  limits
	// appendSeries encodes one point in the configured API version;
	// a body is seriesPrefix, the points (comma-separated in JSON, back
	// to back in protobuf), seriesSuffix.
	appendSeries               func([]byte, *metric.Point, *fieldCache) []byte
	seriesPrefix, seriesSuffix []byte

	series, events, checks, sketches *httpsink.Endpoint

	bodies      sync.Pool // *body with the configured compression
	plainBodies sync.Pool // *body sent uncompressed (check_run)

	m   metrics
	now func() time.Time
}

type metrics struct {
	seriesSent, seriesDropped *telemetry.Counter
	eventsSent, eventsDropped *telemetry.Counter
	checksSent, checksDropped *telemetry.Counter
	sketchesSent              *telemetry.Counter
	sketchesDropped           *telemetry.Counter
}

const (
	seriesPrefix = `{"series":[`
	seriesSuffix = `]}`
)

// New returns a sink named name. cfg must already hold its defaults
// (Config.SetDefaults); New validates it. reg and log may be nil.
func New(name string, cfg Config, reg *telemetry.Registry, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("datadog sink %q: %w", name, err)
	}
	if log != nil {
		log = log.With("sink", name)
	}
	s := &Sink{
		name: name,
		cfg:  cfg,
		// A redirect would carry DD-API-KEY to wherever it points (Go
		// strips only its own sensitive headers): the core follows none.
		core: httpsink.New(httpsink.Config{
			Name: name, Peer: "intake",
			Timeout: cfg.Timeout, MaxConcurrency: cfg.MaxConcurrency,
			Secrets: []string{cfg.APIKey},
			Stats:   reg, Log: log,
		}),
		now: time.Now,
	}
	base := strings.TrimRight(cfg.APIHostname, "/")
	seriesURL := base + "/api/v1/series"
	if cfg.APIVersion == "v2" {
		s.lim, s.appendSeries = v2Limits, appendSeriesV2
		seriesURL = base + "/api/v2/series"
	} else {
		s.lim, s.appendSeries = v1Limits, appendSeriesV1
		s.seriesPrefix, s.seriesSuffix = []byte(seriesPrefix), []byte(seriesSuffix)
	}
	s.lim.maxItems = cfg.FlushMaxPerBody
	// Events and checks go uncompressed: their APIs document no
	// Content-Encoding.
	plain := http.Header{"Content-Type": {"application/json"}, "Dd-Api-Key": {cfg.APIKey}}
	compressed := plain.Clone()
	if cfg.Compression != "" {
		compressed.Set("Content-Encoding", cfg.Compression)
	}
	protobuf := compressed.Clone()
	protobuf.Set("Content-Type", protobufContentType)
	if cfg.APIVersion == "v2" {
		s.series = s.core.Endpoint("series", "series", seriesURL, protobuf)
	} else {
		s.series = s.core.Endpoint("series", "series", seriesURL, compressed)
	}
	s.sketches = s.core.Endpoint("sketches", "sketches", base+"/api/beta/sketches", protobuf)
	s.events = s.core.Endpoint("events", "events", base+"/api/v1/events", plain)
	s.checks = s.core.Endpoint("check_run", "check_run", base+"/api/v1/check_run", plain)
	s.bodies.New = func() any { return newBody(cfg.Compression) }
	s.plainBodies.New = func() any { return newBody("") }

	tag := "sink:" + name
	s.m = metrics{
		seriesSent:      reg.Counter("sink.series_sent", tag),
		seriesDropped:   reg.Counter("sink.series_dropped", tag),
		eventsSent:      reg.Counter("sink.events_sent", tag),
		eventsDropped:   reg.Counter("sink.events_dropped", tag),
		checksSent:      reg.Counter("sink.service_checks_sent", tag),
		checksDropped:   reg.Counter("sink.service_checks_dropped", tag),
		sketchesSent:    reg.Counter("sink.sketches_sent", tag),
		sketchesDropped: reg.Counter("sink.sketches_dropped", tag),
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
	out := s.core.Flush(ctx, "series", len(points), s.lim.maxItems, func(lo, hi int, out *httpsink.Outcome) {
		s.encodeSeries(points[lo:hi], out, s.poster(ctx, s.series, "series", s.m.seriesSent, out))
	})
	s.m.seriesDropped.Add(uint64(out.Dropped()))
	return out.Err("series", len(points))
}

// poster returns a chunker's emit for one run: it posts each body to ep
// and counts its items as sent, or fails them in out; once ctx has ended
// it stops the run (what remains is dropped, not queued).
func (s *Sink) poster(ctx context.Context, ep *httpsink.Endpoint, what string, sent *telemetry.Counter, out *httpsink.Outcome) func(*body) bool {
	return func(b *body) bool {
		defer s.putBody(b)
		if err := ctx.Err(); err != nil {
			out.Fail(b.items, fmt.Errorf("post %s: %w", what, err))
			return false
		}
		if err := s.core.Post(ctx, ep, b.buf.Bytes()); err != nil {
			out.Fail(b.items, err)
			return ctx.Err() == nil
		}
		sent.Add(uint64(b.items))
		return true
	}
}

// encodeSeries encodes points into bodies within the limits and hands each
// full one to emit (see chunker.emit). Points that cannot be encoded, or
// that remain when emit stops the encoding, are recorded in out.
func (s *Sink) encodeSeries(points []metric.Point, out *httpsink.Outcome, emit func(*body) bool) {
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
	s.feed(&c, out, "series", "series", len(points), func(i int) ([]byte, string, error) {
		p := &points[i]
		if p.Distribution { // FlushSketches ships the series' sketch
			return nil, "", nil
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return nil, p.Name, errNonFinite
		}
		item = s.appendSeries(item[:0], p, &cache)
		return item, p.Name, nil
	})
}

// feed adds the n items encode makes to c, then flushes it, and records in
// out every item that does not reach c's emit: one that cannot be encoded
// or fits in no body fails alone (cause encode); once emit stops c, the
// items not yet added fail with the body it refused (emit recorded that
// body's); what c discarded after a write error fails last. encode returns
// a nil item and no error for an item this sink leaves out. one and many
// name an item and the items in the errors.
func (s *Sink) feed(c *chunker, out *httpsink.Outcome, one, many string, n int, encode func(i int) (item []byte, name string, err error)) {
	for i := range n {
		item, name, err := encode(i)
		if err != nil {
			s.core.CountError(httpclient.CauseEncode, 1)
			out.Fail(1, fmt.Errorf("encode %s %q: %w", one, name, err))
			continue
		}
		if item == nil {
			continue
		}
		ok, err := c.add(item)
		if err != nil {
			s.core.CountError(httpclient.CauseEncode, 1)
			out.Fail(1, fmt.Errorf("encode %s %q (%d bytes): %w", one, name, len(item), err))
			continue
		}
		if !ok {
			out.Fail(n-i, nil)
			break
		}
	}
	c.flush()
	if c.err != nil {
		s.core.CountError(httpclient.CauseEncode, 1)
		out.Fail(c.lost, fmt.Errorf("encode %s: %w", many, c.err))
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
	var evOut, checkOut httpsink.Outcome
	g := s.core.Group()
	for i := range events {
		if err := ctx.Err(); err != nil {
			evOut.Fail(len(events)-i, fmt.Errorf("post events: %w", err))
			break
		}
		// Events are small and few: one allocation each keeps the
		// goroutines independent. They go uncompressed because the events
		// API documents no Content-Encoding.
		payload := appendEvent(nil, &events[i], now)
		g.Go(func() error {
			if err := s.core.Post(ctx, s.events, payload); err != nil {
				evOut.Fail(1, err)
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
			checkOut.Fail(b.items, fmt.Errorf("post service checks: %w", err))
			c.put(b)
			return false
		}
		g.Go(func() error {
			defer c.put(b)
			if err := s.core.Post(ctx, s.checks, b.buf.Bytes()); err != nil {
				checkOut.Fail(b.items, err)
				return nil
			}
			s.m.checksSent.Add(uint64(b.items))
			return nil
		})
		return true
	}
	var item []byte
	s.feed(&c, &checkOut, "service check", "service checks", len(checks), func(i int) ([]byte, string, error) {
		item = appendCheck(item[:0], &checks[i], now)
		return item, checks[i].Name, nil
	})
	_ = g.Wait()
	s.m.eventsDropped.Add(uint64(evOut.Dropped()))
	s.m.checksDropped.Add(uint64(checkOut.Dropped()))
	return errors.Join(evOut.Err("events", len(events)), checkOut.Err("service checks", len(checks)))
}

func (s *Sink) getBody() *body {
	b := s.bodies.Get().(*body)
	b.reset()
	return b
}

func (s *Sink) putBody(b *body) { s.bodies.Put(b) }
