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
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/sinks/datadog"
	"github.com/veneur-lite/veneur-lite/sinks/prometheus"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// shutdownBudget is how long a graceful stop may take, from signal to exit
// (SPEC: exit within 10 s).
const shutdownBudget = 9 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main with its environment passed in, so tests can drive it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("veneur-lite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("f", "", "path to the YAML config file (built-in defaults when empty)")
	validate := fs.Bool("validate-config", false, "check the config and exit: 0 when valid")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		fmt.Fprintf(stderr, "veneur-lite: invalid config: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if *validate {
		// Sinks decode their own keys; building them validates them too.
		if _, err := buildSinks(cfg, stdout, nil, log); err != nil {
			fmt.Fprintf(stderr, "veneur-lite: invalid config: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "config ok")
		return 0
	}
	if err := serve(ctx, cfg, stdout, log); err != nil {
		log.Error("veneur-lite stopped", "error", err)
		return 1
	}
	return 0
}

// serve builds the daemon from cfg and runs it until ctx ends.
func serve(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	reg := telemetry.NewRegistry()
	outputs, err := buildSinks(cfg, stdout, reg, log)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, outputs, reg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// buildSinks constructs metric_sinks, or the console sink when none is set.
func buildSinks(cfg config.Config, stdout io.Writer, reg *telemetry.Registry, log *slog.Logger) ([]sinks.Sink, error) {
	if len(cfg.MetricSinks) == 0 {
		return []sinks.Sink{sinks.NewConsole("console", stdout)}, nil
	}
	var out []sinks.Sink
	for i, sc := range cfg.MetricSinks {
		s, err := buildSink(sc, stdout, reg, log)
		if err != nil {
			return nil, fmt.Errorf("metric_sinks[%d] (%s %q): %w", i, sc.Kind, sc.SinkName(), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func buildSink(sc config.SinkConfig, stdout io.Writer, reg *telemetry.Registry, log *slog.Logger) (sinks.Sink, error) {
	switch sc.Kind {
	case "console":
		var none struct{}
		if err := config.DecodeNode(&sc.Config, &none); err != nil {
			return nil, err
		}
		return sinks.NewConsole(sc.SinkName(), stdout), nil
	case "datadog":
		var c datadog.Config
		c.SetDefaults() // before decoding, so an explicit zero is not replaced
		if err := config.DecodeNode(&sc.Config, &c); err != nil {
			return nil, err
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return datadog.New(sc.SinkName(), c, reg, log)
	case "prometheus_remote_write":
		var c prometheus.Config
		c.SetDefaults()
		if err := config.DecodeNode(&sc.Config, &c); err != nil {
			return nil, err
		}
		return prometheus.New(sc.SinkName(), c, reg, log) // validates, reads the TLS files
	default:
		return nil, fmt.Errorf("unknown sink kind %q", sc.Kind)
	}
}
