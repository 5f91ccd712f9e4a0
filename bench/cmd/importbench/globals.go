package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
)

// global is one global instance of a run: the built veneur-lite with no
// forward_address, so the root of the tier.
type global struct {
	index    int
	httpAddr string
	child    *proc.Child
}

// URL is the global's base URL, a forward_address entry.
func (g *global) URL() string { return "http://" + g.httpAddr }

// globalConfig is a global's configuration: everything at its default but
// the addresses, the interval and the hostname. The one sink is the
// console, whose lines go to a pipe the harness drains and discards: the
// cheapest output there is, so that what is measured is the import.
func globalConfig(udpAddr, httpAddr string, interval time.Duration, index int, journalDir string) string {
	journal := ""
	if journalDir != "" {
		journal = "import_journal_dir: " + journalDir + "\n"
	}
	return fmt.Sprintf(`# written by bench/cmd/importbench
statsd_listen_addresses: [udp://%s]
http_address: %s
interval: %v
hostname: bench-global-%d
num_readers: 1
metric_sinks:
  - kind: console
`, udpAddr, httpAddr, interval, index) + journal
}

// startGlobals starts n globals, each from a config written into dir, and
// waits until every one answers /healthcheck. On an error none is left
// running.
func startGlobals(ctx context.Context, binary, dir string, n int, interval time.Duration, journal bool) ([]*global, error) {
	var gs []*global
	for i := range n {
		g, err := startGlobal(ctx, binary, dir, i, interval, journal)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("global %d: %w", i, err), stopGlobals(gs, nil))
		}
		gs = append(gs, g)
	}
	return gs, nil
}

func startGlobal(ctx context.Context, binary, dir string, index int, interval time.Duration, journal bool) (*global, error) {
	udpPort, err := proc.FreePort("udp")
	if err != nil {
		return nil, err
	}
	httpPort, err := proc.FreePort("tcp")
	if err != nil {
		return nil, err
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	path := filepath.Join(dir, fmt.Sprintf("global-%d.yaml", index))
	journalDir := ""
	if journal {
		if journalDir, err = os.MkdirTemp(dir, fmt.Sprintf("journal-%d-", index)); err != nil {
			return nil, err
		}
	}
	cfg := globalConfig(fmt.Sprintf("127.0.0.1:%d", udpPort), httpAddr, interval, index, journalDir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	c, err := proc.Start(binary, "-f", path)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitHealthy(ctx, c, httpAddr, 15*time.Second); err != nil {
		return nil, err
	}
	return &global{index: index, httpAddr: httpAddr, child: c}, nil
}

// exitTimeout bounds a global's shutdown: veneur-lite's own budget is 9 s
// from the signal.
const exitTimeout = 20 * time.Second

// stopGlobals stops every global and records in runs (when not nil) how
// each exited and what it logged.
func stopGlobals(gs []*global, runs []GlobalRun) error {
	var errs []error
	for _, g := range gs {
		err := g.child.Stop(exitTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("global %d: %w", g.index, err))
		}
		if runs == nil || g.index >= len(runs) {
			continue
		}
		r := &runs[g.index]
		r.Warnings, r.Errors = g.child.Stderr().Counts()
		if r.Warnings+r.Errors > 0 || err != nil {
			r.LogTail = g.child.Stderr().String()
		}
	}
	return errors.Join(errs...)
}

// The counters a run reads from each global's /metrics: the self-metrics
// veneur.import.* as the Prometheus exposition names them
// (telemetry/exposition: dots become underscores, counters get _total).
const (
	// metricSeries is import.series: the series of every batch the import
	// endpoint merged and acknowledged.
	metricSeries = "veneur_import_series_total"
	// metricMerged is import.series_merged: the series the fleet windows
	// took, which excludes any shed by the cardinality limits.
	metricMerged = "veneur_import_series_merged_total"
	// metricBatches is import.batches.
	metricBatches = "veneur_import_batches_total"
	// metricDuplicates is import.duplicates: batches whose key had been
	// merged already; a replay with fresh keys has none.
	metricDuplicates = "veneur_import_duplicates_total"
	// metricJournalSyncs and metricJournalBytes are the import journal's
	// fdatasyncs and bytes appended (-journal; absent without a journal).
	metricJournalSyncs = "veneur_import_journal_syncs_total"
	metricJournalBytes = "veneur_import_journal_written_bytes_total"
)

// counters are a global's import counters at one moment.
type counters struct {
	Series, Merged, Batches, Duplicates float64
	JournalSyncs, JournalBytes          float64
}

// scrapeClient reads /metrics; a global busy merging answers it between
// batches, well within this.
var scrapeClient = &http.Client{Timeout: 10 * time.Second}

// scrape reads g's import counters from /metrics.
func (g *global) scrape(ctx context.Context) (counters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL()+"/metrics", nil)
	if err != nil {
		return counters{}, fmt.Errorf("scrape global %d: %w", g.index, err)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return counters{}, fmt.Errorf("scrape global %d: %w", g.index, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counters{}, fmt.Errorf("scrape global %d: GET /metrics: %s", g.index, resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return counters{}, fmt.Errorf("scrape global %d: parse /metrics: %w", g.index, err)
	}
	var c counters
	for name, dst := range map[string]*float64{metricSeries: &c.Series, metricMerged: &c.Merged, metricBatches: &c.Batches, metricDuplicates: &c.Duplicates} {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter() == nil {
			var names []string
			for n := range fams {
				if strings.HasPrefix(n, "veneur_import") {
					names = append(names, n)
				}
			}
			return counters{}, fmt.Errorf("scrape global %d: no single counter %s in /metrics (import families: %v)", g.index, name, names)
		}
		*dst = f.GetMetric()[0].GetCounter().GetValue()
	}
	for name, dst := range map[string]*float64{metricJournalSyncs: &c.JournalSyncs, metricJournalBytes: &c.JournalBytes} {
		if f := fams[name]; f != nil && len(f.GetMetric()) == 1 {
			*dst = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return c, nil
}

// awaitSeries polls g's /metrics until import.series reaches want. The
// import endpoint counts a batch before it answers 200, so once every
// request of a replay has its answer this holds at the first scrape; the
// polling only covers a global that answered otherwise.
func (g *global) awaitSeries(ctx context.Context, want float64, timeout time.Duration) (counters, error) {
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		c, err := g.scrape(ctx)
		if err != nil {
			return c, err
		}
		if c.Series >= want {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("global %d: import.series is %.0f after %v, want %.0f", g.index, c.Series, timeout, want)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-g.child.Done():
			return c, fmt.Errorf("global %d exited (%w): %s", g.index, g.child.Err(), g.child.Stderr().String())
		case <-time.After(pause): // polling another process
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// cpuReading is a global's CPU time at one moment, two ways.
type cpuReading struct {
	sched, stat float64
}

func (g *global) cpu() (cpuReading, error) {
	sched, err := proc.TaskCPU(g.child.Pid())
	if err != nil {
		return cpuReading{}, fmt.Errorf("global %d CPU: %w", g.index, err)
	}
	stat, err := proc.StatCPU(g.child.Pid())
	if err != nil {
		return cpuReading{}, fmt.Errorf("global %d CPU: %w", g.index, err)
	}
	return cpuReading{sched: sched, stat: stat}, nil
}
