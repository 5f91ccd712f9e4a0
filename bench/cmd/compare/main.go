// Command compare is `make bench-compare`: it measures veneur-lite beside a
// do-nothing receiver (bench/cmd/nullrecv) that reads the socket the same
// way, under the same loads, run after run, so that every figure is a
// comparison within one sweep rather than an absolute that a shared,
// noisy machine would not repeat.
//
// See bench/README.md for what it prints and how to read it. In short:
//
//	go run ./bench/cmd/compare -quick   # ~70 s, for development
//	make bench-compare                  # the full sweep, ~11 minutes
//
// The data path of one veneur-lite run:
//
//	sender child ─ UDP 127.0.0.1 ─▶ veneur-lite ─ POST /api/v1/series ─▶ intake (keeps bodies)
//	                                   │ SIGTERM, final flush, exit          │
//	                                   ▼                                     ▼
//	                     rusage (CPU), /proc/net/udp (drops)      decode, Σ value × interval
//
// and of a baseline run the same, with nullrecv printing its counts at exit
// instead of the sink.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
	"golang.org/x/sys/unix"
)

func main() { os.Exit(run(os.Args[1:])) }

// options are the command's flags.
type options struct {
	quick         bool
	loads         string
	rates         string
	reps          int
	duration      time.Duration
	interval      time.Duration
	readers       int
	readBuffer    int
	lossThreshold float64
	out           string
	veneur        string
	nullrecv      string
	noNetns       bool
	timeout       time.Duration
	replot        string

	self string // this executable, for the sender child
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "3 rates per load, 1 run each, 2 s runs: ~2 minutes, for development")
	fs.StringVar(&o.loads, "loads", "", "comma-separated loads to run (default all): "+strings.Join(loadNames(), ", "))
	fs.StringVar(&o.rates, "rates", "", "offered metrics/s for every load, e.g. 0.2M,400k,1e6 (default per load)")
	fs.IntVar(&o.reps, "reps", 0, "runs per receiver and rate; the table shows their median (default 3, -quick 1)")
	fs.DurationVar(&o.duration, "duration", 0, "sending time per run (default 3s, -quick 2s)")
	fs.DurationVar(&o.interval, "interval", 0, "veneur-lite's flush interval for every load (default per load: 1s; 10s for 100k-series)")
	fs.IntVar(&o.readers, "readers", runtime.NumCPU(), "num_readers of veneur-lite, and the baseline's socket count")
	fs.IntVar(&o.readBuffer, "read-buffer", 2<<20, "read_buffer_size_bytes of veneur-lite, and the baseline's SO_RCVBUF request")
	fs.Float64Var(&o.lossThreshold, "loss-threshold", 1, "loss % at or above which a rate counts as lossy in the summary")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results"), "directory for the JSON, CSV, text and PNG results")
	fs.StringVar(&o.veneur, "veneur-lite", "", "veneur-lite binary (default: go build ./cmd/veneur-lite)")
	fs.StringVar(&o.nullrecv, "nullrecv", "", "baseline binary (default: go build ./bench/cmd/nullrecv)")
	fs.BoolVar(&o.noNetns, "no-netns", false, "run in the current network namespace instead of a private one")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "bound on the whole sweep")
	fs.StringVar(&o.replot, "replot", "", "redo the report, tables and plots of an earlier sweep from its results JSON, without running anything")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "compare: unexpected arguments %q\n", fs.Args())
		return o, errors.New("unexpected arguments")
	}
	if o.reps == 0 {
		o.reps = 3
		if o.quick {
			o.reps = 1
		}
	}
	if o.duration == 0 {
		o.duration = 3 * time.Second
		if o.quick {
			o.duration = 2 * time.Second
		}
	}
	var errs []error
	if o.reps < 1 || o.reps > 15 {
		errs = append(errs, fmt.Errorf("-reps %d: want 1 to 15", o.reps))
	}
	if o.duration < 500*time.Millisecond || o.duration > time.Minute {
		errs = append(errs, fmt.Errorf("-duration %v: want 0.5s to 1m", o.duration))
	}
	if o.interval != 0 && o.interval < time.Second {
		errs = append(errs, fmt.Errorf("-interval %v: veneur-lite's minimum is 1s", o.interval))
	}
	if o.readers < 1 || o.readers > 64 {
		errs = append(errs, fmt.Errorf("-readers %d: want 1 to 64", o.readers))
	}
	if o.timeout <= 0 || o.timeout > 6*time.Hour {
		errs = append(errs, fmt.Errorf("-timeout %v: want up to 6h", o.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return o, err
	}
	return o, nil
}

func loadNames() []string {
	var names []string
	for _, l := range defaultLoads(false) {
		names = append(names, l.Name)
	}
	return names
}

// selectLoads applies -quick, -loads and -rates.
func selectLoads(o options) ([]load, error) {
	all := defaultLoads(o.quick)
	var rates []float64
	if o.rates != "" {
		var err error
		if rates, err = parseRates(o.rates); err != nil {
			return nil, err
		}
	}
	var out []load
	if o.loads == "" {
		out = all
	} else {
		for name := range strings.SplitSeq(o.loads, ",") {
			name = strings.TrimSpace(name)
			i := slices.IndexFunc(all, func(l load) bool { return l.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("-loads: unknown load %q (want %s)", name, strings.Join(loadNames(), ", "))
			}
			out = append(out, all[i])
		}
	}
	for i := range out {
		if rates != nil {
			out[i].Rates = rates
		}
		if o.interval != 0 {
			out[i].Interval = o.interval
		}
	}
	return out, nil
}

// parseRates reads "0.2M,400k,1e6" as metrics/s, ascending.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		mult := 1.0
		switch {
		case strings.HasSuffix(part, "M"):
			mult, part = 1e6, strings.TrimSuffix(part, "M")
		case strings.HasSuffix(part, "k"):
			mult, part = 1e3, strings.TrimSuffix(part, "k")
		}
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || !(v*mult >= 1) || v*mult > 20e6 {
			return nil, fmt.Errorf("-rates: %q is not a rate between 1 and 20M metrics/s", part)
		}
		out = append(out, v*mult)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func run(args []string) int {
	if isSenderChild(args) {
		return senderChildMain()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := parseOptions(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if opts.replot != "" {
		if err := replot(opts.replot, os.Stdout); err != nil {
			log.Error("replot", "error", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	private := proc.InPrivateNetns()
	if private {
		if err := proc.BringLoopbackUp(); err != nil {
			log.Error("network namespace", "error", err)
			return 1
		}
	} else {
		// Build before entering the namespace: it has no network, and
		// go build may need the module proxy.
		cleanup, err := buildBinaries(ctx, &opts, log)
		if err != nil {
			log.Error("build", "error", err)
			return 1
		}
		defer cleanup()
		if !opts.noNetns {
			inner := append(slices.Clone(args), "-veneur-lite", opts.veneur, "-nullrecv", opts.nullrecv)
			code, err := proc.ReexecInNetns(ctx, inner)
			if err == nil {
				return code
			}
			log.Warn("running in the current network namespace: other sockets' drops may show in the kernel counters", "error", err)
		}
	}
	if err := runSweep(ctx, opts, private, log); err != nil {
		log.Error("sweep", "error", err)
		return 1
	}
	return 0
}

// buildBinaries builds veneur-lite and nullrecv from the module unless
// their paths were given, and returns a function that removes them.
func buildBinaries(ctx context.Context, o *options, log *slog.Logger) (func(), error) {
	if o.veneur != "" && o.nullrecv != "" {
		return func() {}, nil
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module to build: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return nil, errors.New("not inside the module: run from the repository, or pass -veneur-lite and -nullrecv")
	}
	root := filepath.Dir(mod)
	dir, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	for _, b := range []struct {
		path *string
		pkg  string
	}{{&o.veneur, "./cmd/veneur-lite"}, {&o.nullrecv, "./bench/cmd/nullrecv"}} {
		if *b.path != "" {
			continue
		}
		out := filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, b.pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return nil, fmt.Errorf("go build %s: %w: %s", b.pkg, err, msg)
		}
		log.Info("built", "package", b.pkg)
		*b.path = out
	}
	return cleanup, nil
}

// runOverhead is roughly what a run costs beyond its sending time:
// starting the receiver, veneur-lite's final flush and exit, decoding,
// waiting for a flush tick to pass.
const runOverhead = time.Second

func runSweep(ctx context.Context, opts options, private bool, log *slog.Logger) error {
	loads, err := selectLoads(opts)
	if err != nil {
		return err
	}
	if opts.self, err = os.Executable(); err != nil {
		return fmt.Errorf("find this executable for the sender: %w", err)
	}
	for _, p := range []string{opts.veneur, opts.nullrecv} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("receiver binary: %w", err)
		}
	}
	in, err := newIntake()
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.MkdirTemp("", "bench-compare-run-")
	if err != nil {
		return fmt.Errorf("config dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	res := results{Meta: collectMeta(opts, private), Loads: loads}
	n := 0
	for _, l := range loads {
		n += len(l.Rates) * opts.reps * len(subjects)
	}
	estimate := time.Duration(n) * (opts.duration + runOverhead)
	log.Info("sweep", "loads", len(loads), "runs", n, "estimated", estimate.Round(time.Second).String(),
		"private_netns", private, "netns", proc.NetnsID())

	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	h := &harness{opts: opts, intake: in, tmp: tmp}
	runs, sweepErr := h.sweep(ctx, loads, log)

	res.Runs = runs
	res.Meta.Finished = time.Now().UTC()
	res.Meta.Complete = sweepErr == nil
	stem := "compare-" + res.Meta.Started.Format("20060102T150405Z")
	if opts.quick {
		stem += "-quick"
	}
	err = finish(&res, opts.out, stem, os.Stdout)
	log.Info("done", "took", res.Meta.Finished.Sub(res.Meta.Started).Round(time.Second).String())
	return errors.Join(sweepErr, err)
}

// finish computes the medians and the summary from the runs, prints the
// report to w and writes every file.
func finish(res *results, dir, stem string, w io.Writer) error {
	res.Points = aggregate(res.Runs)
	res.Summaries = summarize(res.Points, res.Meta.LossThreshold)
	var report bytes.Buffer
	writeReport(&report, res)
	_, _ = w.Write(report.Bytes())
	paths, err := writeFiles(dir, stem, res, report.String())
	for _, p := range paths {
		fmt.Fprintln(w, "wrote", p)
	}
	return err
}

// replot redoes everything but the runs from an earlier results file, in
// place: a change to the report or the plots needs no new sweep.
func replot(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	if len(res.Runs) == 0 {
		return fmt.Errorf("%s holds no runs", path)
	}
	return finish(&res, filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".json"), w)
}

// collectMeta records what the figures depend on.
func collectMeta(o options, private bool) meta {
	m := meta{
		Started:       time.Now().UTC(),
		Quick:         o.quick,
		GoVersion:     runtime.Version(),
		CPUs:          runtime.NumCPU(),
		PrivateNetns:  private,
		RunDuration:   o.duration.String(),
		RunSeconds:    o.duration.Seconds(),
		Reps:          o.reps,
		Readers:       o.readers,
		ReadBuffer:    o.readBuffer,
		LossThreshold: o.lossThreshold,
		Note:          noiseNote,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		m.RmemMax, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if out, err := exec.Command(o.veneur, "-version").Output(); err == nil {
		m.VeneurVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += "-dirty"
		}
	}
	return m
}
