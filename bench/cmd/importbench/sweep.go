package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/stats"
)

// step is one run of the sweep: N locals, repetition rep.
type step struct {
	Locals, Rep int
}

// runOrder interleaves the repetitions across N (N1, N2, N3, N1, N2, …),
// so that a slow minute of a shared machine lands on one repetition of
// every N rather than on every repetition of one.
func runOrder(locals []int, reps int) []step {
	var out []step
	for rep := 1; rep <= reps; rep++ {
		for _, n := range locals {
			out = append(out, step{Locals: n, Rep: rep})
		}
	}
	return out
}

// sweep does every run in order; it returns the runs done so far when ctx
// ends.
func (h *harness) sweep(ctx context.Context) ([]Run, error) {
	var runs []Run
	for _, s := range runOrder(h.opts.locals, h.opts.reps) {
		r := h.runOne(ctx, s.Locals, s.Rep)
		runs = append(runs, r)
		logRun(h.log, &r)
		if ctx.Err() != nil {
			return runs, ctx.Err()
		}
	}
	return runs, nil
}

func logRun(log *slog.Logger, r *Run) {
	if !r.ok() {
		log.Warn("run failed", "locals", r.Locals, "rep", r.Rep, "error", r.Err)
		return
	}
	log.Info("run", "locals", r.Locals, "rep", r.Rep, "journal", r.Journal, "journal_syncs", r.JournalSyncs, "journal_bytes", r.JournalBytes, "digests", r.Merged,
		"global_cpu_s", fmt.Sprintf("%.3f", r.GlobalCPU), "cpu_us_per_digest", fmt.Sprintf("%.2f", r.CPUPerDigestMicros),
		"digests_per_s_per_core", fmtCount(r.DigestsPerCoreSecond), "max_budget_pct", fmt.Sprintf("%.1f", 100*r.BudgetShare),
		"sender_cpu_s", fmt.Sprintf("%.2f", r.SenderCPU), "wall_s", fmt.Sprintf("%.2f", r.ReplaySeconds),
		"other_cpu_s", fmt.Sprintf("%.2f", r.OtherCPU), "steal_pct", fmt.Sprintf("%.1f", r.StealPct), "ticks", r.Ticks)
}

// stat is a median with the range it came from.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	return stat{Median: stats.Median(xs), Min: slices.Min(xs), Max: slices.Max(xs)}
}

// verdict is the budget check of one N: whether each global's CPU for one
// interval's worth of batches fits in what it has per interval.
type verdict struct {
	BudgetCPU float64 `json:"budget_cpu_s"` // cores × interval
	// MaxCPU is the busiest global's CPU, MaxGlobal its index, MaxShare
	// MaxCPU / BudgetCPU; Fits says MaxShare ≤ 1.
	MaxCPU    float64 `json:"max_global_cpu_s"`
	MaxGlobal int     `json:"max_global"`
	MaxShare  float64 `json:"max_share"`
	Fits      bool    `json:"fits"`
}

// judge checks each global's CPU-s for one interval's worth against a
// budget of budgetCPU CPU-s.
func judge(budgetCPU float64, perGlobal []float64) verdict {
	v := verdict{BudgetCPU: budgetCPU, MaxGlobal: -1}
	for i, c := range perGlobal {
		if v.MaxGlobal < 0 || c > v.MaxCPU {
			v.MaxCPU, v.MaxGlobal = c, i
		}
	}
	if budgetCPU > 0 {
		v.MaxShare = v.MaxCPU / budgetCPU
	}
	v.Fits = v.MaxGlobal >= 0 && budgetCPU > 0 && v.MaxShare <= 1
	return v
}

// point is one N over its repetitions: medians (min–max) of the runs that
// produced figures.
type point struct {
	Locals  int   `json:"locals"`
	Digests int64 `json:"digests"` // per run: locals × series
	Runs    int   `json:"runs"`
	Failed  int   `json:"failed"`

	GlobalCPU            stat `json:"global_cpu_s"`
	CPUPerDigestMicros   stat `json:"cpu_us_per_digest"`
	DigestsPerCoreSecond stat `json:"digests_per_s_per_core"`
	SenderCPU            stat `json:"sender_cpu_s"`
	ReplaySeconds        stat `json:"replay_wall_s"`
	OtherCPU             stat `json:"other_cpu_s"`
	StealPct             stat `json:"steal_pct"`

	Globals []globalPoint `json:"globals"`
	// Verdict judges the worst run: each global's highest CPU over the
	// repetitions. MedianShare is the busiest global's median share.
	Verdict     verdict `json:"verdict"`
	MedianShare float64 `json:"median_max_share"`
	// CapacityPerGlobal is the digests one global merges within its
	// budget at the median digests/s/core: budget CPU-s × that rate.
	CapacityPerGlobal float64 `json:"capacity_digests_per_interval_per_global"`
}

type globalPoint struct {
	Index              int     `json:"index"`
	Digests            int64   `json:"digests"`
	Share              float64 `json:"share"`
	CPU                stat    `json:"cpu_s"`
	CPUPerDigestMicros stat    `json:"cpu_us_per_digest"`
	BudgetShare        stat    `json:"budget_share"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"` // the highest over the runs
}

// summarize groups the runs by N, in the order of locals.
func summarize(runs []Run, locals []int, globals int, budgetCPU float64) []point {
	var points []point
	for _, n := range locals {
		p := point{Locals: n}
		var gcpu, perDigest, rate, sender, wall, other, steal, maxShare []float64
		perGlobal := make([][]float64, globals)
		perGlobalDigest := make([][]float64, globals)
		perGlobalShare := make([][]float64, globals)
		p.Globals = make([]globalPoint, globals)
		for i := range runs {
			r := &runs[i]
			if r.Locals != n {
				continue
			}
			if !r.ok() {
				p.Failed++
				continue
			}
			p.Runs++
			p.Digests = r.Merged
			gcpu = append(gcpu, r.GlobalCPU)
			perDigest = append(perDigest, r.CPUPerDigestMicros)
			rate = append(rate, r.DigestsPerCoreSecond)
			sender = append(sender, r.SenderCPU)
			wall = append(wall, r.ReplaySeconds)
			other = append(other, r.OtherCPU)
			steal = append(steal, r.StealPct)
			maxShare = append(maxShare, r.BudgetShare)
			for gi := range min(globals, len(r.Globals)) {
				g := r.Globals[gi]
				perGlobal[gi] = append(perGlobal[gi], g.CPUSeconds)
				perGlobalDigest[gi] = append(perGlobalDigest[gi], g.CPUPerDigestMicros)
				perGlobalShare[gi] = append(perGlobalShare[gi], g.BudgetShare)
				p.Globals[gi].Digests, p.Globals[gi].Share = g.Merged, g.Share
				p.Globals[gi].PeakRSSMiB = max(p.Globals[gi].PeakRSSMiB, g.PeakRSSMiB)
			}
		}
		if p.Runs == 0 && p.Failed == 0 {
			continue
		}
		p.GlobalCPU, p.CPUPerDigestMicros, p.DigestsPerCoreSecond = statOf(gcpu), statOf(perDigest), statOf(rate)
		p.SenderCPU, p.ReplaySeconds, p.OtherCPU, p.StealPct = statOf(sender), statOf(wall), statOf(other), statOf(steal)
		worst := make([]float64, globals)
		for gi := range p.Globals {
			p.Globals[gi].Index = gi
			p.Globals[gi].CPU = statOf(perGlobal[gi])
			p.Globals[gi].CPUPerDigestMicros = statOf(perGlobalDigest[gi])
			p.Globals[gi].BudgetShare = statOf(perGlobalShare[gi])
			if len(perGlobal[gi]) > 0 {
				worst[gi] = slices.Max(perGlobal[gi])
			}
		}
		if p.Runs > 0 {
			p.Verdict = judge(budgetCPU, worst)
			p.MedianShare = stats.Median(maxShare)
			p.CapacityPerGlobal = budgetCPU * p.DigestsPerCoreSecond.Median
		} else {
			p.Verdict = verdict{BudgetCPU: budgetCPU, MaxGlobal: -1}
		}
		points = append(points, p)
	}
	return points
}

// parseLocals reads "10,100,1000" or "1k" as the N of the sweep, in the
// order given, each once.
func parseLocals(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		mult := 1
		if v, ok := strings.CutSuffix(part, "k"); ok {
			part, mult = v, 1000
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 || n*mult > maxLocals {
			return nil, fmt.Errorf("-locals: %q is not a count of locals from 1 to %d", part, maxLocals)
		}
		if !slices.Contains(out, n*mult) {
			out = append(out, n*mult)
		}
	}
	return out, nil
}

// maxLocals bounds N: 100,000 locals of 1,000 series is 10^8 digests, a
// long run already.
const maxLocals = 100_000

// fmtCount prints 1234567 as 1.23M, 12345 as 12.3k.
func fmtCount(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// fmtDuration prints a duration without a long fraction.
func fmtDuration(d time.Duration) string { return d.Round(time.Second).String() }
