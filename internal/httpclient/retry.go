// Package httpclient is the discipline the daemon's HTTP clients share
// (the HTTP sinks through internal/httpsink, and the forwarder): the
// client (NewClient: no redirects, the reloading TLS dial), the retry
// policy (exponential backoff with full jitter, never sleeping past the
// caller's deadline, the Retry-After header), the failure causes the
// self-metrics count, and how an answer is read, classified and reported
// without leaking secrets.
package httpclient

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"
)

// Backoff shapes the waits between attempts.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before attempt+1 (attempt counts from 0): uniform in
// (0, min(Base·2^attempt, Max)] — "full jitter", so that the hosts an
// outage hit together do not all come back at the same instant — or
// retryAfter if the server asked for longer. It is never zero, so retries
// cannot spin.
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	ceil := b.Max
	if attempt < 30 { // beyond, the shift would overflow
		ceil = min(b.Base<<attempt, b.Max)
	}
	return max(rand.N(ceil)+1, retryAfter)
}

// Retry calls attempt until it succeeds, fails for good (again is
// false), has been called maxAttempts times, or ctx leaves no time for the
// wait before another call; it returns attempt's last error. A
// *StatusError's RetryAfter lengthens the wait. retried, if not nil, hears
// of each wait taken, before the next call.
func (b Backoff) Retry(ctx context.Context, maxAttempts int, attempt func() (again bool, err error), retried func(n int, wait time.Duration, err error)) error {
	for n := 0; ; n++ {
		again, err := attempt()
		if err == nil || !again || n+1 >= maxAttempts {
			return err
		}
		var after time.Duration
		if se, ok := errors.AsType[*StatusError](err); ok {
			after = se.RetryAfter
		}
		wait := b.Delay(n, after)
		if !Sleep(ctx, wait) {
			return err
		}
		if retried != nil {
			retried(n+1, wait, err)
		}
	}
}

// Sleep waits d and reports whether another attempt should follow. It
// refuses at once when d would end past ctx's deadline (sleeping only to
// fail would hold the caller to its very end), and stops early when ctx
// ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false // a select below would pick at random between the two
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// After parses a Retry-After header in its delay-seconds form. The
// HTTP-date form is not worth honouring within one flush interval.
func After(header string) time.Duration {
	n, err := strconv.Atoi(header)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
