package datadog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// An intake whose certificate does not verify (its CA is not among the
// system roots): counted as cause tls, not network, not retried (the same
// handshake would fail again), and the series dropped and counted.
func TestTLSVerificationFailureCountedAsTLS(t *testing.T) {
	in := makeIntake(t, "v1", "deflate")
	srv := tlstest.Serve(t, tlstest.NewCA(t, "unknown CA").Server("intake"), in)

	s := newTestSink(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Flush(ctx, gauges(3, "tls"))
	if err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("error %v, want the certificate's failure", err)
	}
	if s.counter("sink.errors", "cause:tls") != 1 || s.counter("sink.errors", "cause:network") != 0 ||
		s.counter("sink.retries") != 0 || s.counter("sink.series_dropped") != 3 {
		t.Errorf("tls errors %d, network errors %d, retries %d, dropped %d; want 1, 0, 0, 3",
			s.counter("sink.errors", "cause:tls"), s.counter("sink.errors", "cause:network"),
			s.counter("sink.retries"), s.counter("sink.series_dropped"))
	}
	if !strings.Contains(s.logs.String(), "TLS handshake with the intake failed") {
		t.Errorf("TLS failure not logged:\n%s", s.logs)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.requests) != 0 {
		t.Errorf("the intake received %v", in.requests)
	}
}
