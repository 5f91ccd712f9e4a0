package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/wire"
)

// floodSeries and floodCap size the flood tests: a client puts a request
// id in a tag, a million series in one interval, into an instance capped
// at a hundred thousand.
const (
	floodSeries = 1_000_000
	floodCap    = 100_000
	// floodRSSBound is the peak RSS the flooded daemon must stay under:
	// the admitted series (~1 KiB each with their caches and maps) plus
	// the process's base, with room for the garbage collector's slack.
	// Without the cap, the million series would need over 1 GiB.
	floodRSSBound = 200 << 20
)

// scrape reads the daemon's /metrics as name{labels} → value.
func scrape(t testing.TB, httpAddr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// peakRSS reads a process's peak resident set size.
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

// TestBinaryCardinalityFlood sends a million unique series in one interval
// to the built binary, capped at a hundred thousand, over TCP (lossless,
// so that every count is exact). The shed count is exactly what was sent
// beyond the cap, a well-behaved series sent amid the flood is flushed
// with its exact value, and the peak RSS stays under floodRSSBound.
func TestBinaryCardinalityFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a million series")
	}
	tcp, httpAddr := freePort(t, "tcp"), freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [tcp://%s]
http_address: %s
interval: 1h
hostname: flood-host
max_series: %d
max_series_per_name: 0
`, tcp, httpAddr, floodCap))
	waitHealthy(t, httpAddr)

	var lines bytes.Buffer
	lines.WriteString("good:1|c\n") // before the flood: admitted
	for i := range floodSeries {
		fmt.Fprintf(&lines, "flood:1|c|#request_id:%d\n", i)
		if i%100_000 == 0 {
			lines.WriteString("good:1|c\n") // amid it: still exact
		}
	}
	const goods = 1 + floodSeries/100_000
	conn, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(lines.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	const received = `veneur_listener_metrics_received_total{protocol=tcp}`
	const shed = `veneur_cardinality_samples_shed_total{reason=max_series,scope=local}`
	var m map[string]float64
	await.Until(t, 60*time.Second, func() (bool, string) {
		m = scrape(t, httpAddr)
		return m[received] == floodSeries+goods, fmt.Sprintf("received %v of %d", m[received], floodSeries+goods)
	})
	if want := float64(floodSeries - (floodCap - 1)); m[shed] != want {
		t.Errorf("shed %v samples, want %v: everything beyond the cap", m[shed], want)
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB after %d series into a cap of %d", rss>>20, floodSeries, floodCap)
	if rss > floodRSSBound {
		t.Errorf("peak RSS %d MiB, want under %d MiB", rss>>20, floodRSSBound>>20)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line := p.waitLine(t, "good rate", 15*time.Second)
	if !strings.HasSuffix(line, fmt.Sprintf("count=%d", goods)) {
		t.Errorf("good flushed as %q, want count=%d", line, goods)
	}
}

// TestBinaryCardinalityFloodAtTheGlobal: the same flood forwarded to a
// global through its import endpoint, in real batches (the wire format,
// gzipped, over HTTP), gives the same result: exactly the series beyond
// the cap shed, the well-behaved series merged exactly, RSS bounded.
func TestBinaryCardinalityFloodAtTheGlobal(t *testing.T) {
	if testing.Short() {
		t.Skip("a million series")
	}
	httpAddr := freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1h
hostname: global-1
max_series: %d
max_series_per_name: 0
`, freePort(t, "udp"), httpAddr, floodCap))
	waitHealthy(t, httpAddr)

	start := time.Now().Truncate(time.Hour)
	counter := func(name string, tags ...string) metric.Series {
		return metric.Series{Key: metric.SeriesKey(metric.Counter, name, tags), Name: name, Tags: tags, Kind: metric.Counter, Value: 1}
	}
	post := func(key string, series []metric.Series) {
		t.Helper()
		raw, err := wire.AppendEncode(nil, &wire.Batch{IntervalStart: start, Interval: time.Hour, Source: "flooder", Series: series})
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		zw := gzip.NewWriter(&body)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/import", &body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", wire.ContentType)
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set(wire.HeaderIdempotencyKey, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("import %s: status %d", key, resp.StatusCode)
		}
	}
	post("good-0", []metric.Series{counter("good")})
	const batch = 50_000
	goods := 1
	for b := 0; b < floodSeries/batch; b++ {
		series := make([]metric.Series, 0, batch+1)
		for i := b * batch; i < (b+1)*batch; i++ {
			series = append(series, counter("flood", "request_id:"+strconv.Itoa(i)))
		}
		if b%2 == 0 {
			series = append(series, counter("good")) // amid the flood
			goods++
		}
		post("flood-"+strconv.Itoa(b), series)
	}

	m := scrape(t, httpAddr)
	if want := float64(floodSeries - (floodCap - 1)); m[`veneur_cardinality_samples_shed_total{reason=max_series,scope=global}`] != want {
		t.Errorf("shed %v series, want %v", m[`veneur_cardinality_samples_shed_total{reason=max_series,scope=global}`], want)
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB after %d imported series into a cap of %d", rss>>20, floodSeries, floodCap)
	if rss > floodRSSBound {
		t.Errorf("peak RSS %d MiB, want under %d MiB", rss>>20, floodRSSBound>>20)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line := p.waitLine(t, "good rate", 15*time.Second)
	if !strings.Contains(line, "host= ") || !strings.HasSuffix(line, fmt.Sprintf("count=%d", goods)) {
		t.Errorf("good flushed as %q, want a fleet series of count=%d", line, goods)
	}
}
