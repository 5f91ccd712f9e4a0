// Package httpsink is the delivery core of the HTTP metric sinks: a sink
// brings its encoding and endpoints, and this package sends.
//
// Contract:
//   - Flush cuts a flush's n items into runs of at most perBody and has
//     at most MaxConcurrency runs encoded and sent at once; what remains
//     when ctx ends is dropped, never queued (bounded retry, then drop
//     and count).
//   - Post sends one body to an Endpoint with its headers, retrying
//     timeouts, network errors, 408, 429 and 5xx with httpclient.Backoff
//     until the flush context leaves no time; a TLS failure or any other
//     answer fails for good.
//   - Every attempt is counted under the sink's tag: veneur.sink.requests
//     (endpoint, status_class), sink.errors (cause: the httpclient causes
//     and the sink's own), sink.retries and sink.sent_bytes. Errors and
//     logs carry no secret: answers are masked with Config.Secrets, and
//     headers are never quoted.
package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/internal/address"
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// maxAttempts bounds retries even when the flush context has no deadline;
// normally the deadline ends them first.
const maxAttempts = 10

const userAgent = "veneur-lite"

// sharedCauses are the sink.errors causes every sink has.
var sharedCauses = []httpclient.Cause{
	httpclient.CauseTimeout, httpclient.CauseNetwork, httpclient.CauseHTTP4xx, httpclient.CauseHTTP5xx,
	httpclient.CauseHTTPOther, httpclient.CauseEncode, httpclient.CauseTLS,
}

// Config describes one sink to the core.
type Config struct {
	// Name is the sink's name from metric_sinks: the sink:NAME tag.
	Name string
	// Peer names the server's role in messages ("intake", "receiver").
	Peer string
	// Timeout bounds one attempt; MaxConcurrency the requests in flight.
	Timeout        time.Duration
	MaxConcurrency int
	// DialTLS makes TLS connections (tlsconfig.Reloader.DialTLS); nil
	// means Go's, with the system roots.
	DialTLS httpclient.DialFunc
	// Secrets are masked wherever an answer is quoted.
	Secrets []string
	// Causes are the sink's own sink.errors causes, beyond the shared ones.
	Causes []httpclient.Cause
	Stats  *telemetry.Registry
	Log    *slog.Logger // nil discards
}

// Core sends one sink's requests. Its methods are safe for concurrent use.
type Core struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	// Backoff shapes the waits between attempts; tests shorten it.
	Backoff httpclient.Backoff

	tag      string
	retries  *telemetry.Counter
	bytes    *telemetry.Counter
	errors   map[httpclient.Cause]*telemetry.Counter
	duration *telemetry.Histogram
}

// New returns the core of the sink cfg describes and registers its
// self-metrics.
func New(cfg Config) *Core {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tag := "sink:" + cfg.Name
	c := &Core{
		cfg:      cfg,
		log:      log,
		client:   httpclient.NewClient(cfg.MaxConcurrency, cfg.DialTLS),
		Backoff:  httpclient.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second},
		tag:      tag,
		retries:  cfg.Stats.Counter("sink.retries", tag),
		bytes:    cfg.Stats.Counter("sink.sent_bytes", tag),
		errors:   map[httpclient.Cause]*telemetry.Counter{},
		duration: cfg.Stats.Histogram("sink.flush_duration_seconds", tag),
	}
	for _, cause := range append(slices.Clone(sharedCauses), cfg.Causes...) {
		c.errors[cause] = cfg.Stats.Counter("sink.errors", tag, "cause:"+string(cause))
	}
	return c
}

// CountError counts a failure the sink found itself (an item it could not
// encode, a duplicate); cause is a shared one or one of Config.Causes.
func (c *Core) CountError(cause httpclient.Cause, n int) {
	c.errors[cause].Add(uint64(n)) // a nil counter (unknown cause) counts nothing
}

// Endpoint is one URL a sink posts to, with its headers and request
// counters.
type Endpoint struct {
	// desc is what messages call the endpoint.
	desc   string
	url    string
	header http.Header
	// requests counts answers; index: status code / 100.
	requests [6]*telemetry.Counter
}

// Endpoint registers an endpoint. name is its endpoint:NAME tag on
// veneur.sink.requests, or "" for a sink with one endpoint, which has no
// such tag; desc is what messages call it (a URL with its password
// redacted, or a name). header is sent with every request, after the
// core's User-Agent; it must not change afterwards.
func (c *Core) Endpoint(name, desc, url string, header http.Header) *Endpoint {
	ep := &Endpoint{desc: desc, url: url, header: header}
	tags := []string{c.tag}
	if name != "" {
		tags = append(tags, "endpoint:"+name)
	}
	for class := 1; class <= 5; class++ {
		ep.requests[class] = c.cfg.Stats.Counter("sink.requests", append(slices.Clone(tags), fmt.Sprintf("status_class:%dxx", class))...)
	}
	return ep
}

// Post sends body to ep, retrying transient failures with exponential
// backoff and full jitter until it succeeds, fails for good, or ctx
// leaves no time for another attempt.
func (c *Core) Post(ctx context.Context, ep *Endpoint, body []byte) error {
	return c.Backoff.Retry(ctx, maxAttempts,
		func() (bool, error) { return c.attempt(ctx, ep, body) },
		func(n int, wait time.Duration, err error) {
			c.retries.Inc()
			c.log.Debug("retried request", "endpoint", ep.desc, "attempt", n, "waited", wait, "err", err)
		})
}

// attempt makes one request, counts its outcome, and reports whether a
// failure is worth retrying. Its error names the endpoint, never a header;
// a quoted answer has the secrets masked.
func (c *Core) attempt(ctx context.Context, ep *Endpoint, body []byte) (again bool, err error) {
	op := "post " + ep.desc
	if err := ctx.Err(); err != nil {
		c.errors[httpclient.CauseTimeout].Inc()
		return false, fmt.Errorf("%s: %w", op, err)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header = ep.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("User-Agent", userAgent)
	c.bytes.Add(uint64(len(body)))

	resp, err := c.client.Do(req)
	if err != nil {
		// The error names the URL, its userinfo and query redacted, never
		// a header.
		err = address.RedactError(err)
		cause := httpclient.ErrorCause(err)
		c.errors[cause].Inc()
		if cause == httpclient.CauseTLS {
			// A certificate that did not verify, or one the server
			// refused, fails the same way next time: a configuration
			// problem for the operator, not a reason to retry.
			c.log.Warn("TLS handshake with the "+c.cfg.Peer+" failed", "endpoint", ep.desc, "err", err)
			return false, err
		}
		// A per-request timeout or network error may pass; the flush
		// context ending will not.
		return ctx.Err() == nil, err
	}
	defer resp.Body.Close()

	if class := resp.StatusCode / 100; class >= 1 && class <= 5 {
		ep.requests[class].Inc()
	}
	err = httpclient.Finish(resp, op, c.cfg.Peer, c.cfg.Secrets...)
	serr, ok := errors.AsType[*httpclient.StatusError](err)
	if !ok {
		return false, nil
	}
	c.errors[httpclient.StatusCause(serr.Code)].Inc()
	if httpclient.Retryable(serr.Code) {
		c.log.Debug(c.cfg.Peer+" failed the request", "endpoint", ep.desc, "status", serr.Code, "body", serr.Body)
		return true, serr
	}
	// Sending it again would be refused again (a bad key, data out of
	// bounds): the body is dropped, and this line is the only place its
	// reason survives.
	c.log.Warn(c.cfg.Peer+" rejected the request", "endpoint", ep.desc, "status", serr.Code,
		"request_bytes", len(body), "response", serr.Body, "response_truncated", serr.Truncated)
	return false, serr
}

// Flush calls send for each run [lo, hi) of at most perBody of n items,
// up to MaxConcurrency at a time, and returns when every run has been
// sent or ctx has ended; the runs not started by then are failed in the
// Outcome. send encodes its run, posts it, and reports what it could not
// deliver through out. Flush observes sink.flush_duration_seconds.
func (c *Core) Flush(ctx context.Context, what string, n, perBody int, send func(lo, hi int, out *Outcome)) *Outcome {
	start := time.Now()
	defer func() { c.duration.Since(start) }()
	out := &Outcome{}
	var g errgroup.Group
	g.SetLimit(c.cfg.MaxConcurrency)
	for lo := 0; lo < n; lo += perBody {
		if err := ctx.Err(); err != nil {
			// Out of time: what remains is dropped, not queued.
			out.Fail(n-lo, fmt.Errorf("post %s: %w", what, err))
			break
		}
		hi := min(lo+perBody, n)
		// Go blocks while MaxConcurrency runs are in flight.
		g.Go(func() error { send(lo, hi, out); return nil })
	}
	_ = g.Wait() // send reports through out, never through Wait
	return out
}

// Group returns a group bounded as Flush's runs are, for requests that
// are not cut from one flush (one per event).
func (c *Core) Group() *errgroup.Group {
	g := &errgroup.Group{}
	g.SetLimit(c.cfg.MaxConcurrency)
	return g
}

// Outcome collects the failures of one flush from its goroutines.
type Outcome struct {
	items atomic.Int64 // items not delivered
	mu    sync.Mutex
	first error
	n     int // failures with an error
}

// Fail records n undelivered items and, if err is not nil, one failure.
func (o *Outcome) Fail(n int, err error) {
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

// Dropped is how many items were not delivered.
func (o *Outcome) Dropped() int { return int(o.items.Load()) }

// Err summarizes the flush of total items called what ("series"): nil
// when everything was delivered.
func (o *Outcome) Err(what string, total int) error {
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
