// Command veneur-lite is a DogStatsD-compatible metrics aggregator. On every
// host it replaces the Datadog Agent's DogStatsD server; with forward_address
// set it ships histogram digests and sets to a global tier that merges them
// into fleet-wide percentiles and unique counts.
//
// main only wires components; each one runs with Run(ctx) and they are
// stopped in the order data flows: listeners, the import endpoint, then the
// final flush.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/internal/top"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// shutdownBudget is how long a graceful stop may take, from signal to exit,
// so that the process is gone within 10 s (docs/configuration.md,
// flush_on_shutdown).
const shutdownBudget = 9 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// SIGHUP is taken before anything else runs: its default action would
	// kill the process without the final flush.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr, hup)
	stop()
	os.Exit(code)
}

// run is main with its environment passed in, so tests can drive it. hup
// delivers SIGHUP.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer, hup <-chan os.Signal) int {
	if len(args) > 0 && args[0] == "top" { // veneur-lite top [flags]: a view of a running instance
		return top.Main(ctx, args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("veneur-lite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("f", "", "path to the YAML config file (built-in defaults when empty)")
	validate := fs.Bool("validate-config", false, "check the config and exit: 0 when valid")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: veneur-lite [-f config.yaml] [-validate-config] [-version]\n")
		fmt.Fprintf(fs.Output(), "       veneur-lite top [flags]  (which metrics hold the series of a running instance; top -h)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		// "veneur-lite veneur.yaml" would otherwise run on the defaults.
		fmt.Fprintf(stderr, "veneur-lite: unexpected argument %q (give the config file with -f)\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// -validate-config and startup take the same path up to serving: what
	// one rejects, the other does.
	cfg, decoded, warnings, err := loadConfig(*configPath, environ)
	for _, w := range warnings {
		if *validate {
			fmt.Fprintf(stderr, "veneur-lite: warning: %s\n", w)
		} else {
			log.Warn("config warning", "warning", w)
		}
	}
	if err != nil {
		for _, e := range flatten(err) {
			fmt.Fprintf(stderr, "veneur-lite: invalid config: %v\n", e)
		}
		return 1
	}
	if *validate {
		fmt.Fprintln(stdout, "config ok")
		return 0
	}
	if err := serve(ctx, cfg, decoded, stdout, log, hup); err != nil {
		log.Error("veneur-lite stopped", "error", err)
		return 1
	}
	return 0
}

// reloadOnHUP reloads the daemon's TLS files at each SIGHUP until ctx
// ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, d *daemon) {
	for {
		select {
		case <-hup:
			d.Reload()
		case <-ctx.Done():
			return
		}
	}
}

// flatten lists the errors joined in err, one per line of output.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range j.Unwrap() {
			all = append(all, flatten(e)...)
		}
		return all
	}
	return []error{err}
}

// loadConfig loads and validates the whole configuration, sink config
// blocks included.
func loadConfig(path string, environ []string) (config.Config, []config.Sink, []string, error) {
	cfg, warnings, err := config.Load(path, environ)
	if err != nil {
		return config.Config{}, nil, warnings, err
	}
	decoded, err := cfg.DecodeSinks()
	if err != nil {
		return config.Config{}, nil, warnings, err
	}
	return cfg, decoded, warnings, nil
}

// serve builds the daemon from cfg and runs it until ctx ends; hup
// delivers SIGHUP, which reloads the TLS files.
func serve(ctx context.Context, cfg config.Config, decoded []config.Sink, stdout io.Writer, log *slog.Logger, hup <-chan os.Signal) error {
	reg := telemetry.NewRegistry()
	env := config.SinkEnv{Stdout: stdout, Stats: reg, Log: log}
	outputs := make([]sinks.Sink, 0, len(decoded))
	for _, sc := range decoded {
		s, err := sc.New(env)
		if err != nil {
			return err
		}
		outputs = append(outputs, sinks.WithHygiene(s, sc.Hygiene, reg))
	}
	d, err := newDaemon(cfg, outputs, reg, log)
	if err != nil {
		return err
	}
	go reloadOnHUP(ctx, hup, d)
	return d.Run(ctx)
}
