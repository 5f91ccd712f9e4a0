package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything a sweep produced: the JSON file holds it whole.
type results struct {
	Meta      meta      `json:"meta"`
	Loads     []load    `json:"loads"`
	Summaries []summary `json:"summaries"`
	Points    []point   `json:"points"`
	Runs      []Run     `json:"runs"`
}

// meta says where and how the figures were taken.
type meta struct {
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	Quick         bool      `json:"quick"`
	Complete      bool      `json:"complete"` // false: interrupted, or a load failed
	Commit        string    `json:"commit,omitempty"`
	VeneurVersion string    `json:"veneur_lite_version,omitempty"`
	GoVersion     string    `json:"go_version"`
	Kernel        string    `json:"kernel,omitempty"`
	CPUs          int       `json:"cpus"`
	RmemMax       int       `json:"net_core_rmem_max,omitempty"`
	PrivateNetns  bool      `json:"private_netns"`
	RunDuration   string    `json:"run_duration"`
	Reps          int       `json:"reps"`
	Readers       int       `json:"num_readers"`
	ReadBuffer    int       `json:"read_buffer_size_bytes"`
	LossThreshold float64   `json:"loss_threshold_pct"`
	RunSeconds    float64   `json:"run_seconds"`
	Note          string    `json:"note"`
}

func (m meta) duration() time.Duration { return time.Duration(m.RunSeconds * float64(time.Second)) }

const noiseNote = "Absolute figures depend on the machine and on whatever else runs on it; " +
	"compare veneur-lite with the baseline of the same sweep, and take figures that matter on a quiet machine."

// writeFiles writes stem.json, stem.csv, stem.txt and one stem-<load>.png
// per load into dir, and returns the paths.
func writeFiles(dir, stem string, res *results, report string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	base := filepath.Join(dir, stem)
	var paths []string
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".json", append(js, '\n')}, {base + ".txt", []byte(report)}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return paths, fmt.Errorf("write results: %w", err)
		}
		paths = append(paths, f.path)
	}
	if err := writeCSV(base+".csv", res.Runs); err != nil {
		return paths, err
	}
	paths = append(paths, base+".csv")
	for _, ps := range groupByLoad(res.Points) {
		l := findLoad(res.Loads, ps[0].Load)
		if l == nil {
			continue
		}
		path := base + "-" + l.Name + ".png"
		if err := plotLoad(path, l, ps, res.Meta.Started, res.Meta.Reps); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func findLoad(loads []load, name string) *load {
	for i := range loads {
		if loads[i].Name == name {
			return &loads[i]
		}
	}
	return nil
}

// writeCSV writes one row per run.
func writeCSV(path string, runs []Run) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"load", "subject", "rep", "offered_per_s", "start", "sent", "sent_countable", "sent_datagrams",
		"send_errors", "send_seconds", "send_rate_per_s", "received", "received_countable", "delivered_per_s", "loss_pct",
		"kernel_drops_self", "kernel_drops_proc", "rcvbuf_errors", "cpu_s", "cpu_s_per_million", "sender_cpu_s",
		"steal_pct", "other_cpu_s", "log_warnings", "log_errors", "wall_s", "error"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	for _, r := range runs {
		_ = w.Write([]string{r.Load, r.Subject, strconv.Itoa(r.Rep), g(r.Offered), r.Start.Format(time.RFC3339),
			strconv.FormatInt(r.Sent, 10), strconv.FormatInt(r.SentCountable, 10), strconv.FormatInt(r.Datagrams, 10),
			strconv.FormatInt(r.SendErrors, 10), g(r.SendSeconds), g(r.SendRate), g(r.Received), g(r.Countable),
			g(r.DeliveredRate), g(r.LossPct), g(r.DropsSelf), strconv.FormatUint(r.DropsProc, 10),
			strconv.FormatUint(r.RcvbufErrors, 10), g(r.CPUSeconds), g(r.CPUPerMillion), g(r.SenderCPU),
			g(r.StealPct), g(r.OtherCPU), strconv.Itoa(r.Warnings), strconv.Itoa(r.Errors), g(r.WallSeconds), r.Err})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// writeReport prints the full table and the summary.
func writeReport(w io.Writer, res *results) {
	m := res.Meta
	how := fmt.Sprintf("medians of %d runs", m.Reps)
	if m.Reps == 1 {
		how = "1 run per point (no median: -quick is for development only)"
	}
	ns := "private network namespace"
	if !m.PrivateNetns {
		ns = "SHARED network namespace (kernel counters may include other sockets)"
	}
	fmt.Fprintf(w, "bench-compare %s UTC  commit %s  %d CPUs  %s\n", m.Started.Format("2006-01-02 15:04"), orDash(m.Commit), m.CPUs, ns)
	fmt.Fprintf(w, "num_readers %d, read buffer %d B (both receivers); %s of sending per run; %s\n",
		m.Readers, m.ReadBuffer, m.RunDuration, how)
	fmt.Fprintf(w, "%s\n", m.Note)
	if !m.Complete {
		fmt.Fprintf(w, "INCOMPLETE: the sweep was interrupted or a load failed; see the log and the runs' errors.\n")
	}

	for _, ps := range groupByLoad(res.Points) {
		l := findLoad(res.Loads, ps[0].Load)
		fmt.Fprintf(w, "\n== %s", ps[0].Load)
		if l != nil {
			fmt.Fprintf(w, ": %s\n   sender: %d distinct datagrams, %.1f lines each, %d series, %.0f %% of lines countable; veneur-lite interval %v",
				l.About, l.Pool.Packets, float64(l.Pool.Lines)/math.Max(float64(l.Pool.Packets), 1), l.Pool.Series, 100*l.Pool.CountableShare, l.Interval)
			if tickFree(l.Interval, m.duration()) {
				fmt.Fprint(w, " (runs placed between ticks: final flush only)")
			}
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "offered\tsubject\tsent/s\tdelivered/s\tloss %\t(min–max)\tkdrops\tCPU-s/M\tsteal %\tother CPU-s\truns\t")
		for _, p := range ps {
			sent := fmtRate(p.SendRate)
			if p.SenderLimited {
				sent += "*"
			}
			runs := strconv.Itoa(p.Runs)
			if p.Failed > 0 {
				runs += fmt.Sprintf(" (+%d failed)", p.Failed)
			}
			if p.Runs == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t\t-\t-\t-\t-\t%s\t\n", fmtRate(p.Offered), p.Subject, runs)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t(%s–%s)\t%s\t%s\t%s\t%s\t%s\t\n", fmtRate(p.Offered), p.Subject, sent,
				fmtRate(p.Delivered), fmtPct(p.LossPct), fmtPct(p.LossMin), fmtPct(p.LossMax), fmtCount(p.Drops),
				fmtFloat(p.CPUPerMillion, 3), fmtFloat(p.StealPct, 1), fmtFloat(p.OtherCPU, 2), runs)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\n* the sender reached less than %.0f %% of the offered rate: that point is really at its sent/s.\n", 100*senderShortfall)
	fmt.Fprintf(w, "loss: baseline = lines sent but not counted; veneur-lite = countable metrics sent but not found at the sink.\n")
	fmt.Fprintf(w, "kdrops: datagrams dropped by the kernel for want of receive buffer (/proc/net/udp). CPU-s/M: receiver CPU seconds per million metrics received.\n")

	fmt.Fprintf(w, "\nSummary: highest offered rate at which the median end-to-end loss stayed below %g %% (and at every lower rate)\n", m.LossThreshold)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "load\tbaseline\tveneur-lite\tratio\tCPU-s/M baseline\tveneur-lite\tCPU ratio\tCPU compared at\t")
	for _, s := range res.Summaries {
		b, okB := s.CPU[subjectBaseline]
		v, okV := s.CPU[subjectVeneur]
		if !okB {
			b = math.NaN()
		}
		if !okV {
			v = math.NaN()
		}
		at := fmtRate(s.CPURate)
		if !s.CPUAtLossless {
			at += " (lowest; not lossless for both)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Load, fmtThreshold(s.Lossless[subjectBaseline]),
			fmtThreshold(s.Lossless[subjectVeneur]), s.RatioText, fmtFloat(b, 3), fmtFloat(v, 3), fmtRatio(v, b), at)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "≥ rate: no limit found, lossless through the highest rate offered (* or as far as the sender could go: the rate it reached). none: lossy at the lowest rate.\n")
}

func fmtThreshold(t threshold) string {
	switch {
	case t.None:
		return "none"
	case t.SenderLimited:
		return "≥ " + fmtRate(t.Rate) + "*"
	case t.Bound:
		return "≥ " + fmtRate(t.Rate)
	}
	return fmtRate(t.Rate)
}

func fmtPct(v float64) string { return fmtFloat(v, 2) }

func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtRatio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	return fmt.Sprintf("%.1f×", a/b)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
