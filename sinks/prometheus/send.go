package prometheus

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/address"
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
)

// maxAttempts bounds retries even when the flush context has no deadline;
// normally the deadline ends them first.
const maxAttempts = 10

// post sends one snappy-compressed WriteRequest, retrying transient
// failures with exponential backoff and full jitter until it succeeds,
// fails for good, or ctx leaves no time for another attempt.
func (s *Sink) post(ctx context.Context, payload []byte) error {
	return s.backoff.Retry(ctx, maxAttempts,
		func() (bool, error) { return s.attempt(ctx, payload) },
		func(n int, wait time.Duration, err error) {
			s.m.retries.Inc()
			s.log.Debug("retried request", "attempt", n, "waited", wait, "err", err)
		})
}

// attempt makes one request. It reports whether a failure is worth
// retrying.
func (s *Sink) attempt(ctx context.Context, payload []byte) (again bool, err error) {
	op := "post " + s.url
	if err := ctx.Err(); err != nil {
		s.m.errors[causeTimeout].Inc()
		return false, fmt.Errorf("%s: %w", op, err)
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.cfg.URL, bytes.NewReader(payload))
	if err != nil {
		return false, fmt.Errorf("%s: build request: %w", op, err)
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if ba := s.cfg.BasicAuth; ba != nil {
		req.SetBasicAuth(ba.Username, ba.Password)
	}
	// The protocol's headers (remote write 1.0), after the configured
	// ones; Validate refuses configured headers of these names anyway.
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", userAgent)
	s.m.bytesSent.Add(uint64(len(payload)))

	resp, err := s.client.Do(req)
	if err != nil {
		// The error names the URL (redacted), never a header.
		err = address.RedactError(err)
		if tlsRefused(err) {
			// A certificate that did not verify, or one the receiver
			// refused, fails the same way next time: a configuration
			// problem for the operator, not a reason to retry.
			s.m.errors[causeTLS].Inc()
			s.log.Warn("TLS handshake with the receiver failed", "url", s.url, "err", err)
			return false, err
		}
		if httpclient.IsTimeout(err) {
			s.m.errors[causeTimeout].Inc()
		} else {
			s.m.errors[causeNetwork].Inc()
		}
		// A per-request timeout or network error may pass; the flush
		// context ending will not.
		return ctx.Err() == nil, err
	}
	defer resp.Body.Close()

	if class := resp.StatusCode / 100; class >= 1 && class <= 5 {
		s.m.requests[class].Inc()
	}
	err = httpclient.Finish(resp, op, "receiver", s.secrets...)
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
		s.log.Debug("receiver failed the request", "status", serr.Code, "body", serr.Body)
		return true, serr
	}
	// Sending it again would be refused again (Prometheus answers 400 for
	// out-of-order or out-of-bounds samples): the body is dropped, and
	// this line is the only place its reason survives.
	s.log.Warn("receiver rejected the request", "status", serr.Code,
		"request_bytes", len(payload), "response", serr.Body, "response_truncated", serr.Truncated)
	return false, serr
}

// tlsRefused reports whether err is a TLS verification failure on either
// side: ours of the receiver's certificate, or the receiver's alert about
// ours (crypto/tls reports an alert from the peer as a *net.OpError with
// Op "remote error"; its alert type is not exported).
func tlsRefused(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var op *net.OpError
	return errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		(errors.As(err, &op) && op.Op == "remote error")
}
