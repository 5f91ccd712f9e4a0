package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/wire"
)

// journalInterval is the global's interval in the crash tests: long enough
// that stopping three locals and killing the global fit in one window.
const journalInterval = 5 * time.Second

// startJournaledGlobal runs the binary as the root of the tier, with a
// journal in dir, on fixed addresses (a restart comes back on them), with
// a console sink and, if intake is set, a Datadog sink sending there.
func startJournaledGlobal(t *testing.T, udp, httpAddr, dir, intake string) *instance {
	t.Helper()
	cfg := fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: %s\nhostname: global-1\npercentiles: [0.5, 0.9, 0.99]\nimport_journal_dir: %s\n",
		udp, httpAddr, journalInterval, dir)
	cfg += "metric_sinks:\n  - kind: console\n"
	if intake != "" {
		cfg += fmt.Sprintf("  - kind: datadog\n    name: intake\n    config: {api_key: k, api_hostname: %s}\n", intake)
	}
	p := startBinary(t, cfg)
	waitHealthy(t, httpAddr)
	return &instance{proc: p, udp: udp, http: httpAddr}
}

// fleetSamples is what three locals are sent: timers drawn from at most
// sketch.ExactLimit distinct values, so that the fleet percentiles are
// exact whatever the merge order, and overlapping sets.
type fleetSamples struct {
	timers  [3][]float64
	members [3][]string
}

func newFleetSamples() fleetSamples {
	var s fleetSamples
	for i := range 3 {
		for j := range 150 {
			s.timers[i] = append(s.timers[i], float64(1+(j*(i+1)+i*7)%50))
		}
		for j := range 80 {
			s.members[i] = append(s.members[i], strconv.Itoa(i*50+j)) // 50..80 shared with the next local
		}
	}
	return s
}

// exactPercentile is the smallest sample whose cumulative count reaches
// p·N: what an exact digest reports (sketch.Digest.Quantile).
func exactPercentile(sorted []float64, p float64) float64 {
	return sorted[max(int(math.Ceil(p*float64(len(sorted))))-1, 0)]
}

// send gives each local its share through datadog-go.
func (s *fleetSamples) send(t *testing.T, locals []*instance) {
	for i, l := range locals {
		c := statsdClient(t, l.udp)
		for _, v := range s.timers[i] {
			if err := c.Timing("fleet.latency", time.Duration(v)*time.Millisecond, nil, 1); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range s.members[i] {
			if err := c.Set("fleet.users", m, nil, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// check asserts that g flushed the fleet's window exactly once, equal to
// the exact values of the samples.
func (s *fleetSamples) check(t *testing.T, g *instance) {
	t.Helper()
	var union []float64
	users := map[string]bool{}
	for i := range 3 {
		union = append(union, s.timers[i]...)
		for _, m := range s.members[i] {
			users[m] = true
		}
	}
	slices.Sort(union)
	g.waitFor(t, "the fleet window flushed", 4*journalInterval, func() bool {
		return len(g.metricLines("fleet.latency.99percentile")) > 0 && len(g.metricLines("fleet.users")) > 0
	})
	for _, p := range []float64{0.5, 0.9, 0.99} {
		name := "fleet.latency." + metric.PercentileName(p)
		want := exactPercentile(union, p)
		if lines := g.metricLines(name); len(lines) != 1 || lines[0].value != want {
			t.Errorf("%s = %+v, want one line of %v (exact, over the %d samples of all three locals)", name, lines, want, len(union))
		}
	}
	if lines := g.metricLines("fleet.users"); len(lines) != 1 || lines[0].value != float64(len(users)) {
		t.Errorf("fleet.users = %+v, want one line of %d", lines, len(users))
	}
}

// postBatch imports one batch under key, as a local would.
func postBatch(t *testing.T, httpAddr, key string) (int, string) {
	t.Helper()
	body, err := wire.AppendEncode(nil, &wire.Batch{
		IntervalStart: time.Now().Truncate(time.Hour), Interval: time.Hour, Source: "test",
		Series: []metric.Series{{Key: metric.SeriesKey(metric.Counter, "fleet.resent", nil), Name: "fleet.resent", Kind: metric.Counter, Value: 7}},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/import", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(wire.HeaderIdempotencyKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// crashFleet runs three locals (one-hour intervals: each forwards its
// whole share in one batch when stopped) into g, stops them so that all
// three batches are acknowledged, and imports one batch of its own under
// key, just after a tick of g so that all of it lands in one window.
func crashFleet(t *testing.T, g *instance, s *fleetSamples, key string) {
	t.Helper()
	locals := make([]*instance, 3)
	for i := range locals {
		locals[i] = startInstance(t, fmt.Sprintf("local-%d", i), "1h", "http://"+g.http)
	}
	s.send(t, locals)
	// Just after a tick of the global: the window the batches go to is
	// flushed at the next one.
	now := time.Now()
	time.Sleep(now.Truncate(journalInterval).Add(journalInterval + 100*time.Millisecond).Sub(now)) // aligning to the clock, not synchronizing
	var wg sync.WaitGroup
	for _, l := range locals {
		wg.Go(func() { l.stop(t) })
	}
	wg.Wait()
	await.Until(t, journalInterval, func() (bool, string) {
		n := scrape(t, g.http)["veneur_import_batches_total{}"]
		return n == 3, fmt.Sprintf("%v batches imported, want 3", n)
	})
	if code, body := postBatch(t, g.http, key); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, body)
	}
}

// restartAndResend starts the global again on its journal, resends the
// batch crashFleet imported (a duplicate now), and checks the window.
func restartAndResend(t *testing.T, udp, httpAddr, dir, intake string, s *fleetSamples) *instance {
	t.Helper()
	g := startJournaledGlobal(t, udp, httpAddr, dir, intake)
	if code, body := postBatch(t, httpAddr, "resent-after-crash"); code != http.StatusOK || body != "ok (duplicate, not merged again)\n" {
		t.Errorf("resend after the restart: %d %q, want 200 duplicate", code, body)
	}
	s.check(t, g)
	return g
}

// kill ends g with SIGKILL.
func kill(t *testing.T, g *instance) {
	t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.done
}

// A journaled global killed with SIGKILL in the middle of a window, after
// it acknowledged the batches of three locals, and restarted within one
// interval, flushes that window with every sample in it (the exact fleet
// percentiles and set size), and recognises a resend of a batch it
// acknowledged before the crash.
func TestJournaledGlobalSIGKILLMidWindowLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("several intervals")
	}
	dir, udp, httpAddr := t.TempDir(), freePort(t, "udp"), freePort(t, "tcp")
	g := startJournaledGlobal(t, udp, httpAddr, dir, "")
	s := newFleetSamples()
	crashFleet(t, g, &s, "resent-after-crash")
	kill(t, g)
	if lines := g.metricLines("fleet.latency.50percentile"); len(lines) != 0 {
		t.Fatalf("the window was flushed before the kill (%v): the test did not crash mid-window", lines)
	}

	g2 := restartAndResend(t, udp, httpAddr, dir, "", &s)
	g2.waitFor(t, "fleet.resent flushed", journalInterval, func() bool { return len(g2.metricLines("fleet.resent")) > 0 })
	if lines := g2.metricLines("fleet.resent"); len(lines) != 1 || lines[0].count != 7 {
		t.Errorf("fleet.resent = %+v, want one line counting 7 (merged once, from the journal)", lines)
	}
	await.Until(t, 2*journalInterval, func() (bool, string) {
		d := g2.counterTotal("veneur.import.duplicates")
		return d == 1, fmt.Sprintf("veneur.import.duplicates flushed %v, want 1", d)
	})
	g2.stop(t)
}

// The same with the kill while the window is being flushed: one sink has
// it, the other hangs. The restarted global replays the window (it was not
// flushed to every sink) and flushes it whole again.
func TestJournaledGlobalSIGKILLDuringFlushLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("several intervals")
	}
	intake, hang := hangingIntake(t)

	dir, udp, httpAddr := t.TempDir(), freePort(t, "udp"), freePort(t, "tcp")
	g := startJournaledGlobal(t, udp, httpAddr, dir, intake)
	s := newFleetSamples()
	crashFleet(t, g, &s, "resent-after-crash")
	// The console has the window: the flush is under way, and the other
	// sink hangs until its deadline, near the next tick.
	g.waitFor(t, "the console flush of the window", 2*journalInterval, func() bool {
		return len(g.metricLines("fleet.users")) > 0
	})
	kill(t, g)

	hang.Store(false)
	g2 := restartAndResend(t, udp, httpAddr, dir, intake, &s)
	g2.stop(t)
}

// A journaled global whose sink hangs keeps each window's batches until
// the sink gives up on it; with a small import_journal_max_bytes the
// journal fills, imports get 503, and the locals hold their series and
// resend them. Once the sink answers again, every count the locals took
// reaches the global's console: nothing was dropped. (A local stopped
// while it holds a refused batch would lose it: that is its own memory.)
func TestJournalFullHoldsTheLocals(t *testing.T) {
	if testing.Short() {
		t.Skip("several intervals")
	}
	intake, hang := hangingIntake(t)

	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	g := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: global-1
import_journal_dir: %s
import_journal_max_bytes: 700
metric_sinks:
  - kind: console
  - kind: datadog
    name: intake
    config: {api_key: k, api_hostname: %s}
`, udp, httpAddr, t.TempDir(), intake))
	waitHealthy(t, httpAddr)
	global := &instance{proc: g, udp: udp, http: httpAddr}

	locals := make([]*instance, 3)
	clients := make([]*statsd.Client, 3)
	for i := range locals {
		locals[i] = startInstance(t, fmt.Sprintf("local-%d", i), "1s", "http://"+httpAddr)
		clients[i] = statsdClient(t, locals[i].udp)
	}
	sent := 0
	send := func() {
		for _, c := range clients {
			for k := range 10 {
				if err := c.Incr("fleet.jobs", []string{"veneurglobalonly", fmt.Sprintf("kind:%d", k)}, 1); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Traffic every interval until the journal has been full.
	await.Until(t, 30*time.Second, func() (bool, string) {
		send()
		full := scrape(t, httpAddr)["veneur_import_errors_total{cause=journal_full}"]
		return full > 0, "no import refused for a full journal yet"
	})
	// The locals held what was refused.
	held := false
	for _, l := range locals {
		m := scrape(t, l.http)
		if m["veneur_forward_errors_total{cause=http_5xx}"] > 0 {
			held = true
		}
	}
	if !held {
		t.Error("no local saw a 503")
	}
	// The sink recovers; the locals go on resending what they hold.
	hang.Store(false)
	await.Until(t, 30*time.Second, func() (bool, string) {
		got := global.counterTotal("fleet.jobs")
		return got >= float64(sent), fmt.Sprintf("fleet.jobs counted %v on the global's console, want %d", got, sent)
	})
	if got := global.counterTotal("fleet.jobs"); got != float64(sent) {
		t.Errorf("fleet.jobs counted %v on the global, want %d", got, sent)
	}
}

// hangingIntake is a Datadog intake that accepts requests and answers none
// (until the client gives up or the test ends) while hang is set, and 202
// otherwise.
func hangingIntake(t testing.TB) (url string, hang *atomic.Bool) {
	hang = new(atomic.Bool)
	hang.Store(true)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // first: srv.Close waits for the hanging handlers
	return srv.URL, hang
}
