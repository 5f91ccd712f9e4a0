package datadog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/retry"
)

const (
	// maxAttempts bounds retries even when the flush context has no
	// deadline; normally the deadline ends them first.
	maxAttempts = 10
	// snippetLen is how much of a rejected request's response body is
	// logged: enough for Datadog's {"errors":[...]} message, bounded so a
	// misbehaving intake cannot flood the log.
	snippetLen = 256
	// drainLen is read from a response before closing it so the
	// connection can be reused; longer answers are cut off.
	drainLen = 64 << 10
)

// statusError is an answer from the intake other than 2xx.
type statusError struct {
	endpoint   string
	code       int
	retryAfter time.Duration // from a Retry-After header, if any
}

func (e *statusError) Error() string {
	return fmt.Sprintf("post %s: intake answered %d %s", e.endpoint, e.code, http.StatusText(e.code))
}

// retryable reports whether a status may succeed when sent again: the
// request timed out, we were throttled, or the intake failed.
func retryable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// post sends payload to ep, retrying transient failures with exponential
// backoff and full jitter until it succeeds, fails for good, or ctx leaves
// no time for another attempt.
func (s *Sink) post(ctx context.Context, ep *endpoint, payload []byte, encoding string) error {
	for attempt := 0; ; attempt++ {
		again, err := s.attempt(ctx, ep, payload, encoding)
		if err == nil || !again || attempt+1 >= maxAttempts {
			return err
		}
		var se *statusError
		var after time.Duration
		if errors.As(err, &se) {
			after = se.retryAfter
		}
		wait := s.backoff.Delay(attempt, after)
		if !retry.Sleep(ctx, wait) {
			return err
		}
		s.m.retries.Inc()
		s.log.Debug("retried request", "endpoint", ep.name, "attempt", attempt+1, "waited", wait, "err", err)
	}
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
	req.Header.Set("Content-Type", "application/json")
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
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLen))
		return false, nil
	}
	serr := &statusError{endpoint: ep.name, code: resp.StatusCode, retryAfter: retry.After(resp.Header.Get("Retry-After"))}
	switch {
	case resp.StatusCode >= 500:
		s.m.errors[causeHTTP5xx].Inc()
	case resp.StatusCode >= 400:
		s.m.errors[causeHTTP4xx].Inc()
	default:
		s.m.errors[causeHTTPOther].Inc()
	}
	snippet, truncated := s.readSnippet(resp.Body)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLen))
	if retryable(resp.StatusCode) {
		s.log.Debug("intake failed the request", "endpoint", ep.name, "status", resp.StatusCode, "body", snippet)
		return true, serr
	}
	// Sending it again would be rejected again: the payload is dropped,
	// and this log line is the only place its reason survives.
	s.log.Warn("intake rejected the request", "endpoint", ep.name, "status", resp.StatusCode,
		"request_bytes", len(payload), "response", snippet, "response_truncated", truncated)
	return false, serr
}

// readSnippet reads the start of a response body for the log, with any
// copy of the API key masked: an intake or proxy that echoes the request
// must not put the key into our logs.
func (s *Sink) readSnippet(r io.Reader) (string, bool) {
	key := s.cfg.APIKey
	// Read len(key)-1 bytes past the cut so that a key starting before it
	// is masked whole; masking with the same length keeps offsets stable.
	buf, _ := io.ReadAll(io.LimitReader(r, int64(snippetLen+len(key))))
	buf = bytes.ReplaceAll(buf, []byte(key), bytes.Repeat([]byte{'*'}, len(key)))
	truncated := len(buf) > snippetLen
	if truncated {
		buf = buf[:snippetLen]
	}
	return strings.ToValidUTF8(string(buf), "\uFFFD"), truncated
}

// classify names the cause of a failed round trip.
func classify(err error) cause {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return causeTimeout
	}
	return causeNetwork
}
