package main

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/agent-payload/v5/gogen"
)

// sketchIntake is a Datadog stand-in for the distribution test: it decodes
// /api/beta/sketches with the Agent's own protobuf types and v1 series
// JSON, after checking the key, the content type and the zlib stream.
type sketchIntake struct {
	t        *testing.T
	mu       sync.Mutex
	sketches []gogen.SketchPayload_Sketch
	series   []struct{ Metric, Host string }
}

func (in *sketchIntake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		in.t.Errorf("intake: "+format, args...)
		http.Error(w, "rejected", http.StatusBadRequest)
	}
	if r.Header.Get("DD-API-KEY") != "e2e-key" || r.Header.Get("Content-Encoding") != "deflate" {
		fail("%s: key or encoding %q", r.URL.Path, r.Header.Get("Content-Encoding"))
		return
	}
	zr, err := zlib.NewReader(r.Body)
	if err != nil {
		fail("%s: %v", r.URL.Path, err)
		return
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		fail("%s: %v", r.URL.Path, err)
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	switch r.URL.Path {
	case "/api/beta/sketches":
		var p gogen.SketchPayload
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			fail("sketches Content-Type %q", ct)
			return
		}
		if err := p.Unmarshal(raw); err != nil {
			fail("sketches: %v", err)
			return
		}
		in.sketches = append(in.sketches, p.Sketches...)
	case "/api/v2/series":
		var p gogen.MetricPayload
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			fail("v2 series Content-Type %q", ct)
			return
		}
		if err := p.Unmarshal(raw); err != nil {
			fail("v2 series: %v", err)
			return
		}
		for _, s := range p.Series {
			if len(s.Points) != 1 || s.Points[0].Timestamp <= 0 || s.Type == gogen.MetricPayload_UNSPECIFIED {
				fail("v2 series %v", s)
				return
			}
			host := ""
			for _, r := range s.Resources {
				if r.Type != "host" || r.Name == "" {
					fail("v2 resource %v", r)
					return
				}
				host = r.Name
			}
			in.series = append(in.series, struct{ Metric, Host string }{s.Metric, host})
		}
	case "/api/v1/series":
		var p struct {
			Series []struct{ Metric, Host string } `json:"series"`
		}
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&p); err != nil {
			fail("series: %v", err)
			return
		}
		in.series = append(in.series, p.Series...)
	default:
		fail("path %s", r.URL.Path)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// The end-to-end case: datadog-go sends Distribution from three
// clients to three locals forwarding to a global, all with a Datadog sink.
// Each local ships one sketch per series with its host and the exact count
// of its interval; nothing of the d series reaches Datadog as series, from
// the locals or the global; the global still flushes the d fleet
// percentiles to its console, and the h series' to both.
func TestDistributionsShipAsAgentSketchesOnce(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) { testDistributionsShipOnce(t, version) })
	}
}

func testDistributionsShipOnce(t *testing.T, apiVersion string) {
	in := &sketchIntake{t: t}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)

	start := func(hostname, interval, forward string) *instance {
		udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
		cfg := fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: %s
hostname: %s
percentiles: [0.5]
metric_sinks:
  - kind: console
  - kind: datadog
    config:
      api_key: e2e-key
      api_hostname: %s
      api_version: %s
`, udp, httpAddr, interval, hostname, srv.URL, apiVersion)
		if forward != "" {
			cfg += "forward_address: " + forward + "\n"
		}
		p := startBinary(t, cfg)
		waitHealthy(t, httpAddr)
		return &instance{proc: p, udp: udp, http: httpAddr}
	}
	global := start("global-1", "2s", "")
	locals := make([]*instance, 3)
	for i := range locals {
		// One long interval ended by SIGTERM: each local's samples are
		// one interval, so one sketch per series and host.
		locals[i] = start(fmt.Sprintf("local-%d", i), "1h", "http://"+global.http)
	}

	const perLocal = 2000
	for i, l := range locals {
		c := statsdClient(t, l.udp)
		for j := range perLocal {
			v := float64((j*7+i*13)%500) / 4 // quarters: exact in the text
			if err := c.Distribution("e2e.latency", v, []string{"svc:api"}, 1); err != nil {
				t.Fatal(err)
			}
			if j%2 == 0 {
				if err := c.Distribution("e2e.latency", v, []string{"svc:web"}, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Histogram("e2e.hist", v, nil, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	stopTogether(t, locals)
	global.waitFor(t, "the fleet percentiles on the global", 10*time.Second, func() bool {
		return len(global.metricLines("e2e.latency.50percentile")) == 2 && len(global.metricLines("e2e.hist.50percentile")) == 1
	})
	global.stop(t)

	in.mu.Lock()
	defer in.mu.Unlock()
	type key struct{ metric, host, tags string }
	got := map[key][]int64{}
	for _, sk := range in.sketches {
		k := key{sk.Metric, sk.Host, strings.Join(sk.Tags, ",")}
		for _, d := range sk.Dogsketches {
			var binTotal int64
			for _, n := range d.N {
				binTotal += int64(n)
			}
			if binTotal != d.Cnt || d.Ts <= 0 {
				t.Errorf("%v: bins count %d, cnt %d, ts %d", k, binTotal, d.Cnt, d.Ts)
			}
			got[k] = append(got[k], d.Cnt)
		}
	}
	want := map[key][]int64{}
	for i := range locals {
		host := fmt.Sprintf("local-%d", i)
		want[key{"e2e.latency", host, "svc:api"}] = []int64{perLocal}
		want[key{"e2e.latency", host, "svc:web"}] = []int64{perLocal / 2}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sketches at the intake (metric, host, tags → counts):\n%v\nwant\n%v", got, want)
	}
	var histFromGlobal bool
	for _, s := range in.series {
		if strings.HasPrefix(s.Metric, "e2e.latency") {
			t.Errorf("a d series reached the intake as a series: %+v", s)
		}
		histFromGlobal = histFromGlobal || (s.Metric == "e2e.hist.50percentile" && s.Host == "")
	}
	if !histFromGlobal || !slices.ContainsFunc(in.series, func(s struct{ Metric, Host string }) bool {
		return s.Metric == "e2e.hist.count" && s.Host == "local-0"
	}) {
		t.Errorf("the h series did not reach the intake as before (fleet percentile from the global, count from the locals)")
	}
}
