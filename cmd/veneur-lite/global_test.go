package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// consoleLine is one parsed console-sink line:
//
//	<name> <type> <value> host=<host> tags=<t1,t2> [interval=<d> count=<n>]
type consoleLine struct {
	name, typ, host, tags string
	value, count          float64
}

func parseConsoleLine(s string) (consoleLine, bool) {
	f := strings.Fields(s)
	if len(f) < 5 || !strings.HasPrefix(f[3], "host=") || !strings.HasPrefix(f[4], "tags=") {
		return consoleLine{}, false
	}
	v, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		return consoleLine{}, false
	}
	l := consoleLine{name: f[0], typ: f[1], value: v, host: f[3][5:], tags: f[4][5:]}
	if len(f) == 7 && strings.HasPrefix(f[6], "count=") {
		l.count, _ = strconv.ParseFloat(f[6][6:], 64)
	}
	return l, true
}

// metricLines returns the parsed console lines of p named name.
func (p *proc) metricLines(name string) []consoleLine {
	var out []consoleLine
	for _, s := range p.output() {
		if l, ok := parseConsoleLine(s); ok && l.name == name {
			out = append(out, l)
		}
	}
	return out
}

// counterTotal sums the counts of every flushed line of a rate metric.
func (p *proc) counterTotal(name string) float64 {
	var sum float64
	for _, l := range p.metricLines(name) {
		sum += l.count
	}
	return sum
}

// waitFor polls cond (bounded) while the process keeps printing.
func (p *proc) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-p.grew:
		case <-time.After(100 * time.Millisecond): // re-check conditions that depend on other processes
		case <-p.done:
			if !cond() {
				t.Fatalf("process exited (%v) while waiting for %s", p.err, what)
			}
			return
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(12 * time.Second):
		t.Fatal("process did not exit 12s after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit: %v", p.err)
	}
}

type instance struct {
	*proc
	udp, http string
}

// startInstance runs the real binary with a console sink. forward may be
// empty (a global) or a YAML value for forward_address.
func startInstance(t *testing.T, hostname, interval, forward string) *instance {
	t.Helper()
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	cfg := fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: %s\nhostname: %s\npercentiles: [0.5, 0.9, 0.99]\n",
		udp, httpAddr, interval, hostname)
	if forward != "" {
		cfg += "forward_address: " + forward + "\n"
	}
	p := startBinary(t, cfg)
	waitHealthy(t, httpAddr)
	return &instance{proc: p, udp: udp, http: httpAddr}
}

func statsdClient(t *testing.T, addr string) *statsd.Client {
	t.Helper()
	c, err := statsd.New(addr, statsd.WithoutTelemetry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rankError is |rank(v)/n - p| over sorted data: how far a reported
// percentile is from the true one, in rank.
func rankError(sorted []float64, v, p float64) float64 {
	lo, _ := slices.BinarySearch(sorted, v)
	hi := lo
	for hi < len(sorted) && sorted[hi] == v {
		hi++
	}
	// Any rank among equal values counts as exact.
	best := math.Inf(1)
	for _, r := range []int{lo, hi} {
		best = min(best, math.Abs(float64(r)/float64(len(sorted))-p))
	}
	return best
}

// waitJustAfterSecond returns shortly after a wall-clock second boundary, so
// that work started now finishes well before the next tick of a 1s or 2s
// interval.
func waitJustAfterSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 50*time.Millisecond).Sub(now)) // aligning to the clock, not synchronizing
}

// stopTogether stops the locals at once, just after a global tick, so all
// their final batches reach the global within one of its intervals.
func stopTogether(t *testing.T, locals []*instance) {
	t.Helper()
	waitJustAfterSecond()
	var wg sync.WaitGroup
	for _, l := range locals {
		wg.Add(1)
		go func() { defer wg.Done(); l.stop(t) }()
	}
	wg.Wait()
}

// One global and three locals, each local receiving a different
// distribution of the same timer through the real datadog-go client.
func TestGlobalTierFleetPercentiles(t *testing.T) {
	global := startInstance(t, "global-1", "2s", "")
	locals := make([]*instance, 3)
	for i := range locals {
		// Locals use a long interval and flush on SIGTERM, so each one's
		// whole share lands in exactly one forwarded batch.
		locals[i] = startInstance(t, fmt.Sprintf("local-%d", i), "1h", "http://"+global.http)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	const perLocal = 3000
	var union []float64
	for i, l := range locals {
		c := statsdClient(t, l.udp)
		for j := range perLocal {
			var v float64
			switch i {
			case 0:
				v = rng.Float64() * 100
			case 1:
				v = 100 + rng.Float64()*900
			default:
				v = math.Exp(rng.NormFloat64()*0.5 + 4)
			}
			v = math.Round(v*1000) / 1000 // what the wire format of datadog-go keeps
			union = append(union, v)
			if err := c.Histogram("fleet.latency", v, []string{"svc:api"}, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.Set("fleet.users", strconv.Itoa(i*4000+j%5000), nil, 1); err != nil {
				t.Fatal(err)
			}
			if j < 5 {
				if err := c.Incr("fleet.deploys", []string{"veneurglobalonly"}, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Histogram("local.only", float64(j%100), []string{"veneurlocalonly"}, 1); err != nil {
				t.Fatal(err)
			}
		}
		for j := perLocal; j < 5000; j++ { // the rest of this local's set members
			if err := c.Set("fleet.users", strconv.Itoa(i*4000+j), nil, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(union)

	stopTogether(t, locals)

	for i, l := range locals {
		host := fmt.Sprintf("local-%d", i)
		if c := l.metricLines("fleet.latency.count"); len(c) != 1 || c[0].count != perLocal || c[0].host != host || c[0].tags != "svc:api" {
			t.Errorf("%s fleet.latency.count lines %+v, want one with count %d, host %s, tags svc:api", host, c, perLocal, host)
		}
		for _, agg := range []string{"min", "max"} {
			lines := l.metricLines("fleet.latency." + agg)
			if len(lines) != 1 || lines[0].host != host {
				t.Errorf("%s fleet.latency.%s lines %+v", host, agg, lines)
			}
		}
		for _, name := range []string{"fleet.latency.50percentile", "fleet.users", "fleet.deploys"} {
			if lines := l.metricLines(name); len(lines) != 0 {
				t.Errorf("%s flushed %s locally: %+v", host, name, lines)
			}
		}
		if lines := l.metricLines("local.only.50percentile"); len(lines) != 1 || lines[0].host != host {
			t.Errorf("%s local.only.50percentile lines %+v, want one with its host", host, lines)
		}
	}

	global.waitFor(t, "fleet percentiles on the global", 10*time.Second, func() bool {
		return len(global.metricLines("fleet.latency.99percentile")) > 0 && len(global.metricLines("fleet.users")) > 0 &&
			len(global.metricLines("fleet.deploys")) > 0
	})
	for _, pc := range []struct {
		name string
		p    float64
	}{{"fleet.latency.50percentile", 0.5}, {"fleet.latency.90percentile", 0.9}, {"fleet.latency.99percentile", 0.99}} {
		lines := global.metricLines(pc.name)
		if len(lines) != 1 {
			t.Errorf("global flushed %s %d times (%+v), want once: one fleet interval, one flush", pc.name, len(lines), lines)
			continue
		}
		if lines[0].host != "" || lines[0].tags != "svc:api" {
			t.Errorf("%s host=%q tags=%q, want no host and svc:api", pc.name, lines[0].host, lines[0].tags)
		}
		e := rankError(union, lines[0].value, pc.p)
		t.Logf("%s = %v, rank error %.5f over the union of %d samples", pc.name, lines[0].value, e, len(union))
		if e > 0.01 {
			t.Errorf("%s = %v: rank error %.4f over the union of %d samples, want <= 0.01", pc.name, lines[0].value, e, len(union))
		}
	}
	if lines := global.metricLines("fleet.users"); len(lines) == 1 {
		t.Logf("fleet.users = %v, %.2f%% off 13000", lines[0].value, 100*math.Abs(lines[0].value-13000)/13000)
	}
	if lines := global.metricLines("fleet.users"); len(lines) != 1 || math.Abs(lines[0].value-13000)/13000 > 0.03 || lines[0].host != "" {
		t.Errorf("fleet.users on the global = %+v, want one line within 3%% of 13000, no host", lines)
	}
	if lines := global.metricLines("fleet.deploys"); len(lines) != 1 || lines[0].count != 15 || lines[0].host != "" || lines[0].tags != "" {
		t.Errorf("fleet.deploys on the global = %+v, want one line counting 15, no host, magic tag stripped", lines)
	}
	for _, name := range []string{"fleet.latency.count", "fleet.latency.min", "local.only.50percentile"} {
		if lines := global.metricLines(name); len(lines) != 0 {
			t.Errorf("global flushed %s: %+v (aggregates stay on the locals)", name, lines)
		}
	}
}

// dropFirstResponseProxy forwards requests to target; for the first
// request it lets the target process it fully, then closes the client's
// connection without answering, forcing a retry of a batch already merged.
func dropFirstResponseProxy(t *testing.T, target string) (addr string, dropped func() int) {
	t.Helper()
	var mu sync.Mutex
	count := 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req, _ := http.NewRequest(r.Method, "http://"+target+r.URL.Path, strings.NewReader(string(body)))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		respBody, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		count++
		first := count == 1
		mu.Unlock()
		if first {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(respBody)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return count }
}

// importedSamples is the global's own count of histogram samples merged
// from forwarded digests.
func importedSamples(p *proc) float64 { return p.counterTotal("veneur.import.digest_samples") }

// A retried batch whose first delivery was merged is merged once.
func TestGlobalMergesRetriedBatchOnce(t *testing.T) {
	global := startInstance(t, "global-1", "1s", "")
	proxy, requests := dropFirstResponseProxy(t, global.http)
	local := startInstance(t, "local-0", "1h", "http://"+proxy)
	c := statsdClient(t, local.udp)
	const n = 1000
	for i := range n {
		if err := c.Timing("retried.latency", time.Duration(i)*time.Millisecond, nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	local.stop(t)
	if requests() < 2 {
		t.Fatalf("proxy saw %d requests; the dropped response should have forced a retry", requests())
	}
	global.waitFor(t, "the merged batch", 8*time.Second, func() bool { return importedSamples(global.proc) >= n })
	// Give a double merge every chance to show up in the next flush too.
	global.waitFor(t, "two more global flushes", 5*time.Second, func() bool {
		return len(global.metricLines("veneur.flush.points")) >= 3
	})
	if got := importedSamples(global.proc); got != n {
		t.Errorf("global merged %v samples, want exactly %d", got, n)
	}
	if dups := global.counterTotal("veneur.import.duplicates"); dups < 1 {
		t.Errorf("global counted %v duplicate keys, want >= 1", dups)
	}
}

// The global is down for three local intervals: the locals keep flushing
// their own part, and once the global starts it merges every sample.
func TestGlobalOutageLosesNothing(t *testing.T) {
	globalHTTP := freePort(t, "tcp")
	local := startInstance(t, "local-0", "1s", "http://"+globalHTTP)
	c := statsdClient(t, local.udp)
	sent := 0
	for round := range 3 {
		for i := range 200 {
			if err := c.Timing("outage.latency", time.Duration(i)*time.Millisecond, nil, 1); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		local.waitFor(t, fmt.Sprintf("local flush %d during the outage", round), 5*time.Second, func() bool {
			return local.counterTotal("outage.latency.count") == float64(sent)
		})
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Now the global comes up on the address the local forwards to.
	udp := freePort(t, "udp")
	global := startBinary(t, fmt.Sprintf("statsd_listen_addresses: [udp://%s]\nhttp_address: %s\ninterval: 1s\nhostname: global-1\n", udp, globalHTTP))
	waitHealthy(t, globalHTTP)
	global.waitFor(t, "every sample sent during the outage", 15*time.Second, func() bool { return importedSamples(global) >= float64(sent) })
	if got := importedSamples(global); got != float64(sent) {
		t.Errorf("global merged %v samples, want %d", got, sent)
	}
	// The merged window is flushed at the global's next flush, after the
	// import that completed it.
	global.waitFor(t, "a percentile of the held-over data", 5*time.Second, func() bool {
		return len(global.metricLines("outage.latency.99percentile")) > 0
	})
}

// Three globals behind one forward_address list: every series is flushed
// by exactly one of them; without one of them, only its share moves.
func TestShardedGlobalTier(t *testing.T) {
	globals := make([]*instance, 3)
	var addrs []string
	for i := range globals {
		globals[i] = startInstance(t, fmt.Sprintf("global-%d", i), "1s", "")
		addrs = append(addrs, "http://"+globals[i].http)
	}
	const series = 30
	send := func(forward []string) map[string]int {
		local := startInstance(t, "local-0", "1h", "["+strings.Join(forward, ", ")+"]")
		c := statsdClient(t, local.udp)
		for s := range series {
			for v := 1; v <= 100; v++ {
				if err := c.Histogram(fmt.Sprintf("shard.%02d", s), float64(v), nil, 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		local.stop(t)
		owner := map[string]int{}
		await.Until(t, 10*time.Second, func() (bool, string) {
			for gi, g := range globals {
				for s := range series {
					name := fmt.Sprintf("shard.%02d", s)
					for _, l := range g.metricLines(name + ".50percentile") {
						if l.value < 45 || l.value > 56 {
							t.Errorf("%s p50 = %v on global %d, want about 50.5", name, l.value, gi)
						}
						if prev, ok := owner[name]; ok && prev != gi {
							t.Errorf("%s flushed by globals %d and %d", name, prev, gi)
						}
						owner[name] = gi
					}
				}
			}
			return len(owner) == series, fmt.Sprintf("%d of %d series flushed by some global", len(owner), series)
		})
		return owner
	}
	before := send(addrs)
	perGlobal := map[int]int{}
	for _, g := range before {
		perGlobal[g]++
	}
	if len(perGlobal) != 3 {
		t.Errorf("series spread over %d globals, want all 3: %v", len(perGlobal), perGlobal)
	}
	// Drop global 2 from the list: series it did not own stay put.
	for _, g := range globals {
		g.mu.Lock()
		g.lines = nil
		g.mu.Unlock()
	}
	after := send(addrs[:2])
	for name, g := range before {
		if g != 2 && after[name] != g {
			t.Errorf("%s moved from global %d to %d though its global stayed", name, g, after[name])
		}
		if g == 2 && after[name] == 2 {
			t.Errorf("%s still on the removed global", name)
		}
	}
}

// With the global tier unreachable, SIGTERM still flushes the local part
// and exits 0 within 10 s: forwarding retries stop at the shutdown budget.
func TestShutdownWithDeadGlobalIsBounded(t *testing.T) {
	local := startInstance(t, "local-0", "1h", "http://"+freePort(t, "tcp"))
	c := statsdClient(t, local.udp)
	for i := range 100 {
		if err := c.Timing("dead.global", time.Duration(i)*time.Millisecond, nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	local.stop(t)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("exit took %s after SIGTERM, want within 10s", took)
	}
	if lines := local.metricLines("dead.global.count"); len(lines) != 1 || lines[0].count != 100 {
		t.Errorf("local part not flushed: %+v", lines)
	}
}
