package datadog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
)

// maxAttempts bounds retries even when the flush context has no deadline;
// normally the deadline ends them first.
const maxAttempts = 10

// post sends payload to ep, retrying transient failures with exponential
// backoff and full jitter until it succeeds, fails for good, or ctx leaves
// no time for another attempt.
func (s *Sink) post(ctx context.Context, ep *endpoint, payload []byte, encoding string) error {
	return s.backoff.Retry(ctx, maxAttempts,
		func() (bool, error) { return s.attempt(ctx, ep, payload, encoding) },
		func(n int, wait time.Duration, err error) {
			s.m.retries.Inc()
			s.log.Debug("retried request", "endpoint", ep.name, "attempt", n, "waited", wait, "err", err)
		})
}

// attempt makes one request. It reports whether a failure is worth
// retrying.
func (s *Sink) attempt(ctx context.Context, ep *endpoint, payload []byte, encoding string) (again bool, err error) {
	if err := ctx.Err(); err != nil {
		s.m.errors[causeTimeout].Inc()
		return false, fmt.Errorf("post %s: %w", ep.name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, ep.url, bytes.NewReader(payload))
	if err != nil {
		return false, fmt.Errorf("post %s: build request: %w", ep.name, err)
	}
	contentType := ep.contentType
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("DD-API-KEY", s.cfg.APIKey)
	req.Header.Set("User-Agent", userAgent)
	s.m.bytesSent.Add(uint64(len(payload)))

	resp, err := s.client.Do(req)
	if err != nil {
		// The error names the URL, never the header, so it is safe to
		// return as is.
		s.m.errors[classify(err)].Inc()
		// A per-request timeout or network error may pass; the flush
		// context ending will not.
		return ctx.Err() == nil, err
	}
	defer resp.Body.Close()

	if class := resp.StatusCode / 100; class >= 1 && class <= 5 {
		ep.requests[class].Inc()
	}
	err = httpclient.Finish(resp, "post "+ep.name, "intake", s.cfg.APIKey)
	var serr *httpclient.StatusError
	if !errors.As(err, &serr) {
		return false, nil
	}
	switch {
	case serr.Code >= 500:
		s.m.errors[causeHTTP5xx].Inc()
	case serr.Code >= 400:
		s.m.errors[causeHTTP4xx].Inc()
	default:
		s.m.errors[causeHTTPOther].Inc()
	}
	if httpclient.Retryable(serr.Code) {
		s.log.Debug("intake failed the request", "endpoint", ep.name, "status", serr.Code, "body", serr.Body)
		return true, serr
	}
	// Sending it again would be rejected again: the payload is dropped,
	// and this log line is the only place its reason survives.
	s.log.Warn("intake rejected the request", "endpoint", ep.name, "status", serr.Code,
		"request_bytes", len(payload), "response", serr.Body, "response_truncated", serr.Truncated)
	return false, serr
}

// classify names the cause of a failed round trip.
func classify(err error) cause {
	if httpclient.IsTimeout(err) {
		return causeTimeout
	}
	return causeNetwork
}
