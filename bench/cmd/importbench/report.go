package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything a sweep produced: the JSON file holds it whole.
type results struct {
	Meta      meta          `json:"meta"`
	Templates templateStats `json:"templates"`
	Points    []point       `json:"points"`
	Runs      []Run         `json:"runs"`
}

// meta says where and how the figures were taken.
type meta struct {
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	Quick         bool      `json:"quick"`
	Complete      bool      `json:"complete"` // false: interrupted, or a run failed
	Args          []string  `json:"args"`
	Commit        string    `json:"commit,omitempty"`
	VeneurVersion string    `json:"veneur_lite_version,omitempty"`
	GoVersion     string    `json:"go_version"`
	Kernel        string    `json:"kernel,omitempty"`
	CPUs          int       `json:"cpus"`
	PrivateNetns  bool      `json:"private_netns"`
	Globals       int       `json:"globals"`
	Locals        []int     `json:"locals"`
	Series        int       `json:"series_per_local"`
	Templates     int       `json:"template_locals"`
	Samples       int       `json:"samples_per_digest"`
	Concurrency   int       `json:"concurrency"`
	InTurn        bool      `json:"globals_in_turn"`
	Reps          int       `json:"reps"`
	Interval      string    `json:"interval"`
	BudgetCores   float64   `json:"budget_cores"`
	BudgetCPU     float64   `json:"budget_cpu_s_per_interval"`
	// HarnessPeakRSSMiB is this process's peak RSS: the templates, and
	// the replay's buffers.
	HarnessPeakRSSMiB float64 `json:"harness_peak_rss_mib"`
	Note              string  `json:"note"`
}

const machineNote = "CPU-s are this machine's: a global on other cores takes more or less. " +
	"Every process shares the same cores, so wall time says little; CPU-s per global is the measure."

// writeFiles writes stem.json and stem.txt into dir and returns the paths.
func writeFiles(dir, stem string, res *results, report string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	base := filepath.Join(dir, stem)
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	var paths []string
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".json", append(js, '\n')}, {base + ".txt", []byte(report)}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return paths, fmt.Errorf("write results: %w", err)
		}
		paths = append(paths, f.path)
	}
	return paths, nil
}

// writeReport prints the tables and the budget verdicts.
func writeReport(w io.Writer, res *results) {
	m, t := res.Meta, res.Templates
	fmt.Fprintf(w, "Import benchmark: locals of %s histogram series each → %d global(s) (%s); %d template locals, %d-sample digests.\n",
		fmtInt(int64(m.Series)), m.Globals, orDash(m.VeneurVersion), m.Templates, m.Samples)
	fmt.Fprintf(w, "Each local sends %d request(s) per interval, its series split %s over the globals, %s B per digest (%s).\n",
		t.Requests, fmtInts(t.MemberShares), fmtFloat(t.BytesPerDigest, 0), orDash(t.Encoding))
	if m.InTurn && m.Globals > 1 {
		fmt.Fprintf(w, "The replay feeds one global at a time (-in-turn), %d requests in flight, each with a fresh Idempotency-Key.\n", m.Concurrency)
	} else {
		fmt.Fprintf(w, "The replay feeds all globals at once, %d requests in flight in all, each with a fresh Idempotency-Key.\n", m.Concurrency)
	}
	netns := "a private network namespace"
	if !m.PrivateNetns {
		netns = "the current network namespace, on 127.0.0.1 (no private namespace could be made)"
	}
	fmt.Fprintf(w, "Started %s, commit %s, %s, %d CPUs, in %s. Medians of %d run(s), (min–max).\n\n",
		m.Started.Format(time.RFC3339), orDash(m.Commit), m.GoVersion, m.CPUs, netns, m.Reps)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "locals\tdigests\truns ok\tglobal CPU-s\tcpu-µs/digest\tdigests/s/core\tsender CPU-s\tsender µs/digest\twall s\tother CPU-s\tsteal %\t")
	for _, p := range res.Points {
		senderPer := math.NaN()
		if p.Digests > 0 {
			senderPer = 1e6 * p.SenderCPU.Median / float64(p.Digests)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			p.Locals, fmtInt(p.Digests), p.Runs, p.Runs+p.Failed,
			fmtStat(p.GlobalCPU, 3), fmtStat(p.CPUPerDigestMicros, 2), fmtStatCount(p.DigestsPerCoreSecond),
			fmtFloat(p.SenderCPU.Median, 2), fmtFloat(senderPer, 2), fmtFloat(p.ReplaySeconds.Median, 2),
			fmtFloat(p.OtherCPU.Median, 2), fmtFloat(p.StealPct.Median, 1))
	}
	_ = tw.Flush()

	if m.Globals > 1 {
		for _, p := range res.Points {
			fmt.Fprintf(w, "\nPer global, %s locals (%s digests):\n", fmtInt(int64(p.Locals)), fmtInt(p.Digests))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "global\tshare\tdigests\tCPU-s\tcpu-µs/digest\tof budget\tpeak RSS MiB\t")
			for _, g := range p.Globals {
				fmt.Fprintf(tw, "%d\t%s %%\t%s\t%s\t%s\t%s %%\t%s\t\n", g.Index, fmtFloat(100*g.Share, 1), fmtInt(g.Digests),
					fmtStat(g.CPU, 2), fmtStat(g.CPUPerDigestMicros, 2), fmtFloat(100*g.BudgetShare.Median, 1), fmtFloat(g.PeakRSSMiB, 0))
			}
			_ = tw.Flush()
		}
	}

	fmt.Fprintf(w, "\nBudget: each global may spend %s cores × %s = %s CPU-s per interval. One run is one interval's worth:\n",
		fmtFloat(m.BudgetCores, 0), m.Interval, fmtFloat(m.BudgetCPU, 0))
	fmt.Fprintf(w, "every local's batches once. The verdict takes each global's highest CPU-s over the runs.\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "locals\tdigests\tbusiest global\tits CPU-s (worst)\tof budget (worst)\tof budget (median)\tverdict\tone global's capacity within budget\t")
	for _, p := range res.Points {
		v := p.Verdict
		if p.Runs == 0 {
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\tFAILED\t-\t\n", p.Locals, fmtInt(p.Digests))
			continue
		}
		verdict := "fits"
		if !v.Fits {
			verdict = "DOES NOT FIT"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s %%\t%s %%\t%s\t%s digests ≈ %s locals\t\n", p.Locals, fmtInt(p.Digests), v.MaxGlobal,
			fmtFloat(v.MaxCPU, 2), fmtFloat(100*v.MaxShare, 1), fmtFloat(100*p.MedianShare, 1), verdict,
			fmtCount(p.CapacityPerGlobal), fmtCount(p.CapacityPerGlobal/float64(m.Series)))
	}
	_ = tw.Flush()
	if last := lastOK(res.Points); last != nil {
		v := last.Verdict
		word := "FITS"
		if !v.Fits {
			word = "DOES NOT FIT"
		}
		fmt.Fprintf(w, "\nVerdict: %s locals × %s series = %s digests per %s interval on %d global(s) of %s cores: %s.\n",
			fmtInt(int64(last.Locals)), fmtInt(int64(m.Series)), fmtInt(last.Digests), m.Interval, m.Globals, fmtFloat(m.BudgetCores, 0), word)
		fmt.Fprintf(w, "The busiest global (%d) spent %s CPU-s in the worst run: %s %% of its %s CPU-s.\n",
			v.MaxGlobal, fmtFloat(v.MaxCPU, 2), fmtFloat(100*v.MaxShare, 1), fmtFloat(v.BudgetCPU, 0))
	}
	var failed []string
	for _, r := range res.Runs {
		if !r.ok() {
			failed = append(failed, fmt.Sprintf("  %d locals, rep %d: %s", r.Locals, r.Rep, r.Err))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nFAILED runs (left out of every figure):\n%s\n", strings.Join(failed, "\n"))
	}
	fmt.Fprintf(w, "\nglobal CPU-s: the globals' CPU over the replay (sum of their threads' schedstat), after a warm-up of one\n")
	fmt.Fprintf(w, "interval per template; cpu-µs/digest and digests/s/core divide it by the digests merged, which must equal\n")
	fmt.Fprintf(w, "those posted (import.series and import.series_merged on each global's /metrics) or the run fails.\n")
	if diff, n := statCPUDiff(res.Runs); n > 0 {
		fmt.Fprintf(w, "Cross-check: utime + stime of /proc/<pid>/stat (10 ms ticks) differed from it by at most %s CPU-s over %d global-runs.\n",
			fmtFloat(diff, 3), n)
	}
	fmt.Fprintf(w, "sender: this process, the locals' HTTP clients. other CPU-s: the machine's busy time minus both.\n")
	fmt.Fprintf(w, "Templates held: %s MiB of bodies (built in %s s); this process's peak RSS: %s MiB.\n",
		fmtFloat(float64(t.TemplateBytes)/(1<<20), 1), fmtFloat(t.BuildSeconds, 1), fmtFloat(m.HarnessPeakRSSMiB, 0))
	fmt.Fprintf(w, "%s\n", m.Note)
}

// statCPUDiff is the largest difference between a global's two CPU
// readings over the runs that produced figures, and how many there were.
func statCPUDiff(runs []Run) (diff float64, n int) {
	for _, r := range runs {
		if !r.ok() {
			continue
		}
		for _, g := range r.Globals {
			diff = max(diff, math.Abs(g.CPUSeconds-g.StatCPUSeconds))
			n++
		}
	}
	return diff, n
}

// lastOK is the largest N with figures: the one a tier verdict is about.
func lastOK(ps []point) *point {
	var best *point
	for i := range ps {
		if ps[i].Runs > 0 && (best == nil || ps[i].Digests > best.Digests) {
			best = &ps[i]
		}
	}
	return best
}

func fmtStat(s stat, prec int) string {
	if math.IsNaN(s.Median) {
		return "-"
	}
	if s.Min == s.Max {
		return fmtFloat(s.Median, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtFloat(s.Median, prec), fmtFloat(s.Min, prec), fmtFloat(s.Max, prec))
}

func fmtStatCount(s stat) string {
	if math.IsNaN(s.Median) {
		return "-"
	}
	if s.Min == s.Max {
		return fmtCount(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtCount(s.Median), fmtCount(s.Min), fmtCount(s.Max))
}

func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// fmtInt prints 1234567 as 1,234,567.
func fmtInt(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtInts(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmtInt(int64(v))
	}
	return strings.Join(parts, " / ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
