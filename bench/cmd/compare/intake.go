package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/agent-payload/v5/gogen"
	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
)

// The series the loss is counted from: the load generator names every
// metric loadgen.<type>.<n>, and veneur-lite reports on itself as veneur.*.
const (
	loadPrefix = "loadgen."
	selfPrefix = "veneur."
)

// maxBodyBytes bounds one request body: Datadog's v1 limit on the wire is
// 3.2 MB, so anything far larger is a fault, not a payload.
const maxBodyBytes = 16 << 20

// intake is the Datadog API stand-in veneur-lite's datadog sink posts to.
// During a run it only keeps the compressed series bodies and answers 202,
// so that decoding JSON does not take CPU from the process being measured;
// decode reads them once veneur-lite has exited.
type intake struct {
	ln  net.Listener
	srv *http.Server

	mu         sync.Mutex
	bodies     []rawBody
	other      map[string]int // path → events or check_run requests
	unexpected []string       // requests no sink should make, for the run's error
}

// rawBody is one POST of series or sketches as it came off the wire.
type rawBody struct {
	encoding string // Content-Encoding
	sketches bool   // a SketchPayload (/api/beta/sketches), not v1 JSON series
	data     []byte
}

func newIntake() (*intake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("intake: listen: %w", err)
	}
	in := &intake{ln: ln, other: map[string]int{}}
	in.srv = &http.Server{Handler: in, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = in.srv.Serve(ln) }() // returns ErrServerClosed at close
	return in, nil
}

// URL is the api_hostname to configure the sink with.
func (in *intake) URL() string { return "http://" + in.ln.Addr().String() }

func (in *intake) Close() error { return in.srv.Close() }

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		in.note("%s %s: read body: %v", r.Method, r.URL.Path, err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == "/api/v1/series" || r.URL.Path == "/api/beta/sketches"):
		// d series go out as the Agent's sketches; their counts are
		// countable like a histogram's .count.
		in.mu.Lock()
		in.bodies = append(in.bodies, rawBody{encoding: r.Header.Get("Content-Encoding"), sketches: r.URL.Path == "/api/beta/sketches", data: data})
		in.mu.Unlock()
	case r.Method == http.MethodPost && (r.URL.Path == "/api/v1/events" || r.URL.Path == "/api/v1/check_run"):
		in.mu.Lock()
		in.other[r.URL.Path]++
		in.mu.Unlock()
	default:
		// A v2 or unknown path means the sink is not configured as the
		// harness assumes: answer 404 so that it shows in the daemon's log
		// too, and fail the run.
		in.note("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"ok"}`)
}

func (in *intake) note(format string, args ...any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.unexpected) < 10 {
		in.unexpected = append(in.unexpected, fmt.Sprintf(format, args...))
	}
}

// take returns what arrived since the last take and starts afresh.
func (in *intake) take() (bodies []rawBody, unexpected []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	bodies, unexpected = in.bodies, in.unexpected
	in.bodies, in.unexpected = nil, nil
	clear(in.other)
	return bodies, unexpected
}

// sinkTotals is what the series bodies of one run add up to.
type sinkTotals struct {
	Bodies     int `json:"bodies"`
	Duplicates int `json:"duplicate_bodies"` // identical bodies (a retried POST), counted once
	Points     int `json:"points"`
	// Countable is Σ value × interval over the rate points of loadgen.*
	// series (counters and histogram .count): the countable lines that
	// reached the sink.
	Countable float64 `json:"countable"`
	// PerSeries is the same sum per series (metric and tags).
	PerSeries map[string]float64 `json:"-"`
	// Self is Σ value × interval of veneur-lite's own veneur.* rate series,
	// by name (tags summed over): packets_dropped, metrics_received, …
	Self map[string]float64 `json:"self,omitempty"`
}

// v1Series is the part of a /api/v1/series element the count needs.
type v1Series struct {
	Metric   string       `json:"metric"`
	Points   [][2]float64 `json:"points"`
	Type     string       `json:"type"`
	Interval float64      `json:"interval"`
	Tags     []string     `json:"tags"`
}

// decodeBodies decompresses and decodes every body, on all cores (nothing
// is being measured while it runs), skipping exact repeats: the sink
// retries a POST with the same bytes, and a repeat that the intake also
// accepted must not count twice.
func decodeBodies(bodies []rawBody) (sinkTotals, error) {
	seen := make(map[uint64]bool, len(bodies))
	var unique []rawBody
	dups := 0
	for _, b := range bodies {
		d := xxhash.New()
		_, _ = d.WriteString(b.encoding + "\x00")
		if b.sketches {
			_, _ = d.WriteString("sketches\x00")
		}
		_, _ = d.Write(b.data)
		h := d.Sum64()
		if seen[h] {
			dups++
			continue
		}
		seen[h] = true
		unique = append(unique, b)
	}
	workers := min(runtime.GOMAXPROCS(0), max(len(unique), 1))
	parts := make([]sinkTotals, workers)
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			parts[w] = sinkTotals{PerSeries: map[string]float64{}, Self: map[string]float64{}}
			for i := w; i < len(unique); i += workers {
				if err := parts[w].addBody(unique[i]); err != nil {
					return fmt.Errorf("series body %d of %d: %w", i+1, len(unique), err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return sinkTotals{}, err
	}
	total := parts[0]
	for _, p := range parts[1:] {
		total.Points += p.Points
		total.Countable += p.Countable
		for k, v := range p.PerSeries {
			total.PerSeries[k] += v
		}
		for k, v := range p.Self {
			total.Self[k] += v
		}
	}
	total.Bodies, total.Duplicates = len(bodies), dups
	return total, nil
}

func (t *sinkTotals) addBody(b rawBody) error {
	raw, err := decompress(b.encoding, b.data)
	if err != nil {
		return err
	}
	if b.sketches {
		return t.addSketches(raw)
	}
	var payload struct {
		Series []v1Series `json:"series"`
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	for i := range payload.Series {
		s := &payload.Series[i]
		t.Points += len(s.Points)
		var count float64
		switch s.Type {
		case "rate":
			// Datadog multiplies a rate back by its interval: that is the
			// count of the interval.
			if s.Interval <= 0 {
				return fmt.Errorf("rate series %s has interval %v", s.Metric, s.Interval)
			}
			for _, p := range s.Points {
				count += p[1] * s.Interval
			}
		case "count":
			for _, p := range s.Points {
				count += p[1]
			}
		default: // gauges: not countable
			continue
		}
		t.count(s.Metric, s.Tags, count)
	}
	return nil
}

// addSketches counts a SketchPayload: each Dogsketch's cnt is the samples
// of one d series in one interval.
func (t *sinkTotals) addSketches(raw []byte) error {
	var payload gogen.SketchPayload
	if err := payload.Unmarshal(raw); err != nil {
		return fmt.Errorf("decode SketchPayload: %w", err)
	}
	for _, s := range payload.Sketches {
		var count float64
		for _, d := range s.Dogsketches {
			count += float64(d.Cnt)
		}
		t.Points += len(s.Dogsketches)
		t.count(s.Metric, s.Tags, count)
	}
	return nil
}

// count adds the countable lines of one series: the load's, in all and
// per series, or the process's own, by name.
func (t *sinkTotals) count(name string, tags []string, n float64) {
	switch {
	case strings.HasPrefix(name, loadPrefix):
		t.Countable += n
		t.PerSeries[name+"|"+strings.Join(tags, ",")] += n
	case strings.HasPrefix(name, selfPrefix):
		t.Self[name] += n
	}
}

func decompress(encoding string, data []byte) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch encoding {
	case "deflate": // a zlib stream, as the Datadog Agent sends
		r, err = zlib.NewReader(bytes.NewReader(data))
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(data))
	case "", "identity":
		return data, nil
	default:
		return nil, fmt.Errorf("unknown Content-Encoding %q", encoding)
	}
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", encoding, err)
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", encoding, err)
	}
	return raw, nil
}
