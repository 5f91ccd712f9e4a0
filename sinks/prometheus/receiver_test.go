package prometheus

import (
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/golang/snappy"
)

// The rules a remote-write receiver holds series to, restated from the
// Prometheus documentation rather than taken from the code under test.
var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// gotSeries is one series as the strict receiver accepted it. Labels are
// rendered in wire order, so an unsorted set would not compare equal.
type gotSeries struct {
	Labels string // name="value",… in the order received
	Value  string // strconv 'g', so NaN compares equal to NaN
	TS     int64  // milliseconds
}

func (g gotSeries) String() string { return fmt.Sprintf("{%s} %s @%d", g.Labels, g.Value, g.TS) }

func series(ts int64, value float64, labels ...string) gotSeries {
	return gotSeries{Labels: strings.Join(labels, ","), Value: strconv.FormatFloat(value, 'g', -1, 64), TS: ts}
}

// receiver is a strict remote-write 1.0 endpoint: it checks the headers,
// decodes the snappy block and the protobuf, validates every series, and
// records what it accepted.
type receiver struct {
	t testing.TB
	// wantHeader holds headers every request must carry exactly, on top
	// of the protocol's own.
	wantHeader http.Header
	// respond picks the answer; attempt counts the requests carrying the
	// same body, from 1. Nil answers 204.
	respond func(attempt int) (int, string)

	mu       sync.Mutex
	series   []gotSeries
	seen     map[gotSeries]int
	bodies   []int // series per accepted body
	wire     []int // compressed size per accepted body
	requests int
	attempts map[[32]byte]int
}

func newReceiver(t testing.TB) (*receiver, *httptest.Server) {
	rc := makeReceiver(t)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func makeReceiver(t testing.TB) *receiver {
	return &receiver{t: t, seen: map[gotSeries]int{}, attempts: map[[32]byte]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wire, err := io.ReadAll(r.Body)
	if err != nil {
		rc.reject(w, "read body: %v", err)
		return
	}
	rc.mu.Lock()
	rc.requests++
	sum := sha256.Sum256(wire)
	rc.attempts[sum]++
	attempt := rc.attempts[sum]
	rc.mu.Unlock()

	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/write" {
		rc.reject(w, "%s %s", r.Method, r.URL.Path)
		return
	}
	for k, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
		"User-Agent":                        "veneur-lite",
	} {
		if got := r.Header.Values(k); !slices.Equal(got, []string{want}) {
			rc.reject(w, "header %s: %q, want %q", k, got, want)
			return
		}
	}
	for k, want := range rc.wantHeader {
		if got := r.Header.Values(k); !slices.Equal(got, want) {
			rc.reject(w, "header %s: %q, want %q", k, got, want)
			return
		}
	}
	if rc.wantHeader.Get("Authorization") == "" && r.Header.Get("Authorization") != "" {
		rc.reject(w, "unexpected Authorization header")
		return
	}
	// Remote write uses snappy's block format; the framed stream format
	// fails to decode here.
	raw, err := snappy.Decode(nil, wire)
	if err != nil {
		rc.reject(w, "snappy: %v", err)
		return
	}
	req, err := decodeWriteRequest(raw)
	if err != nil {
		rc.reject(w, "protobuf: %v", err)
		return
	}
	var got []gotSeries
	for _, ts := range req.Timeseries {
		g, err := check(ts)
		if err != nil {
			rc.reject(w, "%v", err)
			return
		}
		got = append(got, g)
	}
	if len(got) == 0 || req.Metadata != 0 {
		rc.reject(w, "%d series, %d metadata", len(got), req.Metadata)
		return
	}

	code, msg := http.StatusNoContent, ""
	if rc.respond != nil {
		code, msg = rc.respond(attempt)
	}
	if code/100 == 2 {
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, len(got))
		rc.wire = append(rc.wire, len(wire))
		for _, g := range got {
			rc.seen[g]++
			rc.series = append(rc.series, g)
		}
		rc.mu.Unlock()
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// check validates one series as Prometheus would and renders it.
func check(ts wireSeries) (gotSeries, error) {
	var parts []string
	name := ""
	for i, l := range ts.Labels {
		if i > 0 && ts.Labels[i-1].Name >= l.Name {
			return gotSeries{}, fmt.Errorf("labels not sorted and unique: %v", ts.Labels)
		}
		switch {
		case l.Name == "__name__":
			name = l.Value
			if !metricNameRE.MatchString(l.Value) {
				return gotSeries{}, fmt.Errorf("metric name %q", l.Value)
			}
		case !labelNameRE.MatchString(l.Name) || strings.HasPrefix(l.Name, "__"):
			return gotSeries{}, fmt.Errorf("label name %q", l.Name)
		}
		if l.Value == "" || !utf8.ValidString(l.Value) {
			return gotSeries{}, fmt.Errorf("label %s: value %q", l.Name, l.Value)
		}
		parts = append(parts, l.Name+"="+strconv.Quote(l.Value))
	}
	if name == "" {
		return gotSeries{}, fmt.Errorf("no __name__: %v", ts.Labels)
	}
	if len(ts.Samples) != 1 || ts.Exemplars != 0 || ts.Histograms != 0 {
		return gotSeries{}, fmt.Errorf("%s: %d samples, %d exemplars, %d histograms", name, len(ts.Samples), ts.Exemplars, ts.Histograms)
	}
	s := ts.Samples[0]
	return gotSeries{Labels: strings.Join(parts, ","), Value: strconv.FormatFloat(s.Value, 'g', -1, 64), TS: s.Timestamp}, nil
}

func (rc *receiver) reject(w http.ResponseWriter, format string, args ...any) {
	rc.t.Errorf("receiver: "+format, args...)
	http.Error(w, "rejected by test receiver", http.StatusBadRequest)
}

func (rc *receiver) snapshot() (series []gotSeries, bodies, wire []int, requests int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.series), slices.Clone(rc.bodies), slices.Clone(rc.wire), rc.requests
}

// checkExactlyOnce fails unless every series in want was accepted exactly
// once and nothing else was.
func (rc *receiver) checkExactlyOnce(t *testing.T, want []gotSeries) {
	t.Helper()
	rc.mu.Lock()
	seen := maps.Clone(rc.seen)
	rc.mu.Unlock()
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("%v accepted %d times, want once", w, seen[w])
		}
		delete(seen, w)
	}
	for g, n := range seen {
		t.Errorf("unexpected series %v accepted %d times", g, n)
	}
}
