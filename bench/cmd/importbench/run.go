package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
	"github.com/veneur-lite/veneur-lite/internal/cputime"
)

// Run is one replay: N locals' interval to fresh globals.
type Run struct {
	Locals  int       `json:"locals"`
	Rep     int       `json:"rep"`
	Start   time.Time `json:"start"`
	Journal bool      `json:"journal"`
	// JournalSyncs and JournalBytes are the globals' journal fdatasyncs
	// and bytes appended over the replay (-journal).
	JournalSyncs int64 `json:"journal_syncs"`
	JournalBytes int64 `json:"journal_written_bytes"`

	// Posted is the digests in the batches the replay posted; Merged the
	// increase of the globals' import.series over the replay. A run whose
	// Merged differs from Posted, or with any answer but 200, failed.
	Posted   int64 `json:"digests_posted"`
	Merged   int64 `json:"digests_merged"`
	Requests int64 `json:"requests"`
	Non200   int64 `json:"non_200"`

	Globals []GlobalRun `json:"globals"`

	// GlobalCPU is the globals' CPU over the replay, summed; the per-digest
	// figures divide it by Merged.
	GlobalCPU            float64 `json:"global_cpu_s"`
	CPUPerDigestMicros   float64 `json:"cpu_us_per_digest"`
	DigestsPerCoreSecond float64 `json:"digests_per_s_per_core"`
	// MaxGlobalCPU is the busiest global's CPU; BudgetShare that over the
	// per-interval budget of one global.
	MaxGlobalCPU float64 `json:"max_global_cpu_s"`
	BudgetShare  float64 `json:"max_budget_share"`

	// SenderCPU is this process's CPU over the replay: the simulated
	// locals' HTTP clients, and the loopback copies the kernel does for
	// their writes.
	SenderCPU          float64 `json:"sender_cpu_s"`
	SenderMicrosPerDig float64 `json:"sender_cpu_us_per_digest"`
	ReplaySeconds      float64 `json:"replay_wall_s"`
	// OtherCPU is the machine's busy time over the replay minus the
	// globals and this process: other sessions' work. StealPct is the
	// hypervisor's steal over the same time.
	OtherCPU float64 `json:"other_cpu_s"`
	StealPct float64 `json:"steal_pct"`
	// Ticks is how many interval boundaries the replay crossed: each is a
	// flush of every global, whose CPU counts in the run.
	Ticks int `json:"interval_ticks"`
	// WarmupDigests went to the globals before the measurement (one
	// batch set per template), so that the series exist in the window and
	// the heap has grown; they count in no figure.
	WarmupDigests int64 `json:"warmup_digests"`

	Err string `json:"error,omitempty"`
}

// GlobalRun is one global's part of a run.
type GlobalRun struct {
	Index        int     `json:"index"`
	Posted       int64   `json:"digests_posted"`
	Merged       int64   `json:"digests_merged"`        // Δ import.series
	WindowMerged int64   `json:"digests_window_merged"` // Δ import.series_merged: none shed
	Batches      int64   `json:"batches"`
	Duplicates   int64   `json:"duplicates"`
	Share        float64 `json:"share"` // of the run's merged digests
	// CPUSeconds is the global's CPU over the replay from the threads'
	// schedstat (ns); StatCPUSeconds the same from /proc/<pid>/stat
	// utime + stime (10 ms ticks, exited threads included), a check.
	CPUSeconds         float64 `json:"cpu_s"`
	StatCPUSeconds     float64 `json:"stat_cpu_s"`
	CPUPerDigestMicros float64 `json:"cpu_us_per_digest"`
	BudgetShare        float64 `json:"budget_share"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	Warnings           int     `json:"log_warnings,omitempty"`
	Errors             int     `json:"log_errors,omitempty"`
	LogTail            string  `json:"log_tail,omitempty"`
}

func (r *Run) ok() bool { return r.Err == "" }

// harness holds what every run shares.
type harness struct {
	opts      options
	templates []*template
	replay    *replayer
	tmp       string // global configs
	log       *slog.Logger
	// profile, when set, has global 0 profiled during the replay.
	profile *profileRequest
}

// runOne replays n locals to fresh globals and measures them.
func (h *harness) runOne(ctx context.Context, n, rep int) Run {
	r := Run{Locals: n, Rep: rep, Start: time.Now().UTC(), Journal: h.opts.journal}
	if err := h.measure(ctx, &r); err != nil {
		r.Err = err.Error()
	}
	return r
}

// awaitTimeout bounds the wait for a global's counter once the replay has
// its answers (it is there at once) and for a warm-up.
const awaitTimeout = 30 * time.Second

func (h *harness) measure(ctx context.Context, r *Run) (err error) {
	gs, err := startGlobals(ctx, h.opts.veneur, h.tmp, h.opts.globals, h.opts.interval, h.opts.journal)
	if err != nil {
		return err
	}
	r.Globals = make([]GlobalRun, len(gs))
	stopped := false
	defer func() {
		if !stopped {
			h.replay.client.CloseIdleConnections()
			err = errors.Join(err, stopGlobals(gs, r.Globals))
		}
	}()

	// Warm-up: one interval of each template, not measured.
	warm, err := h.replay.replay(ctx, gs, 0, len(h.templates))
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if warm.Non200 > 0 {
		return fmt.Errorf("warm-up: %d answers not 200, the first: %s", warm.Non200, warm.FirstFailure)
	}
	for i, g := range gs {
		if _, err := g.awaitSeries(ctx, float64(warm.Posted[i]), awaitTimeout); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		r.WarmupDigests += warm.Posted[i]
	}

	expected := int64(r.Locals) * int64(h.opts.series)
	if err := avoidTick(ctx, h.opts.interval, estimateReplay(expected)); err != nil {
		return err
	}

	// Before: counters first, so that the scrape is not in the CPU.
	before := make([]counters, len(gs))
	for i, g := range gs {
		if before[i], err = g.scrape(ctx); err != nil {
			return err
		}
	}
	cpu0 := make([]cpuReading, len(gs))
	for i, g := range gs {
		if cpu0[i], err = g.cpu(); err != nil {
			return err
		}
	}
	machine0, err := proc.ReadCPUTimes()
	if err != nil {
		return err
	}
	self0 := cputime.Process()
	start := time.Now()
	profiled := make(chan error, 1)
	if h.profile != nil {
		go func() { profiled <- h.profile.fetch(ctx, gs[0].URL()) }()
	} else {
		profiled <- nil
	}

	st, err := h.replayAll(ctx, gs, r.Locals)
	r.ReplaySeconds = st.Wall.Seconds()
	r.Requests, r.Non200 = st.Requests, st.Non200
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	self1 := cputime.Process()

	// After: every answer is in; wait for the counters (at once, for
	// globals that answered 200), then read the CPU.
	after := make([]counters, len(gs))
	for i, g := range gs {
		want := before[i].Series + float64(st.OK[i])
		if after[i], err = g.awaitSeries(ctx, want, awaitTimeout); err != nil {
			return err
		}
	}
	cpu1 := make([]cpuReading, len(gs))
	for i, g := range gs {
		if cpu1[i], err = g.cpu(); err != nil {
			return err
		}
	}
	machine1, err := proc.ReadCPUTimes()
	if err != nil {
		return err
	}
	end := time.Now()
	r.Ticks = ticksBetween(start, end, h.opts.interval)
	if err := <-profiled; err != nil {
		return err
	}
	for i, g := range gs {
		if rss, err := proc.PeakRSS(g.child.Pid()); err == nil {
			r.Globals[i].PeakRSSMiB = float64(rss) / (1 << 20)
		}
	}
	// A global's shutdown waits for open connections, even idle ones
	// that never carried a request (the transport dials more than it
	// ends up using): close this side of them first.
	h.replay.client.CloseIdleConnections()
	scrapeClient.CloseIdleConnections()
	stopped = true
	stopErr := stopGlobals(gs, r.Globals)

	budget := h.opts.budget()
	var merged, globalCPU, maxCPU float64
	for i := range gs {
		gr := &r.Globals[i]
		gr.Index = i
		gr.Posted = st.Posted[i]
		gr.Merged = int64(after[i].Series - before[i].Series)
		gr.WindowMerged = int64(after[i].Merged - before[i].Merged)
		gr.Batches = int64(after[i].Batches - before[i].Batches)
		gr.Duplicates = int64(after[i].Duplicates - before[i].Duplicates)
		r.JournalSyncs += int64(after[i].JournalSyncs - before[i].JournalSyncs)
		r.JournalBytes += int64(after[i].JournalBytes - before[i].JournalBytes)
		gr.CPUSeconds = cpu1[i].sched - cpu0[i].sched
		gr.StatCPUSeconds = cpu1[i].stat - cpu0[i].stat
		if gr.Merged > 0 {
			gr.CPUPerDigestMicros = 1e6 * gr.CPUSeconds / float64(gr.Merged)
		}
		gr.BudgetShare = gr.CPUSeconds / budget
		r.Posted += gr.Posted
		r.Merged += gr.Merged
		merged += float64(gr.Merged)
		globalCPU += gr.CPUSeconds
		maxCPU = max(maxCPU, gr.CPUSeconds)
	}
	for i := range r.Globals {
		if merged > 0 {
			r.Globals[i].Share = float64(r.Globals[i].Merged) / merged
		}
	}
	r.GlobalCPU, r.MaxGlobalCPU, r.BudgetShare = globalCPU, maxCPU, maxCPU/budget
	if merged > 0 && globalCPU > 0 {
		r.CPUPerDigestMicros = 1e6 * globalCPU / merged
		r.DigestsPerCoreSecond = merged / globalCPU
	}
	r.SenderCPU = (self1 - self0).Seconds()
	if r.Posted > 0 {
		r.SenderMicrosPerDig = 1e6 * r.SenderCPU / float64(r.Posted)
	}
	if total := machine1.Total - machine0.Total; total > 0 {
		r.StealPct = 100 * (machine1.Steal - machine0.Steal) / total
	}
	r.OtherCPU = max(0, (machine1.Busy-machine0.Busy)-globalCPU-(cputime.Process()-self0).Seconds())

	return errors.Join(stopErr, r.check(expected))
}

// replayAll replays n locals to every global: to all at once, or with
// -in-turn to one global after the other, each getting its share from
// every local before the next gets any.
func (h *harness) replayAll(ctx context.Context, gs []*global, n int) (replayStats, error) {
	if !h.opts.inTurn {
		return h.replay.replay(ctx, gs, 0, n)
	}
	var all replayStats
	for i := range gs {
		st, err := h.replay.replay(ctx, gs[i:i+1], 0, n)
		if all.Posted == nil {
			all = st
		} else {
			all.add(st)
		}
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// check fails a run that did not merge exactly what it posted.
func (r *Run) check(expected int64) error {
	var errs []error
	if r.Non200 > 0 {
		errs = append(errs, fmt.Errorf("%d of %d answers were not 200", r.Non200, r.Requests))
	}
	if r.Posted != expected {
		errs = append(errs, fmt.Errorf("posted %d digests, want %d (locals × series)", r.Posted, expected))
	}
	for _, g := range r.Globals {
		if g.Merged != g.Posted || g.WindowMerged != g.Posted {
			errs = append(errs, fmt.Errorf("global %d: posted %d digests, import.series rose by %d, import.series_merged by %d",
				g.Index, g.Posted, g.Merged, g.WindowMerged))
		}
		if g.Duplicates != 0 {
			errs = append(errs, fmt.Errorf("global %d: %d duplicate batches", g.Index, g.Duplicates))
		}
	}
	return errors.Join(errs...)
}

// estimateReplay is a generous guess of a replay's wall time, to decide
// whether it can be placed between two flush ticks: 10 µs a digest, more
// than twice what the globals and the sender take together on one core.
func estimateReplay(digests int64) time.Duration {
	return time.Duration(digests) * 10 * time.Microsecond
}

// tickSlack is the margin kept on either side of a flush tick: the
// globals' flush of a window of a few thousand series is done well
// within it.
const tickSlack = 500 * time.Millisecond

// tickWait is how long to wait at now so that a replay expected to take d
// does not cross a flush tick (a multiple of interval, when every global
// flushes): zero when it ends before the next tick, or when it is too
// long to fit between two ticks anyway, and then it crosses one or more,
// as a real interval's imports do, and Run.Ticks says how many.
func tickWait(now time.Time, interval, d time.Duration) time.Duration {
	if d+2*tickSlack > interval/2 {
		return 0
	}
	next := now.Truncate(interval).Add(interval)
	left := next.Sub(now)
	if left >= d+tickSlack {
		return 0
	}
	return left + tickSlack
}

func avoidTick(ctx context.Context, interval, d time.Duration) error {
	wait := tickWait(time.Now(), interval, d)
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ticksBetween counts the multiples of interval in (start, end].
func ticksBetween(start, end time.Time, interval time.Duration) int {
	return int(end.UnixNano()/int64(interval) - start.UnixNano()/int64(interval))
}

// tempDir holds the globals' configs for the whole command.
func tempDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "bench-import-")
	if err != nil {
		return "", nil, fmt.Errorf("config dir: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
