package datadog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

// vmBinary is where Debian's victoria-metrics package installs the
// single-node server.
const vmBinary = "/usr/bin/victoria-metrics"

// startVictoriaMetrics runs VictoriaMetrics on a free loopback port with a
// throwaway storage directory and returns its base URL once it is healthy.
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(vmBinary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install -y victoria-metrics): %v", vmBinary, err)
		}
		t.Skipf("%s not installed (apt-get install -y victoria-metrics)", vmBinary)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	out := &syncBuffer{}
	cmd := exec.Command(vmBinary, "-httpListenAddr", addr, "-storageDataPath", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("victoria-metrics output:\n%s", out)
		}
	})

	base := "http://" + addr
	waitFor(t, 20*time.Second, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("victoria-metrics exited: %v\n%s", err, out)
		default:
		}
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("/health: %d %s", resp.StatusCode, body)
	})
	return base
}

// waitFor polls cond until it holds or timeout passes; last describes the
// state for the failure message.
func waitFor(t *testing.T, timeout time.Duration, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v; last: %s", timeout, last)
		}
		<-tick.C
	}
}

type vmSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// vmExport returns the stored samples of the series matching selector.
func vmExport(base, selector string) ([]vmSeries, error) {
	// Make freshly ingested samples searchable now instead of within a
	// second or so.
	if resp, err := http.Get(base + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/api/v1/export?" + url.Values{"match[]": {selector}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %d %s", resp.StatusCode, b)
	}
	var out []vmSeries
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s vmSeries
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("export line %q: %w", sc.Text(), err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b vmSeries) int { return strings.Compare(a.Metric["__name__"], b.Metric["__name__"]) })
	return out, sc.Err()
}

// TestVictoriaMetrics delivers series to a real Datadog-compatible
// receiver and reads them back. VictoriaMetrics (1.79 in Debian) serves
// only the v1 series API under /datadog; it keeps metric names as sent
// (dots included), turns host into a "host" label and each tag into a
// label, gives a tag without a value the value "no_label_value", and
// stores a rate's value as is, ignoring type and interval. It also keeps
// the host and tags of an earlier request for a series that leaves those
// fields out, which is why the sink always sends them; the gzip flush
// below, a hostless series after ones with host and tags, catches that.
func TestVictoriaMetrics(t *testing.T) {
	base := startVictoriaMetrics(t)
	now := time.Now().Unix()

	deflate := newTestSink(t, base+"/datadog", nil)
	gz := newTestSink(t, base+"/datadog/", func(c *Config) { c.Compression = "gzip" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := deflate.Flush(ctx, []aggregate.Point{
		{Name: "vltest.requests", Tags: []string{"env:prod", "route:/users"}, Host: "web-1", Type: aggregate.RatePoint, Value: 2.5, Timestamp: now, Interval: 10 * time.Second},
		{Name: "vltest.queue_depth", Tags: []string{"env:prod"}, Host: "web-1", Value: -4.25, Timestamp: now},
		{Name: "vltest.latency.99percentile", Tags: []string{"env:prod", "canary"}, Value: 240.125, Timestamp: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := gz.Flush(ctx, []aggregate.Point{
		{Name: "vltest.gzipped", Host: "h", Value: 7, Timestamp: now},
		{Name: "vltest.global", Value: 8, Timestamp: now},
	}); err != nil {
		t.Fatal(err)
	}
	if deflate.counter("sink.requests", "endpoint:series", "status_class:2xx") != 1 || gz.counter("sink.series_sent") != 2 {
		t.Errorf("self-metrics do not show both requests accepted")
	}

	ms := now * 1000
	want := []vmSeries{
		{Metric: map[string]string{"__name__": "vltest.global"}, Values: []float64{8}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.gzipped", "host": "h"}, Values: []float64{7}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.latency.99percentile", "env": "prod", "canary": "no_label_value"}, Values: []float64{240.125}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.queue_depth", "env": "prod", "host": "web-1"}, Values: []float64{-4.25}, Timestamps: []int64{ms}},
		{Metric: map[string]string{"__name__": "vltest.requests", "env": "prod", "route": "/users", "host": "web-1"}, Values: []float64{2.5}, Timestamps: []int64{ms}},
	}
	var got []vmSeries
	waitFor(t, 20*time.Second, func() (bool, string) {
		got, err = vmExport(base, `{__name__=~"vltest\\..*"}`)
		if err != nil {
			return false, err.Error()
		}
		return len(got) == len(want), fmt.Sprintf("%d of %d series: %+v", len(got), len(want), got)
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("VictoriaMetrics holds:\n%+v\nwant:\n%+v", got, want)
	}
}
