// Command importbench is `make bench-import`: it measures what a global
// instance spends to merge the histogram digests a fleet of locals
// forwards, with real forward batches posted over HTTP to the built
// veneur-lite binary.
//
// How: K template locals (-templates, default 8) each aggregate -series
// histogram series of -samples lognormal samples, named alike on every
// local (bench.latency.<i>, one tag) as a fleet running one app would, and
// forward their interval through a real forward.Forwarder to in-process
// capture servers, one per global, which keep each request's body and
// headers. Then, for each N of -locals, fresh globals (-globals child
// processes of -veneur-lite) get one interval from N simulated locals:
// local j posts template j mod K's captured batches for global g to
// global g, under fresh Idempotency-Keys, with -concurrency requests in
// flight in all. Every answer must be 200, and each global's import.series
// (its /metrics) must rise by exactly the digests posted to it, or the run
// fails.
//
//	templates ─ forward.Forwarder ─▶ capture servers (bodies, headers, per member)
//	                                        │ replayed N/K times each, fresh keys
//	                                        ▼
//	      this process ─ POST /import (zstd) ─▶ global 0 … G-1 (veneur-lite, console sink drained)
//	                                             │ /metrics counters, /proc/<pid> CPU before and after
//
// How to read it: the measure is each global's CPU seconds over the replay
// (its threads' schedstat, before and after), not wall time, since every
// process shares the machine's cores. cpu-µs/digest is the globals' CPU
// per digest merged, and digests/s/core its inverse: how many forwarded
// digests one core of a global merges per second. One run is one
// interval's worth of the fleet, so each global's CPU-s is checked against
// a budget of -budget-cores × -interval CPU-s per interval: with
// `-globals 4 -locals 1000 -series 10000` the verdict says whether 1,000
// locals × 10,000 series fit a tier of four 2-core globals. The sender
// (this process) is measured too, to show it is not what limits a run.
// Each N is repeated -reps times, interleaved (N1, N2, N3, N1, …), and the
// report gives medians with min–max. See bench/README.md.
//
//	make bench-import                                               # N = 10, 100, 1000; 1,000 series; 1 global
//	go run ./bench/cmd/importbench -globals 4 -locals 1000 -series 10000 -reps 1
//
// It runs in a private network namespace when it can (as bench-compare
// does), and sends only to 127.0.0.1; its children die with it.
package main

import (
	"bytes"
	"context"
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
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/veneur-lite/veneur-lite/bench/internal/proc"
)

func main() { os.Exit(run(os.Args[1:])) }

// options are the command's flags.
type options struct {
	quick       bool
	locals      []int
	series      int
	globals     int
	templates   int
	samples     int
	concurrency int
	reps        int
	interval    time.Duration
	budgetCores float64
	seed        uint64
	veneur      string
	out         string
	noNetns     bool
	timeout     time.Duration
	profile     string
	inTurn      bool
	journal     bool
}

// budget is what one global may spend per interval, in CPU-s.
func (o options) budget() float64 { return o.budgetCores * o.interval.Seconds() }

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	var locals string
	fs := flag.NewFlagSet("importbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "1 run per N, N = 10,100 unless -locals says otherwise: for development; results suffixed -quick")
	fs.StringVar(&locals, "locals", "10,100,1000", "simulated locals per run, comma-separated; one run per N and repetition")
	fs.IntVar(&o.series, "series", 1000, "histogram series per local (each a digest per interval)")
	fs.IntVar(&o.globals, "globals", 1, "global instances the locals shard their series over")
	fs.IntVar(&o.templates, "templates", 8, "distinct locals built and captured; local j replays template j mod this")
	fs.IntVar(&o.samples, "samples", 500, "samples per series per interval on each local")
	fs.IntVar(&o.concurrency, "concurrency", 16, "requests in flight at once, over all globals")
	fs.IntVar(&o.reps, "reps", 0, "runs per N, interleaved across N (default 3, -quick 1)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "the globals' interval, and the period of the CPU budget")
	fs.Float64Var(&o.budgetCores, "budget-cores", 2, "cores each global has: its budget is this × -interval CPU-s per interval")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the samples")
	fs.StringVar(&o.veneur, "veneur-lite", filepath.Join("bin", "veneur-lite"), "the veneur-lite binary to run as the globals (make bench-import builds it)")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results"), "directory for the text and JSON results")
	fs.BoolVar(&o.noNetns, "no-netns", false, "run in the current network namespace instead of a private one")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "bound on the whole command")
	fs.StringVar(&o.profile, "profile", "", "after the sweep, replay the largest N once more (not in the results) while taking a CPU profile of global 0 from its /debug/pprof/profile into this file")
	fs.BoolVar(&o.journal, "journal", false, "run the globals with an import journal (import_journal_dir in a fresh directory per run): compare with a run without, interleaved")
	fs.BoolVar(&o.inTurn, "in-turn", false, "replay to one global at a time, each getting its share from every local before the next: "+
		"on a machine with fewer cores than the tier, each global then shares the cores with the sender only, as it would have cores of its own")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "importbench: unexpected arguments %q\n", fs.Args())
		return o, errors.New("unexpected arguments")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick && !set["locals"] {
		locals = "10,100"
	}
	if o.reps == 0 {
		o.reps = 3
		if o.quick {
			o.reps = 1
		}
	}
	var errs []error
	var err error
	if o.locals, err = parseLocals(locals); err != nil {
		errs = append(errs, err)
	}
	for _, c := range []struct {
		name   string
		v      int
		lo, hi int
	}{
		{"series", o.series, 1, 100_000}, {"globals", o.globals, 1, 16}, {"templates", o.templates, 1, 64},
		{"samples", o.samples, 1, 100_000}, {"concurrency", o.concurrency, 1, 256}, {"reps", o.reps, 1, 15},
	} {
		if c.v < c.lo || c.v > c.hi {
			errs = append(errs, fmt.Errorf("-%s %d: want %d to %d", c.name, c.v, c.lo, c.hi))
		}
	}
	if o.interval < time.Second || o.interval > time.Hour {
		errs = append(errs, fmt.Errorf("-interval %v: want 1s to 1h (veneur-lite's minimum is 1s)", o.interval))
	}
	if !(o.budgetCores > 0 && o.budgetCores <= 1024) {
		errs = append(errs, fmt.Errorf("-budget-cores %v: want more than 0", o.budgetCores))
	}
	if o.timeout <= 0 || o.timeout > 6*time.Hour {
		errs = append(errs, fmt.Errorf("-timeout %v: want up to 6h", o.timeout))
	}
	// The templates are held in memory for the whole sweep: ~450 B a
	// digest, so 64 × 100k series is ~3 GB; say so rather than swap.
	if int64(o.templates)*int64(o.series) > 2_000_000 {
		errs = append(errs, fmt.Errorf("-templates × -series = %d digests held: at most 2,000,000", o.templates*o.series))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "importbench: %v\n", err)
		return o, err
	}
	return o, nil
}

func run(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := parseOptions(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if opts.veneur, err = filepath.Abs(opts.veneur); err == nil {
		_, err = os.Stat(opts.veneur)
	}
	if err != nil {
		log.Error("the veneur-lite binary: build it with `make bench-import` or `make build`, or pass -veneur-lite", "error", err)
		return 1
	}
	private := proc.InPrivateNetns()
	if private {
		if err := proc.BringLoopbackUp(); err != nil {
			log.Error("network namespace", "error", err)
			return 1
		}
	} else if !opts.noNetns {
		inner := withFlag(args, "veneur-lite", opts.veneur)
		code, err := proc.ReexecInNetns(ctx, inner)
		if err == nil {
			return code
		}
		log.Warn("running in the current network namespace, on 127.0.0.1", "error", err)
	}
	if err := runBench(ctx, opts, args, private, log); err != nil {
		log.Error("importbench", "error", err)
		return 1
	}
	return 0
}

// withFlag returns args with flag name set to value: any setting of it
// removed ("-name v", "-name=v", or with "--"), then "-name value" added.
// The re-executed command gets the binary's absolute path this way, and
// its results record the arguments once.
func withFlag(args []string, name, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		switch {
		case a == name && i+1 < len(args):
			i++ // its value
		case strings.HasPrefix(a, name+"="):
		default:
			out = append(out, args[i])
		}
	}
	return append(out, "-"+name, value)
}

// runBench builds the templates, runs the sweep and writes the results.
func runBench(ctx context.Context, opts options, args []string, private bool, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	res := results{Meta: collectMeta(opts, args, private)}
	log.Info("importbench", "globals", opts.globals, "locals", fmt.Sprint(opts.locals), "series", opts.series,
		"reps", opts.reps, "private_netns", private, "netns", proc.NetnsID())

	// The batches carry the interval before the current one, as a local's
	// forward at the end of an interval does. A replay minutes later
	// merges them into the globals' oldest open window all the same.
	intervalStart := time.Now().Truncate(opts.interval).Add(-opts.interval)
	templates, tstats, err := buildTemplates(ctx, opts, intervalStart, log)
	if err != nil {
		return fmt.Errorf("build the templates: %w", err)
	}
	res.Templates = tstats
	tmp, cleanup, err := tempDir()
	if err != nil {
		return err
	}
	defer cleanup()
	h := &harness{opts: opts, templates: templates, replay: newReplayer(templates, opts.concurrency), tmp: tmp, log: log}
	runs, sweepErr := h.sweep(ctx)
	res.Runs = runs
	res.Points = summarize(runs, opts.locals, opts.globals, opts.budget())
	if sweepErr == nil && opts.profile != "" {
		sweepErr = h.profileRun(ctx, res.Points)
	}
	res.Meta.Finished = time.Now().UTC()
	if rss, err := proc.PeakRSS(os.Getpid()); err == nil {
		res.Meta.HarnessPeakRSSMiB = float64(rss) / (1 << 20)
	}
	failed := 0
	for _, r := range runs {
		if !r.ok() {
			failed++
		}
	}
	res.Meta.Complete = sweepErr == nil && failed == 0
	stem := "import-" + res.Meta.Started.Format("20060102T150405Z")
	if opts.quick {
		stem += "-quick"
	}
	var report bytes.Buffer
	writeReport(&report, &res)
	_, _ = os.Stdout.Write(report.Bytes())
	paths, err := writeFiles(opts.out, stem, &res, report.String())
	for _, p := range paths {
		fmt.Println("wrote", p)
	}
	log.Info("done", "took", fmtDuration(res.Meta.Finished.Sub(res.Meta.Started)))
	if failed > 0 {
		err = errors.Join(err, fmt.Errorf("%d of %d runs failed", failed, len(runs)))
	}
	return errors.Join(sweepErr, err)
}

// collectMeta records what the figures depend on.
func collectMeta(o options, args []string, private bool) meta {
	m := meta{
		Started:      time.Now().UTC(),
		Quick:        o.quick,
		Args:         args,
		GoVersion:    runtime.Version(),
		CPUs:         runtime.NumCPU(),
		PrivateNetns: private,
		Globals:      o.globals,
		Locals:       o.locals,
		Series:       o.series,
		Templates:    o.templates,
		Samples:      o.samples,
		Concurrency:  o.concurrency,
		InTurn:       o.inTurn,
		Reps:         o.reps,
		Interval:     o.interval.String(),
		BudgetCores:  o.budgetCores,
		BudgetCPU:    o.budget(),
		Note:         machineNote,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
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
