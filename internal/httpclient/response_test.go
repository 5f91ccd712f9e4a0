package httpclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFinish: a 2xx is nil; anything else is a StatusError that keeps the
// start of the body with every secret masked, says when it was cut, and
// carries Retry-After.
func TestFinish(t *testing.T) {
	const secret = "0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(strings.Repeat("x", 100<<10)))
		case "/refused":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			// The secret straddles the snippet's cut.
			_, _ = w.Write([]byte(strings.Repeat("e", SnippetLen-4) + secret + strings.Repeat("z", 1000)))
		}
	}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := Finish(resp, "get /ok", "test server", secret); err != nil {
		t.Errorf("2xx: %v, want nil", err)
	}
	resp.Body.Close()

	resp, err = http.Get(srv.URL + "/refused")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	err = Finish(resp, "get /refused", "test server", secret)
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("429: %v, want a *StatusError", err)
	}
	if se.Code != http.StatusTooManyRequests || se.RetryAfter != 7*time.Second || !se.Truncated {
		t.Errorf("got code %d retry-after %v truncated %v, want 429 7s true", se.Code, se.RetryAfter, se.Truncated)
	}
	if strings.Contains(se.Body, secret[:4]) || len(se.Body) != SnippetLen || !strings.HasSuffix(se.Body, "****") {
		t.Errorf("body %q: want %d bytes ending in the masked secret's start", se.Body, SnippetLen)
	}
	if msg := se.Error(); !strings.HasPrefix(msg, "get /refused: test server answered 429 Too Many Requests: eee") {
		t.Errorf("message %q", msg)
	}
	if !Retryable(se.Code) || Retryable(http.StatusBadRequest) || !Retryable(http.StatusBadGateway) {
		t.Error("Retryable: want 429 and 502 retried, 400 not")
	}
}
