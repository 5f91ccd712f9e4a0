// Package config is veneur-lite's configuration: one typed tree, its
// defaults, strict YAML decoding (an unknown key is an error that names it),
// VENEUR_* environment overrides and validation. Keys keep Veneur's names so
// that a Veneur config can be reused.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"

	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veneur-lite/veneur-lite/aggregate"
)

// Config is the whole configuration file.
type Config struct {
	StatsdListenAddresses []string  `yaml:"statsd_listen_addresses"`
	HTTPAddress           string    `yaml:"http_address"`
	Interval              Duration  `yaml:"interval"`
	Hostname              string    `yaml:"hostname"`
	ExtendTags            []string  `yaml:"extend_tags"`
	Percentiles           []float64 `yaml:"percentiles"`
	Aggregates            []string  `yaml:"aggregates"`
	// ForwardAddress is the global tier: one or more base URLs. A scalar in
	// YAML or the environment is accepted as a one-element list.
	ForwardAddress      StringList   `yaml:"forward_address"`
	NumReaders          int          `yaml:"num_readers"`
	NumWorkers          int          `yaml:"num_workers"`
	ReadBufferSizeBytes int          `yaml:"read_buffer_size_bytes"`
	MetricMaxLength     int          `yaml:"metric_max_length"`
	FlushOnShutdown     bool         `yaml:"flush_on_shutdown"`
	TCPIdleTimeout      Duration     `yaml:"tcp_idle_timeout"`
	MetricSinks         []SinkConfig `yaml:"metric_sinks"`
}

// SinkConfig is one entry of metric_sinks. Config stays undecoded here: the
// sink's own package owns its keys and decodes them with DecodeStrict.
type SinkConfig struct {
	Kind   string    `yaml:"kind"`
	Name   string    `yaml:"name"`
	Config yaml.Node `yaml:"config"`
}

// Default returns the built-in configuration used when no file is given.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		StatsdListenAddresses: []string{"udp://127.0.0.1:8125"},
		HTTPAddress:           "127.0.0.1:8127",
		Interval:              Duration(10 * time.Second),
		Hostname:              host,
		Percentiles:           []float64{0.5, 0.75, 0.99},
		Aggregates:            []string{"min", "max", "count"},
		NumReaders:            runtime.NumCPU(),
		NumWorkers:            runtime.NumCPU(),
		ReadBufferSizeBytes:   2 << 20,
		MetricMaxLength:       4096,
		FlushOnShutdown:       true,
		TCPIdleTimeout:        Duration(5 * time.Minute),
	}
}

// Load reads the file at path (none when path is empty) over the defaults,
// applies the environment on top and validates the result.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		defer f.Close()
		if err := DecodeStrict(f, &cfg); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

var unknownFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// DecodeStrict decodes YAML into dst, rejecting keys dst has no field for.
// The error names the unknown key and its line.
func DecodeStrict(r io.Reader, dst any) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	err := dec.Decode(dst)
	if errors.Is(err, io.EOF) {
		return nil // an empty file keeps every default
	}
	if err != nil {
		return errors.New(unknownFieldRE.ReplaceAllString(err.Error(), `unknown key "$2" (line $1)`))
	}
	return nil
}

// DecodeNode strictly decodes a sink's config node into dst. An absent node
// leaves dst as it is.
func DecodeNode(node *yaml.Node, dst any) error {
	if node == nil || node.Kind == 0 {
		return nil
	}
	raw, err := yaml.Marshal(node)
	if err != nil {
		return fmt.Errorf("re-encode sink config: %w", err)
	}
	return DecodeStrict(bytes.NewReader(raw), dst)
}

// applyEnv sets every field whose VENEUR_<KEY> variable is present. Values
// are YAML scalars; list keys also take a comma-separated list.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "VENEUR_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		name := "VENEUR_" + strings.ToUpper(key)
		raw, ok := env[name]
		if !ok {
			continue
		}
		text := raw
		if t.Field(i).Type.Kind() == reflect.Slice && !strings.HasPrefix(strings.TrimSpace(raw), "[") &&
			t.Field(i).Type != reflect.TypeOf([]SinkConfig(nil)) {
			text = "[" + raw + "]"
		}
		if err := yaml.Unmarshal([]byte(text), v.Field(i).Addr().Interface()); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

// Validate checks every value and names the offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.StatsdListenAddresses) == 0 {
		bad("statsd_listen_addresses", "at least one address is required")
	}
	for _, a := range c.StatsdListenAddresses {
		if _, err := ParseListenAddress(a); err != nil {
			bad("statsd_listen_addresses", "%v", err)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddress); err != nil {
		bad("http_address", "%q is not host:port", c.HTTPAddress)
	}
	if c.Interval.D() < time.Second {
		bad("interval", "%s is shorter than 1s", c.Interval.D())
	}
	if c.Hostname == "" {
		bad("hostname", "empty, and the OS hostname is unknown")
	}
	seen := map[string]float64{}
	for _, p := range c.Percentiles {
		if !(p > 0 && p < 1) || math.IsNaN(p) {
			bad("percentiles", "%v is not in (0, 1)", p)
			continue
		}
		name := aggregate.PercentileName(p)
		if q, dup := seen[name]; dup {
			bad("percentiles", "%v and %v both name %q", q, p, name)
		}
		seen[name] = p
	}
	for _, a := range c.Aggregates {
		if _, err := aggregate.ParseAggregate(a); err != nil {
			bad("aggregates", "%v", err)
		}
	}
	for _, f := range c.ForwardAddress {
		if err := checkForwardAddress(f); err != nil {
			bad("forward_address", "%v", err)
		}
	}
	if c.NumReaders < 1 {
		bad("num_readers", "%d is less than 1", c.NumReaders)
	}
	if c.NumWorkers < 1 {
		bad("num_workers", "%d is less than 1", c.NumWorkers)
	}
	if c.ReadBufferSizeBytes < 0 {
		bad("read_buffer_size_bytes", "%d is negative", c.ReadBufferSizeBytes)
	}
	if c.MetricMaxLength < 16 || c.MetricMaxLength > 65535 {
		bad("metric_max_length", "%d is outside [16, 65535]", c.MetricMaxLength)
	}
	if c.TCPIdleTimeout.D() <= 0 {
		bad("tcp_idle_timeout", "%s is not positive", c.TCPIdleTimeout.D())
	}
	names := map[string]bool{}
	for i, s := range c.MetricSinks {
		key := fmt.Sprintf("metric_sinks[%d]", i)
		if !slices.Contains(SinkKinds, s.Kind) {
			bad(key+".kind", "%q is not one of %s", s.Kind, strings.Join(SinkKinds, ", "))
		}
		name := s.SinkName()
		if names[name] {
			bad(key+".name", "%q is used by two sinks", name)
		}
		names[name] = true
	}
	return errors.Join(errs...)
}

// SinkKinds are the values metric_sinks[].kind accepts.
var SinkKinds = []string{"console", "datadog", "prometheus_remote_write"}

// SinkName is the sink's name, defaulting to its kind.
func (s SinkConfig) SinkName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Kind
}

// ListenAddress is a parsed statsd_listen_addresses entry.
type ListenAddress struct {
	Network string // "udp", "tcp" or "unixgram"
	Address string // host:port, or a socket path for unixgram
}

// ParseListenAddress parses udp://host:port, tcp://host:port and
// unixgram:///path.
func ParseListenAddress(s string) (ListenAddress, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ListenAddress{}, fmt.Errorf("%q: %w", s, err)
	}
	switch u.Scheme {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return ListenAddress{}, fmt.Errorf("%q: want %s://host:port", s, u.Scheme)
		}
		return ListenAddress{Network: u.Scheme, Address: u.Host}, nil
	case "unixgram":
		if u.Host != "" || u.Path == "" {
			return ListenAddress{}, fmt.Errorf("%q: want unixgram:///absolute/path", s)
		}
		return ListenAddress{Network: "unixgram", Address: u.Path}, nil
	default:
		return ListenAddress{}, fmt.Errorf("%q: scheme must be udp, tcp or unixgram", s)
	}
}

func checkForwardAddress(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https", "srv":
	default:
		return fmt.Errorf("%q: scheme must be http, https or srv", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 10s: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// StringList accepts a YAML scalar or sequence of strings.
type StringList []string

// UnmarshalYAML accepts "a" as well as [a, b].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "" {
			*l = nil
			return nil
		}
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// String renders the list for logs.
func (l StringList) String() string { return strings.Join(l, ",") }
