package datadog

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/DataDog/agent-payload/v5/gogen"
)

// testKey looks like a real API key so that a leak would be found by a
// plain substring search.
const testKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// gotSeries is one series as the strict intake accepted it, normalized
// from either API version.
type gotSeries struct {
	Metric   string
	Type     string // "gauge", "rate" or "count"
	Interval int64  // 0 when absent
	Host     string
	HasHost  bool
	Tags     []string
	TS       int64
	Value    float64
}

type gotEvent struct {
	Title          string   `json:"title"`
	Text           string   `json:"text"`
	DateHappened   int64    `json:"date_happened"`
	Host           string   `json:"host"`
	AggregationKey string   `json:"aggregation_key"`
	Priority       string   `json:"priority"`
	SourceTypeName string   `json:"source_type_name"`
	AlertType      string   `json:"alert_type"`
	Tags           []string `json:"tags"`
}

type gotCheck struct {
	Check     string   `json:"check"`
	HostName  *string  `json:"host_name"`
	Status    *int     `json:"status"`
	Timestamp int64    `json:"timestamp"`
	Message   string   `json:"message"`
	Tags      []string `json:"tags"`
}

// The documented v1 series payload. Pointers tell an absent field from a
// zero one.
type v1Payload struct {
	Series []struct {
		Metric   string          `json:"metric"`
		Points   [][]json.Number `json:"points"`
		Type     string          `json:"type"`
		Interval *int64          `json:"interval"`
		Host     *string         `json:"host"`
		Tags     []string        `json:"tags"`
	} `json:"series"`
}

// bodyStat describes one accepted series body.
type bodyStat struct {
	series, wire, raw int
}

// intake is a strict stand-in for the Datadog API: it checks the key, the
// headers, the compression and the JSON schema of everything it gets, and
// records what it accepted.
type intake struct {
	t        testing.TB
	version  string // "v1" or "v2"
	encoding string // Content-Encoding expected on series bodies
	// respond picks the answer to a request; attempt counts the requests
	// carrying the same payload, from 1. Nil answers 202.
	respond func(path string, attempt int) (int, string)

	mu       sync.Mutex
	series   []gotSeries
	seen     map[string]int // series identity → times accepted
	bodies   []bodyStat
	events   []gotEvent
	checks   []gotCheck
	sketches []gogen.SketchPayload_Sketch
	// sketchBodies counts the sketches of each accepted sketch body.
	sketchBodies []int
	requests     map[string]int // path → requests received
	attempts     map[[32]byte]int
}

// newIntake starts a strict intake for series of the given API version and
// Content-Encoding.
func newIntake(t testing.TB, version, encoding string) (*intake, *httptest.Server) {
	in := makeIntake(t, version, encoding)
	return in, serve(t, in)
}

func makeIntake(t testing.TB, version, encoding string) *intake {
	return &intake{t: t, version: version, encoding: encoding,
		seen: map[string]int{}, requests: map[string]int{}, attempts: map[[32]byte]int{}}
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wire, err := io.ReadAll(r.Body)
	if err != nil {
		in.reject(w, "read body: %v", err)
		return
	}
	in.mu.Lock()
	in.requests[r.URL.Path]++
	sum := sha256.Sum256(wire)
	in.attempts[sum]++
	attempt := in.attempts[sum]
	in.mu.Unlock()

	if r.Method != http.MethodPost {
		in.reject(w, "method %s", r.Method)
		return
	}
	if got := r.Header.Get("DD-API-KEY"); got != testKey {
		in.reject(w, "DD-API-KEY header is %q", got)
		return
	}
	wantType := "application/json"
	if r.URL.Path == "/api/beta/sketches" || r.URL.Path == "/api/v2/series" {
		wantType = "application/x-protobuf"
	}
	if got := r.Header.Get("Content-Type"); got != wantType {
		in.reject(w, "%s: Content-Type %q, want %q", r.URL.Path, got, wantType)
		return
	}
	wantEncoding := ""
	if strings.HasSuffix(r.URL.Path, "/series") || r.URL.Path == "/api/beta/sketches" {
		wantEncoding = in.encoding
	}
	if got := r.Header.Get("Content-Encoding"); got != wantEncoding {
		in.reject(w, "%s: Content-Encoding %q, want %q", r.URL.Path, got, wantEncoding)
		return
	}
	raw, err := decompress(wantEncoding, wire)
	if err != nil {
		in.reject(w, "%s: decompress: %v", r.URL.Path, err)
		return
	}

	// Decode before answering so that even failed attempts are checked.
	var accept func()
	switch r.URL.Path {
	case "/api/v1/series", "/api/v2/series":
		if want := "/api/" + in.version + "/series"; r.URL.Path != want {
			in.reject(w, "series posted to %s, want %s", r.URL.Path, want)
			return
		}
		// Datadog's documented limits, restated rather than taken from
		// the code under test.
		maxWire, rawBelow := 3_200_000, 62_914_560
		if in.version == "v2" {
			maxWire, rawBelow = 512_000, 5_242_880
		}
		if len(wire) > maxWire || len(raw) >= rawBelow {
			in.reject(w, "body of %d bytes (%d uncompressed) over the %s limits", len(wire), len(raw), in.version)
			return
		}
		got, err := in.decodeSeries(raw)
		if err != nil {
			in.reject(w, "%s: %v", r.URL.Path, err)
			return
		}
		accept = func() {
			in.bodies = append(in.bodies, bodyStat{series: len(got), wire: len(wire), raw: len(raw)})
			for _, s := range got {
				in.seen[seriesKey(s)]++
				in.series = append(in.series, s)
			}
		}
	case "/api/beta/sketches":
		if len(wire) > 5<<19 || len(raw) > 4<<20 {
			in.reject(w, "sketch body of %d bytes (%d uncompressed) over the Agent's limits", len(wire), len(raw))
			return
		}
		got, err := decodeSketches(raw)
		if err != nil {
			in.reject(w, "sketches: %v", err)
			return
		}
		accept = func() {
			in.sketchBodies = append(in.sketchBodies, len(got))
			in.sketches = append(in.sketches, got...)
		}
	case "/api/v1/events":
		var e gotEvent
		if err := strictDecode(raw, &e); err != nil {
			in.reject(w, "event: %v", err)
			return
		}
		if e.Title == "" || e.DateHappened <= 0 ||
			!slices.Contains([]string{"", "normal", "low"}, e.Priority) ||
			!slices.Contains([]string{"", "error", "warning", "info", "success"}, e.AlertType) {
			in.reject(w, "invalid event %+v", e)
			return
		}
		accept = func() { in.events = append(in.events, e) }
	case "/api/v1/check_run":
		var cs []gotCheck
		if err := strictDecode(raw, &cs); err != nil {
			in.reject(w, "check_run: %v", err)
			return
		}
		for _, c := range cs {
			if c.Check == "" || c.HostName == nil || c.Status == nil || *c.Status < 0 || *c.Status > 3 ||
				c.Tags == nil || c.Timestamp <= 0 {
				in.reject(w, "invalid service check %+v", c)
				return
			}
		}
		accept = func() { in.checks = append(in.checks, cs...) }
	default:
		in.reject(w, "unexpected path %s", r.URL.Path)
		return
	}

	code, msg := http.StatusAccepted, `{"status":"ok"}`
	if in.respond != nil {
		code, msg = in.respond(r.URL.Path, attempt)
	}
	if code/100 == 2 {
		in.mu.Lock()
		accept()
		in.mu.Unlock()
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func (in *intake) reject(w http.ResponseWriter, format string, args ...any) {
	in.t.Errorf("intake: "+format, args...)
	http.Error(w, `{"errors":["rejected by test intake"]}`, http.StatusBadRequest)
}

func decompress(encoding string, wire []byte) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch encoding {
	case "":
		return wire, nil
	case "deflate":
		// Datadog's "deflate" is a zlib stream, as the Agent sends it;
		// raw DEFLATE fails here on the missing header.
		r, err = zlib.NewReader(bytes.NewReader(wire))
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(wire))
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
	if err != nil {
		return nil, err
	}
	// ReadAll to EOF also verifies the checksum in the trailer.
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return raw, r.Close()
}

// strictDecode decodes exactly one JSON value with no unknown fields.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func (in *intake) decodeSeries(raw []byte) ([]gotSeries, error) {
	var out []gotSeries
	if in.version == "v2" {
		// Decoded with the Agent's own types; rejected as Datadog would: an
		// unknown or unspecified type, a resource without type or name, a
		// point without timestamp, a series with other than one point.
		var p gogen.MetricPayload
		if err := p.Unmarshal(raw); err != nil {
			return nil, err
		}
		if len(p.Series) == 0 {
			return nil, errors.New("no series")
		}
		for _, s := range p.Series {
			g := gotSeries{Metric: s.Metric, Tags: s.Tags, Interval: s.Interval}
			if g.Tags == nil {
				g.Tags = []string{} // protobuf does not tell absent from empty
			}
			if s.Metric == "" || len(s.Points) != 1 || s.Points[0] == nil || s.Points[0].Timestamp == 0 {
				return nil, fmt.Errorf("incomplete v2 series %+v", s)
			}
			g.TS, g.Value = s.Points[0].Timestamp, s.Points[0].Value
			switch s.Type {
			case gogen.MetricPayload_COUNT:
				g.Type = "count"
			case gogen.MetricPayload_RATE:
				g.Type = "rate"
			case gogen.MetricPayload_GAUGE:
				g.Type = "gauge"
			default:
				return nil, fmt.Errorf("%s: v2 type %v", s.Metric, s.Type)
			}
			for _, r := range s.Resources {
				if r == nil || r.Type != "host" || r.Name == "" || g.HasHost {
					return nil, fmt.Errorf("%s: resource %+v", s.Metric, r)
				}
				g.Host, g.HasHost = r.Name, true
			}
			out = append(out, g)
		}
	} else {
		var p v1Payload
		if err := strictDecode(raw, &p); err != nil {
			return nil, err
		}
		if p.Series == nil {
			return nil, errors.New("no series array")
		}
		for _, s := range p.Series {
			g := gotSeries{Metric: s.Metric, Type: s.Type, Tags: s.Tags}
			if s.Metric == "" || len(s.Points) != 1 || len(s.Points[0]) != 2 {
				return nil, fmt.Errorf("bad v1 series %+v", s)
			}
			ts, err := strconv.ParseInt(s.Points[0][0].String(), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: timestamp: %w", s.Metric, err)
			}
			v, err := s.Points[0][1].Float64()
			if err != nil {
				return nil, fmt.Errorf("%s: value: %w", s.Metric, err)
			}
			g.TS, g.Value = ts, v
			if !slices.Contains([]string{"gauge", "rate", "count"}, s.Type) {
				return nil, fmt.Errorf("%s: v1 type %q", s.Metric, s.Type)
			}
			if s.Interval != nil {
				g.Interval = *s.Interval
			}
			// The sink sends every field, as the Agent does: "host":""
			// is a series without host, "tags":[] one without tags.
			if s.Host == nil || s.Tags == nil || s.Interval == nil {
				return nil, fmt.Errorf("%s: host, tags or interval left out", s.Metric)
			}
			g.Host, g.HasHost = *s.Host, *s.Host != ""
			out = append(out, g)
		}
	}
	for i, g := range out {
		if g.Tags == nil {
			return nil, fmt.Errorf("%s: tags left out", g.Metric)
		}
		if len(g.Tags) == 0 {
			out[i].Tags = nil // compare as "no tags"
		}
		if g.TS <= 0 {
			return nil, fmt.Errorf("%s: timestamp %d", g.Metric, g.TS)
		}
		if (g.Type == "rate" || g.Type == "count") && g.Interval <= 0 {
			return nil, fmt.Errorf("%s: %s without interval", g.Metric, g.Type)
		}
	}
	return out, nil
}

func seriesKey(s gotSeries) string {
	return s.Metric + "|" + s.Host + "|" + strings.Join(s.Tags, ",")
}

func (in *intake) snapshot() (series []gotSeries, bodies []bodyStat, requests map[string]int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.series), slices.Clone(in.bodies), maps.Clone(in.requests)
}

// decodeSketches decodes a SketchPayload with the Agent's own types and
// rejects what the sketch intake would not make sense of: a sketch without
// metric or dogsketch, a dogsketch without timestamp or count, keys and
// counts of different lengths, unsorted keys, zero counts, counts that do
// not add up to cnt, min > max.
func decodeSketches(raw []byte) ([]gogen.SketchPayload_Sketch, error) {
	var p gogen.SketchPayload
	if err := p.Unmarshal(raw); err != nil {
		return nil, err
	}
	if len(p.Sketches) == 0 {
		return nil, errors.New("no sketches")
	}
	for _, sk := range p.Sketches {
		if sk.Metric == "" || len(sk.Dogsketches) == 0 || len(sk.Distributions) > 0 {
			return nil, fmt.Errorf("sketch %q: %d dogsketches, %d distributions", sk.Metric, len(sk.Dogsketches), len(sk.Distributions))
		}
		for _, d := range sk.Dogsketches {
			if d.Ts <= 0 || d.Cnt <= 0 || len(d.K) != len(d.N) || len(d.K) == 0 || d.Min > d.Max {
				return nil, fmt.Errorf("sketch %q: dogsketch %+v", sk.Metric, d)
			}
			var total int64
			for i, n := range d.N {
				if n == 0 || (i > 0 && d.K[i] < d.K[i-1]) {
					return nil, fmt.Errorf("sketch %q: bin %d (k=%d n=%d) zero or out of order", sk.Metric, i, d.K[i], n)
				}
				total += int64(n)
			}
			if total != d.Cnt {
				return nil, fmt.Errorf("sketch %q: bins count %d, cnt %d", sk.Metric, total, d.Cnt)
			}
		}
	}
	return p.Sketches, nil
}

func (in *intake) gotSketches() (sketches []gogen.SketchPayload_Sketch, bodies []int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.sketches), slices.Clone(in.sketchBodies)
}
