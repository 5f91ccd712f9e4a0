package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// captureSink records everything flushed to it, for exact assertions.
type captureSink struct {
	mu     sync.Mutex
	points []metric.Point
	events []metric.Event
	checks []metric.ServiceCheck
}

var (
	_ sinks.Sink      = (*captureSink)(nil)
	_ sinks.EventSink = (*captureSink)(nil)
)

func (c *captureSink) Name() string { return "capture" }

func (c *captureSink) Flush(_ context.Context, points []metric.Point) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.points = append(c.points, points...)
	return nil
}

func (c *captureSink) FlushEvents(_ context.Context, events []metric.Event, checks []metric.ServiceCheck) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, events...)
	c.checks = append(c.checks, checks...)
	return nil
}

// userPoints returns the flushed points minus self-metrics and the
// datadog-go client's own telemetry, sorted by name, host and tags.
func (c *captureSink) userPoints() []metric.Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []metric.Point
	for _, p := range c.points {
		if strings.HasPrefix(p.Name, "veneur.") || strings.HasPrefix(p.Name, "datadog.dogstatsd.client.") {
			continue
		}
		out = append(out, p)
	}
	sortPoints(out)
	return out
}

func sortPoints(ps []metric.Point) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		if ps[i].Host != ps[j].Host {
			return ps[i].Host < ps[j].Host
		}
		return strings.Join(ps[i].Tags, ",") < strings.Join(ps[j].Tags, ",")
	})
}

// testDaemon is an in-process veneur-lite with a capture sink.
type testDaemon struct {
	*daemon
	sink   *captureSink
	reg    *telemetry.Registry
	cancel context.CancelFunc
	done   chan error
}

// testConfig listens on UDP, TCP and a Unix datagram socket on free ports,
// with an interval long enough that only the shutdown flush happens, so
// every assertion sees exactly one interval.
func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.StatsdListenAddresses = []config.ListenAddress{
		{Network: "udp", Address: "127.0.0.1:0"},
		{Network: "tcp", Address: "127.0.0.1:0"},
		{Network: "unixgram", Address: t.TempDir() + "/dsd.sock"},
	}
	cfg.HTTPAddress = "127.0.0.1:0"
	cfg.Hostname = "test-host"
	cfg.Interval = config.Duration(time.Hour)
	cfg.NumReaders = 2
	cfg.NumWorkers = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startDaemon(t *testing.T, cfg config.Config) *testDaemon {
	t.Helper()
	sink := &captureSink{}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	reg := telemetry.NewRegistry()
	d, err := newDaemon(cfg, []sinks.Sink{sink}, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{daemon: d, sink: sink, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	t.Cleanup(func() { td.stop(t) })
	return td
}

// stop shuts the daemon down (final flush included) and waits for it.
func (td *testDaemon) stop(t *testing.T) {
	t.Helper()
	td.cancel()
	select {
	case err, ok := <-td.done:
		if ok && err != nil {
			t.Errorf("daemon: %v", err)
		}
		if ok {
			close(td.done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop within 15s")
	}
}

func (td *testDaemon) udpAddr() string  { return td.ListenAddrs()[0] }
func (td *testDaemon) tcpAddr() string  { return td.ListenAddrs()[1] }
func (td *testDaemon) unixPath() string { return td.ListenAddrs()[2] }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pt builds an expected point; timestamps are not compared.
func pt(name string, typ metric.PointType, value float64, host string, tags ...string) metric.Point {
	slices.Sort(tags)
	if tags == nil {
		tags = []string{}
	}
	return metric.Point{Name: name, Type: typ, Value: value, Host: host, Tags: tags}
}

// comparePoints checks got against want exactly (length included). Rates
// are compared as counts over interval, with float tolerance.
func comparePoints(t *testing.T, got, want []metric.Point, interval time.Duration) {
	t.Helper()
	sortPoints(want)
	render := func(ps []metric.Point, isWant bool) []string {
		var out []string
		for _, p := range ps {
			v := p.Value
			if p.Type == metric.RatePoint {
				if !isWant && p.Interval != interval {
					t.Errorf("%s: rate interval %s, want %s", p.Name, p.Interval, interval)
				}
				if !isWant {
					v = p.Value * interval.Seconds()
				}
			}
			tags := p.Tags
			if tags == nil {
				tags = []string{}
			}
			line := fmt.Sprintf("%s %s %s host=%s tags=%v", p.Name, p.Type, roundish(v), p.Host, tags)
			if p.Distribution {
				line += " (of a d series)"
			}
			out = append(out, line)
		}
		return out
	}
	g, w := render(got, false), render(want, true)
	if !slices.Equal(g, w) {
		t.Errorf("flushed points differ\n got (%d):\n  %s\nwant (%d):\n  %s", len(g), strings.Join(g, "\n  "), len(w), strings.Join(w, "\n  "))
	}
}

// roundish prints v with 9 significant digits, so v*3600/3600 noise does not
// make equal counts differ.
func roundish(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.9g", v)
}
