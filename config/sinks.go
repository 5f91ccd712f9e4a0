package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/sinks/console"
	"github.com/veneur-lite/veneur-lite/sinks/datadog"
	"github.com/veneur-lite/veneur-lite/sinks/prometheus"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// sinkKinds are the values metric_sinks[].kind accepts, each with how its
// config block is decoded and checked, and its sink built: the one list of
// sink kinds.
var sinkKinds = []struct {
	name   string
	decode func(c *Config, i int) (Sink, error)
}{
	{"console", decodeConsole},
	{"datadog", decodeBlock(func(name string, c datadog.Config, env SinkEnv) (sinks.Sink, error) {
		return datadog.New(name, c, env.Stats, env.Log)
	})},
	{"prometheus_remote_write", decodeBlock(func(name string, c prometheus.Config, env SinkEnv) (sinks.Sink, error) {
		return prometheus.New(name, c, env.Stats, env.Log)
	})},
}

// Sink is one metric_sinks entry with its config block decoded and
// checked, ready to build.
type Sink struct {
	Name    string
	Hygiene sinks.Hygiene
	// Config is the kind's decoded config block: a datadog.Config, a
	// prometheus.Config, or struct{} for a console sink.
	Config any
	// New builds the sink (without its hygiene: sinks.WithHygiene).
	New func(SinkEnv) (sinks.Sink, error)
}

// SinkEnv is what building a sink takes besides its config block.
type SinkEnv struct {
	Stdout io.Writer // the console sink's output
	Stats  *telemetry.Registry
	Log    *slog.Logger
}

// DecodeSinks decodes and checks every metric_sinks entry's config block
// (Load has checked the rest), joining a *KeyError for each problem. With
// no entry, it returns one console sink.
func (c *Config) DecodeSinks() ([]Sink, error) {
	if len(c.MetricSinks) == 0 {
		return []Sink{consoleSink("console", c.Interval.D())}, nil
	}
	var out []Sink
	var errs []error
	for i, sc := range c.MetricSinks {
		var s Sink
		err := fmt.Errorf("metric_sinks[%d].kind: unknown sink kind %q", i, sc.Kind) // validate refuses it first
		for _, k := range sinkKinds {
			if k.name == sc.Kind {
				s, err = k.decode(c, i)
				break
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Name, s.Hygiene = sc.SinkName(), sc.Hygiene
		out = append(out, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func sinkKindNames() []string {
	names := make([]string, len(sinkKinds))
	for i, k := range sinkKinds {
		names[i] = k.name
	}
	return names
}

func decodeConsole(c *Config, i int) (Sink, error) {
	var none struct{}
	if err := c.DecodeSinkConfig(i, &none); err != nil {
		return Sink{}, err
	}
	return consoleSink(c.MetricSinks[i].SinkName(), c.Interval.D()), nil
}

func consoleSink(name string, interval time.Duration) Sink {
	return Sink{Name: name, Config: struct{}{}, New: func(env SinkEnv) (sinks.Sink, error) {
		return console.NewConsole(name, env.Stdout, interval), nil
	}}
}

// decodeBlock is the decode step of a kind whose config block B has
// defaults and checks itself; build makes the sink from the block.
func decodeBlock[B any, P interface {
	*B
	SetDefaults()
	Validate() error
}](build func(name string, block B, env SinkEnv) (sinks.Sink, error)) func(*Config, int) (Sink, error) {
	return func(c *Config, i int) (Sink, error) {
		var block B
		P(&block).SetDefaults() // before decoding, so an explicit zero is not replaced
		if err := c.DecodeSinkConfig(i, &block); err != nil {
			return Sink{}, err
		}
		if err := P(&block).Validate(); err != nil {
			return Sink{}, c.SinkConfigError(i, err)
		}
		name := c.MetricSinks[i].SinkName()
		return Sink{Config: block, New: func(env SinkEnv) (sinks.Sink, error) {
			return build(name, block, env)
		}}, nil
	}
}
