// Package config is veneur-lite's configuration: one typed tree, its
// defaults, strict YAML decoding (an unknown key is an error that names it),
// VENEUR_* environment overrides and validation. Keys keep Veneur's names so
// that a Veneur config can be reused.
//
// Load is the one way in: defaults, then the file, then the environment,
// then Validate. Every error is a *KeyError naming the key, the reason and
// where the value came from (file line or environment variable).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/forward"
	"github.com/veneur-lite/veneur-lite/internal/shards"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/sinks"
)

// Config is the whole configuration file. Every list key also takes a
// single string, read as a comma-separated list, in the file as in the
// environment.
type Config struct {
	StatsdListenAddresses []ListenAddress `yaml:"statsd_listen_addresses"`
	HTTPAddress           string          `yaml:"http_address"`
	Interval              Duration        `yaml:"interval"`
	// Hostname is the host of locally flushed series. Load replaces an
	// empty one with the OS hostname.
	Hostname    string                `yaml:"hostname"`
	ExtendTags  []string              `yaml:"extend_tags"`
	Percentiles []float64             `yaml:"percentiles"`
	Aggregates  []aggregate.Aggregate `yaml:"aggregates"`
	// HistogramAggregates is the Datadog Agent's name for Aggregates;
	// Load moves it there (setting both is an error).
	HistogramAggregates []aggregate.Aggregate `yaml:"histogram_aggregates"`
	// HistogramPercentiles (the Datadog Agent's key) are flushed per host
	// by every instance, at once, as name.<N>percentile; numbers or
	// strings, as the Agent takes them.
	HistogramPercentiles []AgentPercentile `yaml:"histogram_percentiles"`
	// ForwardAddress is the global tier: base URLs that forward.ParseAddress
	// accepts. Empty means this instance is the global (or standalone).
	ForwardAddress      []string `yaml:"forward_address"`
	NumReaders          int      `yaml:"num_readers"`
	NumWorkers          int      `yaml:"num_workers"`
	ReadBufferSizeBytes int      `yaml:"read_buffer_size_bytes"`
	MetricMaxLength     int      `yaml:"metric_max_length"`
	FlushOnShutdown     bool     `yaml:"flush_on_shutdown"`
	TCPIdleTimeout      Duration `yaml:"tcp_idle_timeout"`
	// UnixSocketMode is the permission mode of unixgram:// sockets,
	// written in octal ("0722", the Datadog Agent's: anyone may send).
	UnixSocketMode FileMode `yaml:"unix_socket_mode"`
	// MaxSeries bounds the live series of an interval and
	// MaxSeriesPerName those of one metric name (docs/configuration.md):
	// past them new
	// series are shed and counted, while the series already live keep
	// aggregating. 0 means no bound. Left out, they depend on the role
	// (RoleDefaults): a local holds one host's series, the root of the
	// tier every host's.
	MaxSeries        int `yaml:"max_series"`
	MaxSeriesPerName int `yaml:"max_series_per_name"`
	// TLSCertificate and TLSKey turn on TLS for tcp:// statsd listeners
	// and http_address (Veneur's names). With TLSAuthorityCertificate, a
	// tcp:// client must present a certificate that authority signed, and
	// so must an import without the token (mTLS). The files are reread
	// when they change, and on SIGHUP.
	TLSCertificate          string `yaml:"tls_certificate"`
	TLSKey                  string `yaml:"tls_key"`
	TLSAuthorityCertificate string `yaml:"tls_authority_certificate"`
	// TLS is the client side of forward_address (https:// members), as
	// in Veneur.
	TLS ClientTLS `yaml:"tls"`
	// ImportToken is the shared secret of the import endpoint: a global
	// requires it of an import (with a client certificate as the other
	// way in), a local sends it with every forward. It is never logged.
	ImportToken string `yaml:"import_token"`
	// ImportJournalDir turns on the import journal (docs/output.md,
	// Durability): a batch is acknowledged only once it is on disk there,
	// and a restart replays what was not flushed. Empty: off.
	ImportJournalDir string `yaml:"import_journal_dir"`
	// ImportJournalMaxBytes bounds the journal; past it imports get 503
	// and the locals hold them. 0 means no bound.
	ImportJournalMaxBytes int64 `yaml:"import_journal_max_bytes"`
	// EnableProfiling serves the /debug/ endpoints (pprof, series) on
	// http_address to every client (true) or to none (false). Left out,
	// they answer loopback clients only (DebugAccess).
	EnableProfiling bool         `yaml:"enable_profiling"`
	MetricSinks     []SinkConfig `yaml:"metric_sinks"`

	// origins records where Load found each key's value, so that
	// Validate's errors can point at it.
	origins map[string]origin
}

// AgentPercentile is one of histogram_percentiles: a number in (0,1), given
// as a YAML number or, as the Datadog Agent's datadog.yaml has them, a
// string ("0.95").
type AgentPercentile float64

// UnmarshalYAML reads a number or a string holding one.
func (p *AgentPercentile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a number like 0.95")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number like 0.95", n.Value)
	}
	*p = AgentPercentile(v)
	return nil
}

// HostPercentiles returns HistogramPercentiles as numbers.
func (c *Config) HostPercentiles() []float64 {
	out := make([]float64, len(c.HistogramPercentiles))
	for i, p := range c.HistogramPercentiles {
		out[i] = float64(p)
	}
	return out
}

// ClientTLS is a TLS client's files: the authority that signs the
// servers (the system's roots when empty), this client's certificate for
// mTLS, and the name to verify the servers under (each member's host when
// empty).
type ClientTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// IsZero reports whether no TLS client setting is given.
func (t ClientTLS) IsZero() bool { return t == ClientTLS{} }

// SinkConfig is one entry of metric_sinks. Config stays undecoded here: the
// sink's own package owns its keys; Config.DecodeSinkConfig decodes them.
type SinkConfig struct {
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
	// Hygiene holds the sink's hygiene keys (max_name_length, max_tags,
	// strip_tags, …), Veneur's, beside kind and name.
	sinks.Hygiene `yaml:",inline"`
	Config        yaml.Node `yaml:"config"`
}

// NamedPercentiles returns the percentiles key checked and named, for the
// aggregator and the global tier. Call it on a validated Config: it is
// empty if the key is not valid.
func (c *Config) NamedPercentiles() metric.Percentiles {
	ps, _ := metric.NewPercentiles(c.Percentiles)
	return ps
}

// NamedHostPercentiles returns histogram_percentiles checked and named, for
// the aggregator. Call it on a validated Config: it is empty if the key is
// not valid.
func (c *Config) NamedHostPercentiles() metric.Percentiles {
	ps, _ := metric.NewPercentiles(c.HostPercentiles())
	return ps
}

// Default returns the built-in configuration used when no file is given.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		StatsdListenAddresses: []ListenAddress{{Network: "udp", Address: "127.0.0.1:8125"}},
		HTTPAddress:           "127.0.0.1:8127",
		Interval:              Duration(10 * time.Second),
		Hostname:              host,
		Percentiles:           []float64{0.5, 0.75, 0.99},
		Aggregates:            []aggregate.Aggregate{aggregate.AggMin, aggregate.AggMax, aggregate.AggCount},
		NumReaders:            runtime.NumCPU(),
		NumWorkers:            min(runtime.NumCPU(), shards.Max),
		ReadBufferSizeBytes:   2 << 20,
		MetricMaxLength:       4096,
		FlushOnShutdown:       true,
		TCPIdleTimeout:        Duration(5 * time.Minute),
		UnixSocketMode:        0o722,
		MaxSeries:             GlobalMaxSeries, // the root's: no forward_address
		MaxSeriesPerName:      GlobalMaxSeriesPerName,
		ImportJournalMaxBytes: DefaultImportJournalMaxBytes,
	}
}

// DefaultImportJournalMaxBytes is the memory bound of a global's windows
// at the default max_series (~1 KiB a series): the compressed batches of
// the open windows hold less than their merged state does at that size.
const DefaultImportJournalMaxBytes = GlobalMaxSeries << 10

// Load reads the file at path (none when path is empty) over the defaults,
// applies the VENEUR_* variables of environ on top, replaces an empty
// hostname with the OS hostname, and validates the result. Each error it
// joins is a *KeyError, except a file that cannot be read or parsed.
//
// Warnings are what Load accepted but is probably a mistake, such as an
// unknown VENEUR_* variable; they are returned with or without an error.
func Load(path string, environ []string) (cfg Config, warnings []string, err error) {
	return load(path, environ, os.Hostname)
}

func load(path string, environ []string, osHostname func() (string, error)) (Config, []string, error) {
	cfg := Default()
	cfg.origins = map[string]origin{}
	d := &decoder{origins: cfg.origins}
	root := reflect.ValueOf(&cfg).Elem()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, nil, fmt.Errorf("read config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return Config{}, nil, fmt.Errorf("config %s: %w", path, err)
		}
		d.src = origin{file: path}
		d.decode(&doc, root, "", &doc)
	}
	warnings := d.applyEnv(root, environ)
	cfg.applyRoleDefaults()
	if _, agentKey := cfg.origins["histogram_aggregates"]; agentKey {
		if _, ours := cfg.origins["aggregates"]; ours {
			d.errs = append(d.errs, cfg.keyError("histogram_aggregates",
				errors.New("the Datadog Agent's name for aggregates, which is set too: keep one of the two")))
		}
		cfg.Aggregates = cfg.HistogramAggregates
	}
	if cfg.Hostname == "" { // as in Veneur: empty means the OS hostname
		if h, err := osHostname(); err == nil {
			cfg.Hostname = h
		}
	}
	errs := d.errs
	for _, err := range cfg.validate() {
		if !d.failedAt(err.Key) { // a value that did not decode is reported once
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, warnings, err
	}
	return cfg, warnings, nil
}

// failedAt reports whether decoding failed at key or at a key enclosing it.
func (d *decoder) failedAt(key string) bool {
	for ; key != ""; key = enclosing(key) {
		if d.failed[key] {
			return true
		}
	}
	return false
}

// envPrefix starts the environment variable of every top-level key:
// VENEUR_<KEY IN UPPER SNAKE CASE>.
const envPrefix = "VENEUR_"

// applyEnv decodes each VENEUR_<KEY> variable of environ into its key of
// root (a Config), later variables winning. For a list key, a value
// starting with [ or { is YAML (VENEUR_METRIC_SINKS='[{kind: console}]');
// any other value is one scalar, which a list key splits at commas. It
// returns a warning for each VENEUR_ variable that is not a key.
func (d *decoder) applyEnv(root reflect.Value, environ []string) []string {
	fields, names := yamlFields(root.Type())
	var warnings []string
	for _, kv := range environ {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, envPrefix))
		index, ok := fields[key]
		if !ok || name != strings.ToUpper(name) {
			w := name + " is not a configuration key; ignored"
			if s := closest(key, names); s != "" {
				w += " (did you mean " + envPrefix + strings.ToUpper(s) + "?)"
			}
			warnings = append(warnings, w)
			continue
		}
		d.src = origin{env: name}
		field := root.FieldByIndex(index)
		n := scalarNode(raw, field.Type(), 1, 1)
		t := strings.TrimSpace(raw)
		if k := field.Kind(); (k == reflect.Slice || k == reflect.Struct || k == reflect.Map) &&
			(strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{")) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
				d.fail(key, n, fmt.Errorf("not valid YAML: %w", err))
				continue
			}
			n = &doc
		}
		d.decode(n, field, key, n)
	}
	return warnings
}

// The series bounds by role (Config.MaxSeries). About 1 KiB of memory per
// live series: a host agent's 200,000 is ~200 MB at worst, far more than
// the series one host's clients emit; a global's 2,000,000 is ~2 GB.
const (
	LocalMaxSeries         = 200_000
	LocalMaxSeriesPerName  = 20_000
	GlobalMaxSeries        = 2_000_000
	GlobalMaxSeriesPerName = 200_000
)

// applyRoleDefaults gives the series bounds left out their role's default.
func (c *Config) applyRoleDefaults() {
	local := len(c.ForwardAddress) > 0
	if _, set := c.origins["max_series"]; !set {
		c.MaxSeries = GlobalMaxSeries
		if local {
			c.MaxSeries = LocalMaxSeries
		}
	}
	if _, set := c.origins["max_series_per_name"]; !set {
		c.MaxSeriesPerName = GlobalMaxSeriesPerName
		if local {
			c.MaxSeriesPerName = LocalMaxSeriesPerName
		}
	}
}

// Validate checks every value and returns a *KeyError for each bad one,
// joined. Load calls it; a Config built in code can be checked with it.
func (c *Config) Validate() error {
	var errs []error
	for _, e := range c.validate() {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func (c *Config) validate() []*KeyError {
	var errs []*KeyError
	bad := func(key string, err error) { errs = append(errs, c.keyError(key, err)) }
	badf := func(key, format string, args ...any) { bad(key, fmt.Errorf(format, args...)) }

	if len(c.StatsdListenAddresses) == 0 {
		badf("statsd_listen_addresses", "at least one address is required")
	}
	for i, a := range c.StatsdListenAddresses {
		if _, err := ParseListenAddress(a.String()); err != nil {
			bad(fmt.Sprintf("statsd_listen_addresses[%d]", i), err)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddress); err != nil {
		badf("http_address", "%q is not host:port", c.HTTPAddress)
	}
	if c.Interval.D() < time.Second {
		badf("interval", "%s is shorter than 1s", c.Interval.D())
	}
	if c.Hostname == "" {
		badf("hostname", "empty, and the OS hostname could not be read")
	}
	if _, err := metric.NewPercentiles(c.Percentiles); err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() { // errors.Join's
			if pe := (*metric.PercentileError)(nil); errors.As(e, &pe) {
				bad(fmt.Sprintf("percentiles[%d]", pe.Index), pe.Err)
			}
		}
	}
	seen := make(map[string]float64, len(c.Percentiles))
	for _, p := range c.Percentiles {
		seen[metric.PercentileName(p)] = p
	}
	for i, p := range c.HistogramPercentiles {
		key := fmt.Sprintf("histogram_percentiles[%d]", i)
		if err := metric.CheckPercentile(float64(p)); err != nil {
			bad(key, err)
			continue
		}
		name := metric.PercentileName(float64(p))
		if q, dup := seen[name]; dup {
			badf(key, "%v and %v both name %q: a percentile is flushed per host (histogram_percentiles) or fleet-wide (percentiles), not both", q, p, name)
		}
		seen[name] = float64(p)
	}
	for i, g := range c.Aggregates {
		if _, err := g.MarshalText(); err != nil {
			bad(fmt.Sprintf("aggregates[%d]", i), err)
		}
	}
	for i, f := range c.ForwardAddress {
		if _, err := forward.ParseAddress(f); err != nil {
			bad(fmt.Sprintf("forward_address[%d]", i), err)
		}
	}
	if c.NumReaders < 1 {
		badf("num_readers", "%d is less than 1", c.NumReaders)
	}
	if c.NumWorkers < 1 {
		badf("num_workers", "%d is less than 1", c.NumWorkers)
	} else if c.NumWorkers > shards.Max {
		badf("num_workers", "%d is more than %d", c.NumWorkers, shards.Max)
	}
	if c.ReadBufferSizeBytes < 0 {
		badf("read_buffer_size_bytes", "%d is negative", c.ReadBufferSizeBytes)
	}
	if c.MetricMaxLength < 16 || c.MetricMaxLength > 65535 {
		badf("metric_max_length", "%d is outside [16, 65535]", c.MetricMaxLength)
	}
	if c.TCPIdleTimeout.D() <= 0 {
		badf("tcp_idle_timeout", "%s is not positive", c.TCPIdleTimeout.D())
	}
	if (c.TLSCertificate == "") != (c.TLSKey == "") {
		badf("tls_certificate", "tls_certificate and tls_key go together")
	} else if c.TLSAuthorityCertificate != "" && c.TLSCertificate == "" {
		badf("tls_authority_certificate", "needs tls_certificate and tls_key: a server presents its own certificate")
	} else if err := (tlsconfig.Files{Cert: c.TLSCertificate, Key: c.TLSKey, CA: c.TLSAuthorityCertificate}).Validate(); err != nil {
		bad("tls_certificate", err)
	}
	if !c.TLS.IsZero() {
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			badf("tls.cert_file", "cert_file and key_file go together")
		} else if err := (tlsconfig.Files{Cert: c.TLS.CertFile, Key: c.TLS.KeyFile, CA: c.TLS.CAFile}).Validate(); err != nil {
			bad("tls", err)
		}
		for i, f := range c.ForwardAddress {
			if a, err := forward.ParseAddress(f); err == nil && a.Scheme != "https" {
				// Ignoring tls would send in the clear what the operator
				// meant to protect.
				badf(fmt.Sprintf("forward_address[%d]", i), "%q is not https://, but tls is set", f)
			}
		}
	}
	if c.MaxSeries < 0 {
		badf("max_series", "%d is negative (0 means no bound)", c.MaxSeries)
	}
	if c.MaxSeriesPerName < 0 {
		badf("max_series_per_name", "%d is negative (0 means no bound)", c.MaxSeriesPerName)
	}
	if c.ImportJournalMaxBytes < 0 {
		badf("import_journal_max_bytes", "%d is negative (0 means no bound)", c.ImportJournalMaxBytes)
	}
	if c.UnixSocketMode&^0o777 != 0 {
		badf("unix_socket_mode", "%s has bits beyond 0777", c.UnixSocketMode)
	}
	names := map[string]bool{}
	for i, s := range c.MetricSinks {
		key := fmt.Sprintf("metric_sinks[%d]", i)
		for _, lim := range []struct {
			name string
			v    int
		}{{"max_name_length", s.MaxNameLength}, {"max_tag_length", s.MaxTagLength}, {"max_tags", s.MaxTags}} {
			if lim.v < 0 {
				badf(key+"."+lim.name, "%d is negative (0 means no limit)", lim.v)
			}
		}
		for j, tag := range s.AddTags {
			if tag == "" || strings.ContainsAny(tag, ",|") {
				badf(fmt.Sprintf("%s.add_tags[%d]", key, j), "%q is not a tag", tag)
			}
		}
		if kinds := sinkKindNames(); !slices.Contains(kinds, s.Kind) {
			badf(key+".kind", "%q is not one of %s", s.Kind, strings.Join(kinds, ", "))
		}
		name := s.SinkName()
		if names[name] {
			badf(key+".name", "%q is used by two sinks", name)
		}
		names[name] = true
	}
	return errs
}

// keyError attributes err to key, at the origin Load recorded for it or
// for the nearest key that encloses it.
func (c *Config) keyError(key string, err error) *KeyError {
	o := c.originOf(key)
	return &KeyError{Key: key, File: o.file, Line: o.line, Env: o.env, Err: err}
}

func (c *Config) originOf(key string) origin {
	for ; key != ""; key = enclosing(key) {
		if o, ok := c.origins[key]; ok {
			return o
		}
	}
	return origin{}
}

// Access says who may use the /debug/ endpoints.
type Access uint8

// The Access levels.
const (
	AccessNone     Access = iota // enable_profiling: false
	AccessLoopback               // left out: clients on this host only
	AccessEveryone               // enable_profiling: true
)

// DebugAccess is who may use the /debug/ endpoints: a profile or a series
// list is for whoever runs the host, so an address others can reach
// answers them only when enable_profiling says so.
func (c *Config) DebugAccess() Access {
	if _, set := c.origins["enable_profiling"]; !set {
		return AccessLoopback
	}
	if c.EnableProfiling {
		return AccessEveryone
	}
	return AccessNone
}

// IsLoopback reports whether a host:port address listens on loopback only:
// a loopback IP or "localhost". An empty host (all interfaces) is not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// SinkName is the sink's name, defaulting to its kind.
func (s SinkConfig) SinkName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Kind
}

// DecodeSinkConfig decodes metric_sinks[i].config into dst, a pointer to
// the sink's config struct holding its defaults, the way Load decodes the
// file: each unknown key and bad value is a *KeyError naming
// metric_sinks[i].config.<key> and its line in the file. An absent config
// block leaves dst as it is.
func (c *Config) DecodeSinkConfig(i int, dst any) error {
	key := fmt.Sprintf("metric_sinks[%d].config", i)
	o := c.originOf(key)
	d := &decoder{src: origin{file: o.file, env: o.env}}
	d.decode(&c.MetricSinks[i].Config, reflect.ValueOf(dst).Elem(), key, &c.MetricSinks[i].Config)
	return errors.Join(d.errs...)
}

// SinkConfigError attributes err, from validating the decoded
// metric_sinks[i].config, to that block and its line: one *KeyError per
// joined error.
func (c *Config) SinkConfigError(i int, err error) error {
	if err == nil {
		return nil
	}
	key := fmt.Sprintf("metric_sinks[%d].config", i)
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	out := make([]error, len(all))
	for i, e := range all {
		out[i] = c.keyError(key, e)
	}
	return errors.Join(out...)
}

// ListenAddress is a parsed statsd_listen_addresses entry.
type ListenAddress struct {
	Network string // "udp", "tcp" (or "udp4", "tcp6", …) or "unixgram"
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

// String is the address as written in the config: network://address.
func (a ListenAddress) String() string { return a.Network + "://" + a.Address }

// UnmarshalText parses the address with ParseListenAddress.
func (a *ListenAddress) UnmarshalText(text []byte) error {
	parsed, err := ParseListenAddress(string(text))
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}

// MarshalText writes the address as written in the config.
func (a ListenAddress) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 10s, not %s", describeNode(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 10s", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// FileMode is a Unix permission mode, written in octal: "0722" (quoted or
// not), "722" or "0o722".
type FileMode os.FileMode

// Mode returns the os.FileMode.
func (m FileMode) Mode() os.FileMode { return os.FileMode(m) }

// String writes the mode in octal with a leading 0: "0722".
func (m FileMode) String() string { return fmt.Sprintf("%#o", uint32(m)) }

// UnmarshalYAML reads an octal mode of permission bits (at most 0777).
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want an octal mode like \"0722\", not %s", describeNode(n))
	}
	digits := strings.TrimPrefix(strings.TrimPrefix(n.Value, "0o"), "0O")
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || digits == "" {
		return fmt.Errorf("%q is not an octal mode like \"0722\"", n.Value)
	}
	if v > 0o777 {
		return fmt.Errorf("%q has bits beyond 0777", n.Value)
	}
	*m = FileMode(v)
	return nil
}

// MarshalYAML writes the mode as an octal string.
func (m FileMode) MarshalYAML() (any, error) { return m.String(), nil }
