package httpclient

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
)

const (
	// SnippetLen is how much of a refusal's body is kept for the log:
	// enough for an intake's {"errors":[...]} or a global's reason,
	// bounded so that a misbehaving server cannot flood the log.
	SnippetLen = 256
	// drainLen is read from an answer before closing it so that the
	// connection can be reused; longer answers are cut off.
	drainLen = 64 << 10
)

// StatusError is an answer other than 2xx.
type StatusError struct {
	// Op says what was attempted, e.g. "post https://host/api/v1/series".
	Op string
	// Peer names the server's role in the message ("intake", "global").
	Peer string
	Code int
	// Body is the start of the answer's body, secrets masked, at most
	// SnippetLen bytes; Truncated says the body went on.
	Body      string
	Truncated bool
	// RetryAfter is the Retry-After header's delay, zero if none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %s answered %d %s", e.Op, e.Peer, e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether an answer with this status may succeed when
// sent again: the request timed out (408), was throttled (429), or the
// server failed (5xx). Any other 4xx would be refused again.
func Retryable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// Finish reads what is left of resp's answer, so that its connection can
// be reused, and returns nil for a 2xx or a *StatusError for anything
// else. Every secret that occurs in the body is masked in the error: an
// intake or proxy that echoes the request must not put a key into the
// logs. The caller still closes the body.
func Finish(resp *http.Response, op, peer string, secrets ...string) error {
	if resp.StatusCode/100 == 2 {
		drain(resp.Body)
		return nil
	}
	body, truncated := snippet(resp.Body, secrets)
	drain(resp.Body)
	return &StatusError{
		Op: op, Peer: peer, Code: resp.StatusCode,
		Body: body, Truncated: truncated,
		RetryAfter: After(resp.Header.Get("Retry-After")),
	}
}

// snippet reads the start of a body for the log, secrets masked.
func snippet(r io.Reader, secrets []string) (string, bool) {
	// Read up to the longest secret past the cut, so that one starting
	// before it is masked whole; masking with the same length keeps the
	// cut where it is.
	extra := 1
	for _, s := range secrets {
		extra = max(extra, len(s))
	}
	buf, _ := io.ReadAll(io.LimitReader(r, int64(SnippetLen+extra)))
	for _, s := range secrets {
		if s != "" {
			buf = bytes.ReplaceAll(buf, []byte(s), bytes.Repeat([]byte{'*'}, len(s)))
		}
	}
	truncated := len(buf) > SnippetLen
	if truncated {
		buf = buf[:SnippetLen]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(buf), "\uFFFD")), truncated
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, drainLen)) }

// IsTimeout reports whether a round trip failed for want of time: its own
// timeout, the caller's deadline, or a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// IsDialFailure reports whether a round trip failed before any connection
// existed (refused, unreachable, no such host), so that the request
// certainly did not reach the server.
func IsDialFailure(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &dns)
}
