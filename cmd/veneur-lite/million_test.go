package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"

	"github.com/veneur-lite/veneur-lite/internal/await"
)

// BenchmarkBinaryMillionHistogramSeries measures the built binary, as a
// local that forwards, holding a million live histogram series (3 timer
// samples each) per interval: the resident memory each series costs, and
// how long after the tick the last Datadog POST of the interval's flush
// completes, for a cold interval (every series new) and a steady one (the
// same series again), with counter traffic sent over UDP across the steady
// tick, whose loss is counted end to end (sent against what the intake
// received over two flushes). Each iteration is one whole run, about
// four intervals (a minute) of wall time:
//
//	go test ./cmd/veneur-lite -run '^$' -bench MillionHistogram -benchtime 1x -count 3
func BenchmarkBinaryMillionHistogramSeries(b *testing.B) {
	for b.Loop() {
		r := runMillion(b)
		b.ReportMetric(r.rssPerSeries, "rss-B/series")
		b.ReportMetric(r.peakPerSeries, "peak-rss-B/series")
		b.ReportMetric(r.coldFlush.Seconds(), "cold-flush-s")
		b.ReportMetric(r.flushAfterTick.Seconds(), "flush-s-after-tick")
		b.ReportMetric(r.lossPct, "udp-loss-%")
		b.ReportMetric(float64(r.points), "points")
	}
}

// Shape of the run.
const (
	millionSeries   = 1_000_000
	millionSamples  = 3 // per series: a timer called a few times an interval
	millionInterval = 20 * time.Second
	loadRate        = 200_000 // counter samples per second over UDP
	loadPerDatagram = 25
	loadSeries      = 1000
	loadBefore      = time.Second     // load starts this long before the tick...
	loadAfter       = 4 * time.Second // ...and ends this long after it
)

type millionResult struct {
	rssPerSeries, peakPerSeries float64
	coldFlush, flushAfterTick   time.Duration
	lossPct                     float64
	points                      int
}

// intakeBody is one POST the intake received.
type intakeBody struct {
	done time.Time // when the body had been read in full
	data []byte
}

// recordingIntake stands for Datadog: it keeps each series body and when
// it arrived, and decodes them only after the measurement, so that the
// test process takes no CPU from the daemon while it flushes.
type recordingIntake struct {
	mu     sync.Mutex
	bodies []intakeBody
}

func (in *recordingIntake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/api/v1/series" {
		in.mu.Lock()
		in.bodies = append(in.bodies, intakeBody{done: time.Now(), data: data})
		in.mu.Unlock()
	}
	w.WriteHeader(http.StatusAccepted)
}

func (in *recordingIntake) snapshot() []intakeBody {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]intakeBody(nil), in.bodies...)
}

// seriesTotals decodes v1 series bodies: the points, and the counts of
// the metric named load.
func seriesTotals(bodies []intakeBody, load string) (points int, loadCount float64, err error) {
	for _, body := range bodies {
		zr, err := zlib.NewReader(bytes.NewReader(body.data))
		if err != nil {
			return 0, 0, fmt.Errorf("inflate series body: %w", err)
		}
		var payload struct {
			Series []struct {
				Metric   string       `json:"metric"`
				Type     string       `json:"type"`
				Interval float64      `json:"interval"`
				Points   [][2]float64 `json:"points"`
			} `json:"series"`
		}
		if err := json.NewDecoder(zr).Decode(&payload); err != nil {
			return 0, 0, fmt.Errorf("decode series body: %w", err)
		}
		for _, s := range payload.Series {
			points += len(s.Points)
			if s.Metric != load {
				continue
			}
			for _, p := range s.Points {
				switch s.Type {
				case "rate":
					loadCount += p[1] * s.Interval
				default:
					loadCount += p[1]
				}
			}
		}
	}
	return points, loadCount, nil
}

// currentRSS reads a process's resident set size.
func currentRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/pid/status")
	return 0
}

func runMillion(tb testing.TB) millionResult {
	intake := &recordingIntake{}
	intakeSrv := httptest.NewServer(intake)
	tb.Cleanup(intakeSrv.Close)
	// The global takes every batch and merges nothing: the run measures
	// the local.
	global := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(global.Close)

	udp, tcp, httpAddr := freePort(tb, "udp"), freePort(tb, "tcp"), freePort(tb, "tcp")
	p := startBinary(tb, fmt.Sprintf(`statsd_listen_addresses: [udp://%s, tcp://%s]
http_address: %s
interval: %v
hostname: million-host
forward_address: %s
max_series: 2000000
max_series_per_name: 0
metric_sinks:
  - kind: datadog
    config:
      api_key: not-a-key
      api_hostname: %s
`, udp, tcp, httpAddr, millionInterval, global.URL, intakeSrv.URL))
	waitHealthy(tb, httpAddr)
	pid := p.cmd.Process.Pid
	base := currentRSS(tb, pid)

	// Fill right after a tick, so that the whole interval is ahead.
	time.Sleep(time.Until(time.Now().Truncate(millionInterval).Add(millionInterval + 100*time.Millisecond))) // a wall-clock boundary
	coldTick := time.Now().Truncate(millionInterval).Add(millionInterval)

	var lines bytes.Buffer
	for i := range millionSeries {
		for v := range millionSamples {
			fmt.Fprintf(&lines, "million.latency:%d|ms|#request:%d\n", 10+v, i)
		}
	}
	fill := func(tick time.Time) {
		before := scrape(tb, httpAddr)[tcpReceived]
		conn, err := net.Dial("tcp", tcp)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := conn.Write(lines.Bytes()); err != nil {
			tb.Fatal(err)
		}
		conn.Close()
		await.Until(tb, time.Until(tick), func() (bool, string) {
			got := scrape(tb, httpAddr)[tcpReceived] - before
			return got == millionSeries*millionSamples, fmt.Sprintf("received %v of %d", got, millionSeries*millionSamples)
		})
		if time.Until(tick) < loadBefore {
			tb.Fatalf("the fill ended %v before the tick, want ≥ %v: too slow a machine for this run", time.Until(tick), loadBefore)
		}
	}

	// The cold interval: every series is new.
	fill(coldTick)
	filled := currentRSS(tb, pid)
	wantPoints := float64(3 * millionSeries) // 3 aggregates of each series
	coldEnd := awaitFlush(tb, intake, httpAddr, coldTick, seriesSent(tb, httpAddr), wantPoints)

	// The steady interval: the same series again, with counter load over
	// UDP across its tick, paced in 10 ms steps.
	tick := coldTick.Add(millionInterval)
	fill(tick)
	time.Sleep(time.Until(tick.Add(-loadBefore))) // a wall-clock boundary
	sentBefore := seriesSent(tb, httpAddr)
	pointsBefore := scrape(tb, httpAddr)[`veneur_flush_points_total{}`]
	profiled := profileFlush(tb, httpAddr, time.Until(tick)+6*time.Second)
	defer profiled()
	uc, err := net.Dial("udp", udp)
	if err != nil {
		tb.Fatal(err)
	}
	defer uc.Close()
	var datagrams [loadSeries / loadPerDatagram][]byte
	for d := range datagrams {
		var b strings.Builder
		for k := range loadPerDatagram {
			fmt.Fprintf(&b, "million.load:1|c|#k:%d\n", d*loadPerDatagram+k)
		}
		datagrams[d] = []byte(b.String())
	}
	var sent float64
	loadStart := time.Now()
	for step := 0; time.Since(loadStart) < loadBefore+loadAfter; step++ {
		time.Sleep(time.Until(loadStart.Add(time.Duration(step) * 10 * time.Millisecond))) // pacing
		for i := range loadRate / 100 / loadPerDatagram {
			if _, err := uc.Write(datagrams[i%len(datagrams)]); err == nil {
				sent += loadPerDatagram
			}
		}
	}
	steadyEnd := awaitFlush(tb, intake, httpAddr, tick, sentBefore, wantPoints)
	// Where the flush's time went, by the daemon's own account.
	var phases []string
	for k, v := range scrape(tb, httpAddr) {
		if strings.Contains(k, "duration") {
			phases = append(phases, fmt.Sprintf("%s=%.3g", k, v))
		}
	}
	slices.Sort(phases)
	tb.Logf("steady flush phases: %s", strings.Join(phases, " "))
	peak := peakRSS(tb, pid)

	// The rest of the load is flushed at the next tick. Its bodies have
	// all landed once the points the flusher handed out since then
	// (veneur.flush.points) have all been sent.
	const flushedPoints = `veneur_flush_points_total{}`
	steadyPoints := scrape(tb, httpAddr)[flushedPoints]
	await.Until(tb, time.Until(tick.Add(millionInterval))+10*time.Second, func() (bool, string) {
		m := scrape(tb, httpAddr)
		handed := m[flushedPoints]
		sentSince := seriesSent(tb, httpAddr) - sentBefore
		return handed > steadyPoints && sentSince == handed-pointsBefore,
			fmt.Sprintf("points handed out %v (steady flush: %v), sent since the steady tick %v", handed-pointsBefore, steadyPoints-pointsBefore, sentSince)
	})
	var flushed []intakeBody
	for _, body := range intake.snapshot() {
		if body.done.After(tick) {
			flushed = append(flushed, body)
		}
	}
	points, loadCount, err := seriesTotals(flushed, "million.load")
	if err != nil {
		tb.Fatal(err)
	}
	if float64(points) < wantPoints {
		tb.Fatalf("the intake got %d points, want ≥ %v", points, wantPoints)
	}
	r := millionResult{
		rssPerSeries:   float64(filled-base) / millionSeries,
		peakPerSeries:  float64(peak-base) / millionSeries,
		coldFlush:      coldEnd.Sub(coldTick),
		flushAfterTick: steadyEnd.Sub(tick),
		lossPct:        100 * (sent - loadCount) / sent,
		points:         points,
	}
	tb.Logf("RSS base %d MiB, filled %d MiB (%.0f B/series), peak %d MiB; last POST %v after the cold tick, %v after the steady one; UDP load sent %.0f, counted %.0f (loss %.2f%%)",
		base>>20, filled>>20, r.rssPerSeries, peak>>20, r.coldFlush.Round(time.Millisecond), r.flushAfterTick.Round(time.Millisecond), sent, loadCount, r.lossPct)
	return r
}

const tcpReceived = `veneur_listener_metrics_received_total{protocol=tcp}`

// awaitFlush waits until the sinks have sent want points more than
// sentBefore, by the end of the interval after tick, and returns when the
// last body of them arrived.
func awaitFlush(tb testing.TB, intake *recordingIntake, httpAddr string, tick time.Time, sentBefore, want float64) time.Time {
	var end time.Time
	await.Until(tb, time.Until(tick.Add(millionInterval)), func() (bool, string) {
		got := seriesSent(tb, httpAddr) - sentBefore
		if got < want {
			return false, fmt.Sprintf("%v of %v points sent", got, want)
		}
		bodies := intake.snapshot()
		end = bodies[len(bodies)-1].done
		return true, ""
	})
	return end
}

// seriesSent is what the daemon's sinks have sent so far.
func seriesSent(tb testing.TB, httpAddr string) float64 {
	var n float64
	for k, v := range scrape(tb, httpAddr) {
		if strings.HasPrefix(k, "veneur_sink_series_sent_total{") {
			n += v
		}
	}
	return n
}

// profileFlush, when MILLION_CPU_PROFILE names a file, writes the
// daemon's CPU profile over the next d to it; the returned func waits for
// it. It is how the flush's costs were found:
//
//	MILLION_CPU_PROFILE=/tmp/flush.prof go test ./cmd/veneur-lite -run '^$' -bench MillionHistogram -benchtime 1x
func profileFlush(tb testing.TB, httpAddr string, d time.Duration) (wait func()) {
	path := os.Getenv("MILLION_CPU_PROFILE")
	if path == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, int(d.Seconds()+0.5)))
		if err != nil {
			tb.Errorf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path, data, 0o600)
		}
		if err != nil {
			tb.Errorf("profile: %v", err)
		}
	}()
	return func() { <-done }
}
