package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/veneur-lite/veneur-lite/metric"
)

const (
	rate  = metric.RatePoint
	gauge = metric.GaugePoint
	host  = "test-host"
)

// sendWithDatadogGo emits one of every DogStatsD construct through the real
// client and closes it, which flushes its buffers and aggregation.
func sendWithDatadogGo(t *testing.T, addr string, opts ...statsd.Option) {
	t.Helper()
	opts = append([]statsd.Option{statsd.WithoutTelemetry(), statsd.WithContainerID("c0ffee")}, opts...)
	c, err := statsd.New(addr, opts...)
	if err != nil {
		t.Fatalf("datadog-go client for %s: %v", addr, err)
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("datadog-go: %v", err)
		}
	}
	for i := range 100 {
		check(c.Incr("page.views", []string{"env:prod", "route:/a"}, 1))
		check(c.Count("bytes.out", 10, []string{"route:/a", "env:prod"}, 1)) // tag order differs: same series
		check(c.Histogram("req.size", float64(i+1), []string{"env:prod"}, 1))
		check(c.Timing("req.latency", time.Duration(i+1)*time.Millisecond, nil, 1))
		check(c.Distribution("payload", float64(100-i), []string{"host:other-box"}, 1))
		check(c.Set("users", fmt.Sprintf("user-%d", i%40), nil, 1))
	}
	check(c.Gauge("queue.depth", 7, nil, 1))
	check(c.Gauge("queue.depth", -4, nil, 1)) // last value wins, sign included
	check(c.Event(&statsd.Event{
		Title: "deploy", Text: "line one\nline two", Hostname: "ci-box", AggregationKey: "deploys",
		Priority: statsd.Low, SourceTypeName: "jenkins", AlertType: statsd.Success, Tags: []string{"team:web"},
		Timestamp: time.Unix(1700000000, 0),
	}))
	check(c.ServiceCheck(&statsd.ServiceCheck{
		Name: "db.up", Status: statsd.Critical, Hostname: "db-1", Message: "connection refused",
		Tags: []string{"db:main"}, Timestamp: time.Unix(1700000001, 0),
	}))
	check(c.Close())
}

// wantDatadogGo is what sendWithDatadogGo must produce with the default
// aggregates (min, max, count) and percentiles (0.5, 0.75, 0.99), once the
// interval after has flushed (percentiles and set sizes are fleet series,
// one interval late). Percentile values are checked separately, by name
// and rough value.
func wantDatadogGo() []metric.Point {
	return []metric.Point{
		pt("page.views", rate, 100, host, "env:prod", "route:/a"),
		pt("bytes.out", rate, 1000, host, "env:prod", "route:/a"),
		pt("req.size.min", gauge, 1, host, "env:prod"),
		pt("req.size.max", gauge, 100, host, "env:prod"),
		pt("req.size.count", rate, 100, host, "env:prod"),
		pt("req.latency.min", gauge, 1, host),
		pt("req.latency.max", gauge, 100, host),
		pt("req.latency.count", rate, 100, host),
		dist(pt("payload.min", gauge, 1, "other-box")),
		dist(pt("payload.max", gauge, 100, "other-box")),
		dist(pt("payload.count", rate, 100, "other-box")),
		pt("users", gauge, 40, ""), // fleet-wide: the root of the tier merges sets
		pt("queue.depth", gauge, -4, host),
	}
}

// dist marks a point of a d series (which the Datadog sink ships as a
// sketch instead).
func dist(p metric.Point) metric.Point {
	p.Distribution = true
	return p
}

// splitPercentiles separates percentile points (checked loosely: t-digest
// values) from the rest (checked exactly).
func splitPercentiles(points []metric.Point) (exact []metric.Point, pct map[string]float64) {
	pct = map[string]float64{}
	for _, p := range points {
		if strings.HasSuffix(p.Name, "percentile") {
			pct[p.Name+"@"+p.Host] = p.Value
			continue
		}
		exact = append(exact, p)
	}
	return exact, pct
}

func checkDatadogGoOutput(t *testing.T, td *testDaemon) {
	t.Helper()
	got, pct := splitPercentiles(td.sink.userPoints())
	comparePoints(t, got, wantDatadogGo(), time.Hour)
	// This instance is the root of the tier: its percentiles are fleet
	// series, without a host (the line's host: tag included).
	for _, name := range []string{"req.size", "req.latency", "payload"} {
		const h = ""
		for _, p := range []struct {
			suffix string
			want   float64
		}{{"50percentile", 50.5}, {"75percentile", 75.5}, {"99percentile", 99.5}} {
			v, ok := pct[name+"."+p.suffix+"@"+h]
			if !ok || v < p.want-2 || v > p.want+2 {
				t.Errorf("%s.%s = %v (present %v), want about %v", name, p.suffix, v, ok, p.want)
			}
		}
	}
	if len(pct) != 9 {
		t.Errorf("%d percentile points, want 9: %v", len(pct), pct)
	}
	td.sink.mu.Lock()
	defer td.sink.mu.Unlock()
	wantEvent := metric.Event{
		Title: "deploy", Text: "line one\nline two", Timestamp: 1700000000, Hostname: "ci-box", HostSet: true,
		AggregationKey: "deploys", Priority: "low", SourceType: "jenkins", AlertType: "success", Tags: []string{"team:web"},
	}
	if len(td.sink.events) != 1 || fmt.Sprint(td.sink.events[0]) != fmt.Sprint(wantEvent) {
		t.Errorf("events = %+v\nwant [%+v]", td.sink.events, wantEvent)
	}
	wantCheck := metric.ServiceCheck{
		Name: "db.up", Status: metric.CheckCritical, Timestamp: 1700000001, Hostname: "db-1", HostSet: true,
		Tags: []string{"db:main"}, Message: "connection refused",
	}
	if len(td.sink.checks) != 1 || fmt.Sprint(td.sink.checks[0]) != fmt.Sprint(wantCheck) {
		t.Errorf("checks = %+v\nwant [%+v]", td.sink.checks, wantCheck)
	}
}

func TestDatadogGoDefaultClientOverUDP(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	sendWithDatadogGo(t, td.udpAddr())
	td.stop(t)
	checkDatadogGoOutput(t, td)
}

func TestDatadogGoExtendedAggregationOverUDS(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	sendWithDatadogGo(t, "unix://"+td.unixPath(), statsd.WithExtendedClientSideAggregation())
	td.stop(t)
	checkDatadogGoOutput(t, td)
}

func TestDatadogGoUnbufferedUnaggregatedOverUDP(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	sendWithDatadogGo(t, td.udpAddr(), statsd.WithoutClientSideAggregation(), statsd.WithMaxMessagesPerPayload(1))
	td.stop(t)
	checkDatadogGoOutput(t, td)
}

// A malformed line between good ones costs only itself, over every transport.
func TestMalformedLineKeepsNeighbours(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	packet := "good.a:1|c|#t:1\nbad.type:1|cc2\n:nameless|c\nnan:NaN|g\ngood.b:2|g\n\xff\xfe:1|c\ngood.c:3|ms|@0.5\r\n"
	udp, err := net.Dial("udp", td.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := udp.Write([]byte(packet)); err != nil {
		t.Fatal(err)
	}
	uds, err := net.Dial("unixgram", td.unixPath())
	if err != nil {
		t.Fatal(err)
	}
	defer uds.Close()
	if _, err := uds.Write([]byte(packet)); err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Dial("tcp", td.tcpAddr())
	if err != nil {
		t.Fatal(err)
	}
	// The TCP connection stays usable after bad lines: write twice.
	for range 2 {
		if _, err := tcp.Write([]byte(packet)); err != nil {
			t.Fatal(err)
		}
	}
	tcp.Close()
	td.stop(t)
	// 4 copies of the packet: udp, uds, tcp twice.
	want := []metric.Point{
		pt("good.a", rate, 4, host, "t:1"),
		pt("good.b", gauge, 2, host),
		pt("good.c.min", gauge, 3, host),
		pt("good.c.max", gauge, 3, host),
		pt("good.c.count", rate, 8, host),       // @0.5 weighs 2
		pt("good.c.50percentile", gauge, 3, ""), // fleet series
		pt("good.c.75percentile", gauge, 3, ""),
		pt("good.c.99percentile", gauge, 3, ""),
	}
	comparePoints(t, td.sink.userPoints(), want, time.Hour)
}

// TCP: a line split across writes, many concurrent connections, and a last
// line without a newline at close.
func TestTCPFramingAndConcurrency(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	const conns, linesPerConn = 20, 500
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", td.tcpAddr())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			var buf bytes.Buffer
			for i := range linesPerConn {
				fmt.Fprintf(&buf, "tcp.lines:1|c|#conn:%d\n", c%4)
				if i == linesPerConn/2 {
					buf.WriteString("tcp.split:5|c\n")
				}
			}
			// Write in odd-sized pieces so lines straddle reads.
			data := buf.Bytes()
			for len(data) > 0 {
				n := min(len(data), 997)
				if _, err := conn.Write(data[:n]); err != nil {
					errs <- err
					return
				}
				data = data[n:]
			}
			if _, err := conn.Write([]byte("tcp.last:2|c")); err != nil { // no trailing newline
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	td.stop(t)
	want := []metric.Point{
		pt("tcp.last", rate, 2*conns, host),
		pt("tcp.split", rate, 5*conns, host),
	}
	for c := range 4 {
		want = append(want, pt("tcp.lines", rate, linesPerConn*conns/4, host, fmt.Sprintf("conn:%d", c)))
	}
	comparePoints(t, td.sink.userPoints(), want, time.Hour)
}

// The real nc, over UDP and over TCP with a trailing newline.
func TestNetcat(t *testing.T) {
	nc := requireNetcat(t)
	td := startDaemon(t, testConfig(t))
	udpHost, udpPort, _ := net.SplitHostPort(td.udpAddr())
	tcpHost, tcpPort, _ := net.SplitHostPort(td.tcpAddr())
	runNC(t, "deploys:1|c|#svc:api\n", nc, "-u", "-w0", udpHost, udpPort)
	runNC(t, "deploys:2|c|#svc:api\ntemp:21.5|g\n", nc, "-N", "-w1", tcpHost, tcpPort)
	td.stop(t)
	comparePoints(t, td.sink.userPoints(), []metric.Point{
		pt("deploys", rate, 3, host, "svc:api"),
		pt("temp", gauge, 21.5, host),
	}, time.Hour)
}

func requireNetcat(t *testing.T) string {
	t.Helper()
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Fatal("nc not found: install netcat-openbsd (.ci/run does)")
	}
	return nc
}

// runNC runs nc with input on its stdin. The input is a file, not a pipe
// fed by a goroutine: with -w0 nc gives up if stdin is not readable at its
// first poll, exactly as `echo ... | nc -u -w0` never does.
func runNC(t *testing.T, input, nc string, args ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nc-input")
	if err := os.WriteFile(path, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	cmd := exec.Command(nc, args...)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", nc, args, err, out)
	}
}

// The process's own measurements go out through its own pipeline as
// veneur.* series tagged veneur_internal_metric:true.
func TestSelfMetricsFlowThroughPipeline(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	c, err := net.Dial("udp", td.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if _, err := c.Write([]byte("ok:1|c\nbad:1|zz\nnan:NaN|g")); err != nil {
			t.Fatal(err)
		}
	}
	td.stop(t)
	got := map[string]float64{}
	td.sink.mu.Lock()
	for _, p := range td.sink.points {
		if !strings.HasPrefix(p.Name, "veneur.") {
			continue
		}
		if !slices.Contains(p.Tags, "veneur_internal_metric:true") {
			t.Errorf("%s lacks veneur_internal_metric:true: %v", p.Name, p.Tags)
		}
		key := p.Name + "|" + strings.Join(slices.DeleteFunc(slices.Clone(p.Tags), func(s string) bool { return s == "veneur_internal_metric:true" }), ",")
		v := p.Value
		if p.Type == rate {
			v *= p.Interval.Seconds()
		}
		got[key] = v
	}
	td.sink.mu.Unlock()
	for key, want := range map[string]float64{
		"veneur.listener.packets_received|protocol:udp":    3,
		"veneur.listener.metrics_received|protocol:udp":    3,
		"veneur.listener.parse_errors|reason:unknown_type": 3,
		"veneur.listener.parse_errors|reason:bad_value":    3,
	} {
		if v, ok := got[key]; !ok || math.Abs(v-want) > 1e-6 {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if t.Failed() {
		t.Logf("self-metrics flushed: %v", got)
	}
}
