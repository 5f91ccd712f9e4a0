package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/shards"
	"github.com/veneur-lite/veneur-lite/sinks/datadog"
	"gopkg.in/yaml.v3"
)

// keyErrors lists the *KeyErrors joined in err, and fails the test on any
// other error.
func keyErrors(t *testing.T, err error) []*KeyError {
	t.Helper()
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("error %q (%T) is not a *KeyError", err, err)
			return
		}
		out = append(out, ke)
	}
	if err != nil {
		walk(err)
	}
	return out
}

// wantKey is one expected *KeyError: the exact key, the exact line (0: not
// from the file) and text the reason contains.
type wantKey struct {
	key    string
	line   int
	reason string
}

// checkKeyErrors compares err's *KeyErrors with want, in order.
func checkKeyErrors(t *testing.T, name string, err error, file string, want ...wantKey) {
	t.Helper()
	got := keyErrors(t, err)
	if len(got) != len(want) {
		t.Errorf("%s: %d errors, want %d: %v", name, len(got), len(want), err)
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Key != w.key || g.Line != w.line || !strings.Contains(g.Err.Error(), w.reason) {
			t.Errorf("%s: error %d is key %q line %d reason %q; want key %q line %d reason containing %q",
				name, i, g.Key, g.Line, g.Err, w.key, w.line, w.reason)
		}
		if w.line > 0 && g.File != file {
			t.Errorf("%s: error %d names file %q, want %q", name, i, g.File, file)
		}
	}
}

func TestLoadGoodFiles(t *testing.T) {
	path := filepath.Join("testdata", "full.good.yaml")
	cfg, warnings, err := Load(path, nil)
	if err != nil || warnings != nil {
		t.Fatalf("full.good.yaml: %v %q", err, warnings)
	}
	if cfg.Interval.D() != 10*time.Second || cfg.Hostname != "web-1" || cfg.NumReaders != 4 || cfg.NumWorkers != 8 ||
		cfg.FlushOnShutdown || cfg.MetricMaxLength != 8192 || cfg.TCPIdleTimeout.D() != time.Minute || cfg.UnixSocketMode != 0o770 {
		t.Errorf("scalars decoded wrong: %+v", cfg)
	}
	wantListen := []ListenAddress{{"udp", "127.0.0.1:8125"}, {"tcp", "127.0.0.1:8126"}, {"unixgram", "/var/run/veneur/dogstatsd.sock"}}
	if !slices.Equal(cfg.StatsdListenAddresses, wantListen) {
		t.Errorf("statsd_listen_addresses = %v", cfg.StatsdListenAddresses)
	}
	wantAggs := []aggregate.Aggregate{aggregate.AggMin, aggregate.AggMax, aggregate.AggCount, aggregate.AggSum, aggregate.AggAvg, aggregate.AggMedian}
	if !slices.Equal(cfg.Aggregates, wantAggs) {
		t.Errorf("aggregates = %v", cfg.Aggregates)
	}
	if !slices.Equal(cfg.ForwardAddress, []string{"http://veneur-global:8127"}) {
		t.Errorf("forward_address = %q", cfg.ForwardAddress)
	}
	if len(cfg.MetricSinks) != 2 || cfg.MetricSinks[1].Kind != "datadog" || cfg.MetricSinks[1].SinkName() != "dd" {
		t.Fatalf("metric_sinks = %+v", cfg.MetricSinks)
	}
	var dd struct {
		APIKey          string `yaml:"api_key"`
		APIHostname     string `yaml:"api_hostname"`
		FlushMaxPerBody int    `yaml:"flush_max_per_body"`
	}
	if err := cfg.DecodeSinkConfig(1, &dd); err != nil || dd.FlushMaxPerBody != 10000 || dd.APIKey != "secret" {
		t.Errorf("sink config = %+v, %v", dd, err)
	}

	def, _, err := Load(filepath.Join("testdata", "empty.good.yaml"), nil)
	if err != nil {
		t.Fatalf("empty.good.yaml: %v", err)
	}
	want := Default()
	if def.HTTPAddress != "127.0.0.1:8127" || !slices.Equal(def.StatsdListenAddresses, want.StatsdListenAddresses) ||
		def.Interval != want.Interval || !def.FlushOnShutdown || def.MetricMaxLength != 4096 || def.ReadBufferSizeBytes < 2<<20 {
		t.Errorf("defaults wrong: %+v", def)
	}
}

// Every *.bad.yaml has its expected errors here: each names the exact key
// and the line of the file it is on.
func TestLoadBadFilesNameTheKey(t *testing.T) {
	cases := map[string][]wantKey{
		"unknown_key.bad.yaml": {{"flush_intervall", 2, "unknown key"}},
		"bad_values.bad.yaml": {
			{"interval", 2, `"tenseconds" is not a duration like 10s`},
			{"flush_on_shutdown", 3, `"maybe" is not true or false`},
			{"num_workers", 4, `"abc" is not an integer`},
			{"percentiles[0]", 5, `"abc" is not a number`},
		},
		"bad_interval.bad.yaml":     {{"interval", 1, `"soon" is not a duration like 10s`}},
		"bad_percentile.bad.yaml":   {{"percentiles[1]", 1, "percentile 1.5: must be strictly between 0 and 1"}},
		"dup_percentile.bad.yaml":   {{"percentiles[1]", 1, `0.9 and 0.9 both name "90percentile"`}},
		"bad_aggregate.bad.yaml":    {{"aggregates[1]", 1, `unknown aggregate "p95"`}},
		"bad_listen.bad.yaml":       {{"statsd_listen_addresses[0]", 1, "scheme must be udp, tcp or unixgram"}},
		"bad_forward.bad.yaml":      {{"forward_address[0]", 1, `forward address "veneur-global:8127"`}},
		"forward_query.bad.yaml":    {{"forward_address[0]", 1, "query"}},
		"forward_srv_port.bad.yaml": {{"forward_address[1]", 3, "srv:// takes a bare DNS name"}},
		"bad_workers.bad.yaml":      {{"num_workers", 1, "0 is less than 1"}},
		"many_workers.bad.yaml":     {{"num_workers", 1, "5000 is more than 4096"}},
		"bad_sink_kind.bad.yaml":    {{"metric_sinks[0].kind", 2, `"kafka" is not one of console, datadog`}},
		"sink_unknown_key.bad.yaml": {{"metric_sinks[0].colour", 3, "unknown key"}},
		"typo_key.bad.yaml":         {{"percentile", 1, "unknown key (did you mean percentiles?)"}},
		"empty_item.bad.yaml":       {{"aggregates[1]", 3, "empty list item"}},
		"dup_key.bad.yaml":          {{"interval", 3, "set twice (first on line 1)"}},
		"agent_aggregates_twice.bad.yaml": {{"histogram_aggregates", 2,
			"the Datadog Agent's name for aggregates, which is set too: keep one of the two"}},
		"agent_percentile_both.bad.yaml": {{"histogram_percentiles[0]", 2,
			`0.95 and 0.95 both name "95percentile": a percentile is flushed per host (histogram_percentiles) or fleet-wide (percentiles), not both`}},
		"agent_percentile_value.bad.yaml": {{"histogram_percentiles[0]", 1, `"abc" is not a number like 0.95`}},
		"socket_mode.bad.yaml":            {{"unix_socket_mode", 1, `"0999" is not an octal mode`}},
		"socket_mode_wide.bad.yaml":       {{"unix_socket_mode", 1, `"01777" has bits beyond 0777`}},
		"structure.bad.yaml": {
			{"extend_tags", 2, "want a list, not a mapping"},
			{"num_readers", 4, "want an integer, not a list"},
		},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if len(files) != len(cases)+1 { // + syntax.bad.yaml
		t.Errorf("%d bad files, %d expectations", len(files), len(cases)+1)
	}
	for name, want := range cases {
		path := filepath.Join("testdata", name)
		_, _, err := Load(path, nil)
		checkKeyErrors(t, name, err, path, want...)
	}

	_, _, err := Load(filepath.Join("testdata", "syntax.bad.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "syntax.bad.yaml: yaml: line 1:") {
		t.Errorf("syntax.bad.yaml: %v", err)
	}
}

// The error text is what -validate-config prints: file:line: key: reason.
func TestKeyErrorText(t *testing.T) {
	for _, c := range []struct {
		err  KeyError
		want string
	}{
		{KeyError{Key: "num_workers", File: "v.yaml", Line: 3, Err: errors.New("0 is less than 1")}, "v.yaml:3: num_workers: 0 is less than 1"},
		{KeyError{Key: "interval", Env: "VENEUR_INTERVAL", Err: errors.New(`"x" is not a duration like 10s`)}, `environment VENEUR_INTERVAL: interval: "x" is not a duration like 10s`},
		{KeyError{Key: "hostname", Err: errors.New("empty")}, "hostname: empty"},
		{KeyError{Key: "a.b", File: "v.yaml", Line: 2, Err: ErrUnknownKey}, "v.yaml:2: a.b: unknown key"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
	_, _, err := Load(filepath.Join("testdata", "unknown_key.bad.yaml"), nil)
	if want := "testdata/unknown_key.bad.yaml:2: flush_intervall: unknown key"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// A sink's config block is decoded from the file's own nodes, so its
// errors carry the file's lines, not lines counted from the block.
func TestSinkConfigErrorsCarryFileLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sinks.yaml")
	body := `hostname: h
metric_sinks:
  - kind: console
  - kind: datadog
    name: dd
    config:
      api_key: k
      flush_max_per_body: lots
      colour: red
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dd struct {
		APIKey          string `yaml:"api_key"`
		FlushMaxPerBody int    `yaml:"flush_max_per_body"`
	}
	checkKeyErrors(t, "DecodeSinkConfig", cfg.DecodeSinkConfig(1, &dd), path,
		wantKey{"metric_sinks[1].config.flush_max_per_body", 8, `"lots" is not an integer`},
		wantKey{"metric_sinks[1].config.colour", 9, "unknown key"})
	if dd.APIKey != "k" {
		t.Errorf("api_key = %q", dd.APIKey)
	}
	var none struct{}
	if err := cfg.DecodeSinkConfig(0, &none); err != nil {
		t.Errorf("absent config block: %v", err)
	}
	checkKeyErrors(t, "SinkConfigError", cfg.SinkConfigError(1, errors.Join(errors.New("api_key: must be set"), errors.New("timeout: must be positive"))), path,
		wantKey{"metric_sinks[1].config", 6, "api_key: must be set"},
		wantKey{"metric_sinks[1].config", 6, "timeout: must be positive"})
}

// DecodeSinks decodes every sink's block with its kind's defaults, reports
// each bad block, and gives one console sink when none is configured.
func TestDecodeSinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sinks.yaml")
	body := `metric_sinks:
  - kind: console
    max_tags: 3
  - kind: datadog
    name: dd
    config: {api_key: k}
  - kind: prometheus_remote_write
    config: {url: "http://127.0.0.1:9090/api/v1/write"}
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := cfg.DecodeSinks()
	if err != nil || len(decoded) != 3 {
		t.Fatalf("DecodeSinks = %d sinks, %v; want 3", len(decoded), err)
	}
	if s := decoded[0]; s.Name != "console" || s.Hygiene.MaxTags != 3 || s.Config != struct{}{} {
		t.Errorf("console sink = %+v", s)
	}
	if dd, ok := decoded[1].Config.(datadog.Config); decoded[1].Name != "dd" || !ok || dd.APIKey != "k" || dd.FlushMaxPerBody != 25000 {
		t.Errorf("datadog sink %q: config %+v, want api_key k and the default flush_max_per_body", decoded[1].Name, decoded[1].Config)
	}
	if decoded[2].Name != "prometheus_remote_write" {
		t.Errorf("prometheus sink named %q, want its kind", decoded[2].Name)
	}

	cfg.MetricSinks[1].Config = yaml.Node{}
	checkKeyErrors(t, "DecodeSinks", func() error { _, err := cfg.DecodeSinks(); return err }(), path,
		wantKey{"metric_sinks[1].config", 6, "api_key: must be set"})

	def := Default()
	none, err := def.DecodeSinks()
	if err != nil || len(none) != 1 || none[0].Name != "console" {
		t.Errorf("no metric_sinks: DecodeSinks = %+v, %v; want one console sink", none, err)
	}
}

// A list key takes a single string as a comma-separated list, in the file
// as in the environment.
func TestListKeysTakeAScalar(t *testing.T) {
	file, _, err := Load(filepath.Join("testdata", "scalars.good.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := Load("", []string{
		"VENEUR_STATSD_LISTEN_ADDRESSES=udp://127.0.0.1:8125",
		"VENEUR_EXTEND_TAGS=env:prod,team:web",
		"VENEUR_PERCENTILES=0.99",
		"VENEUR_AGGREGATES=max",
		"VENEUR_FORWARD_ADDRESS=http://g:8127",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{"file": file, "environment": env} {
		if !slices.Equal(cfg.StatsdListenAddresses, []ListenAddress{{"udp", "127.0.0.1:8125"}}) ||
			!slices.Equal(cfg.ExtendTags, []string{"env:prod", "team:web"}) ||
			!slices.Equal(cfg.Percentiles, []float64{0.99}) ||
			!slices.Equal(cfg.Aggregates, []aggregate.Aggregate{aggregate.AggMax}) ||
			!slices.Equal(cfg.ForwardAddress, []string{"http://g:8127"}) {
			t.Errorf("%s: lists = %v %q %v %v %q", name, cfg.StatsdListenAddresses, cfg.ExtendTags, cfg.Percentiles, cfg.Aggregates, cfg.ForwardAddress)
		}
	}
	// An empty string is an empty list.
	cfg, _, err := Load("", []string{"VENEUR_EXTEND_TAGS=", "VENEUR_FORWARD_ADDRESS="})
	if err != nil || len(cfg.ExtendTags) != 0 || len(cfg.ForwardAddress) != 0 {
		t.Errorf("empty lists: %q %q %v", cfg.ExtendTags, cfg.ForwardAddress, err)
	}
}

// YAML merge keys work as they do with yaml.v3's own decoding: the
// mapping's own keys win.
func TestMergeKeys(t *testing.T) {
	cfg, _, err := Load(filepath.Join("testdata", "merge.good.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.MetricSinks) != 2 || cfg.MetricSinks[1].Kind != "datadog" || cfg.MetricSinks[1].SinkName() != "dd2" {
		t.Fatalf("metric_sinks = %+v", cfg.MetricSinks)
	}
	var dd struct {
		APIKey          string `yaml:"api_key"`
		FlushMaxPerBody int    `yaml:"flush_max_per_body"`
	}
	if err := cfg.DecodeSinkConfig(1, &dd); err != nil || dd.APIKey != "k1" || dd.FlushMaxPerBody != 100 {
		t.Errorf("merged config = %+v, %v", dd, err)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	env := []string{
		"VENEUR_INTERVAL=3s",
		"VENEUR_FORWARD_ADDRESS=http://g1:8127,http://g2:8127",
		"VENEUR_PERCENTILES=0.5,0.999",
		"VENEUR_FLUSH_ON_SHUTDOWN=false",
		"VENEUR_HOSTNAME=from-env",
		"VENEUR_UNIX_SOCKET_MODE=0700",
		"VENEUR_METRIC_SINKS=[{kind: console, name: c2}]",
		"VENEUR_HTTP_ADDRESS=[::1]:8127", // a string, not YAML
		"PATH=/usr/bin",
	}
	cfg, warnings, err := Load(filepath.Join("testdata", "full.good.yaml"), env)
	if err != nil || warnings != nil {
		t.Fatal(err, warnings)
	}
	if cfg.Interval.D() != 3*time.Second || cfg.Hostname != "from-env" || cfg.FlushOnShutdown || cfg.UnixSocketMode != 0o700 {
		t.Errorf("scalars not overridden: %+v", cfg)
	}
	if !slices.Equal(cfg.ForwardAddress, []string{"http://g1:8127", "http://g2:8127"}) {
		t.Errorf("forward_address = %q", cfg.ForwardAddress)
	}
	if !slices.Equal(cfg.Percentiles, []float64{0.5, 0.999}) {
		t.Errorf("percentiles = %v", cfg.Percentiles)
	}
	if len(cfg.MetricSinks) != 1 || cfg.MetricSinks[0].SinkName() != "c2" {
		t.Errorf("metric_sinks = %+v", cfg.MetricSinks)
	}
	if cfg.HTTPAddress != "[::1]:8127" {
		t.Errorf("http_address = %q", cfg.HTTPAddress)
	}
	if cfg.NumReaders != 4 { // from the file, not overridden
		t.Errorf("num_readers = %d", cfg.NumReaders)
	}
}

// An error in a value from the environment names the variable, as one
// from the file names its line; so does one found by Validate.
func TestEnvironmentErrorsNameTheVariable(t *testing.T) {
	_, _, err := Load("", []string{"VENEUR_NUM_READERS=many", "VENEUR_NUM_WORKERS=5000", "VENEUR_PERCENTILES=0.5,2",
		"VENEUR_METRIC_SINKS=[{kind: console, colour: red}]", "VENEUR_EXTEND_TAGS=[a"})
	checkKeyErrors(t, "environment", err, "",
		wantKey{"num_readers", 0, `"many" is not an integer`},
		wantKey{"metric_sinks[0].colour", 0, "unknown key"},
		wantKey{"extend_tags", 0, "not valid YAML"},
		wantKey{"percentiles[1]", 0, "must be strictly between 0 and 1"},
		wantKey{"num_workers", 0, "5000 is more than 4096"})
	for i, e := range keyErrors(t, err) {
		if want := "VENEUR_" + strings.ToUpper(strings.FieldsFunc(e.Key, func(r rune) bool { return r == '[' || r == '.' })[0]); e.Env != want {
			t.Errorf("error %d (%v) names variable %q, want %q", i, e, e.Env, want)
		}
	}
}

// A VENEUR_ variable that is no key is a warning naming it and the
// closest key, never silence and never an error.
func TestUnknownEnvironmentVariableWarns(t *testing.T) {
	cfg, warnings, err := Load("", []string{"VENEUR_INTERVALS=5s", "VENEUR_ZZZ=1", "VENEURX=1", "VENEUR_Interval=5s"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"VENEUR_INTERVALS is not a configuration key; ignored (did you mean VENEUR_INTERVAL?)",
		"VENEUR_ZZZ is not a configuration key; ignored",
		"VENEUR_Interval is not a configuration key; ignored (did you mean VENEUR_INTERVAL?)",
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", warnings, want)
	}
	if cfg.Interval.D() != 10*time.Second {
		t.Errorf("interval = %s", cfg.Interval.D())
	}
	// Warnings come back with errors too, for -validate-config to print.
	_, warnings, err = Load("", []string{"VENEUR_INTERVALS=5s", "VENEUR_NUM_WORKERS=0"})
	if err == nil || len(warnings) != 1 {
		t.Errorf("with an error: %v %q", err, warnings)
	}
}

// An empty hostname means the OS hostname, as in Veneur; it is an error
// only when the OS hostname cannot be read.
func TestEmptyHostnameIsTheOSHostname(t *testing.T) {
	osHost := func() (string, error) { return "os-host", nil }
	for _, c := range []struct {
		path string
		env  []string
	}{
		{filepath.Join("testdata", "hostname_empty.good.yaml"), nil},
		{"", []string{"VENEUR_HOSTNAME="}},
	} {
		cfg, _, err := load(c.path, c.env, osHost)
		if err != nil || cfg.Hostname != "os-host" {
			t.Errorf("%s %q: hostname %q, %v", c.path, c.env, cfg.Hostname, err)
		}
	}
	cfg, _, err := Load(filepath.Join("testdata", "hostname_empty.good.yaml"), nil)
	if host, _ := os.Hostname(); err != nil || cfg.Hostname != host {
		t.Errorf("real OS hostname: %q, %v; want %q", cfg.Hostname, err, host)
	}
	unknown := func() (string, error) { return "", errors.New("no uts namespace") }
	path := filepath.Join("testdata", "hostname_empty.good.yaml")
	_, _, err = load(path, nil, unknown)
	checkKeyErrors(t, "unknown OS hostname", err, path, wantKey{"hostname", 1, "the OS hostname could not be read"})
}

func TestUnixSocketMode(t *testing.T) {
	for in, want := range map[string]FileMode{`"0722"`: 0o722, "0722": 0o722, "0o700": 0o700, "700": 0o700, `"0"`: 0} {
		path := filepath.Join(t.TempDir(), "mode.yaml")
		if err := os.WriteFile(path, []byte("unix_socket_mode: "+in+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Load(path, nil)
		if err != nil || cfg.UnixSocketMode != want {
			t.Errorf("unix_socket_mode: %s = %v, %v; want %v", in, cfg.UnixSocketMode, err, want)
		}
	}
	if got := Default().UnixSocketMode; got != 0o722 || got.String() != "0722" || got.Mode() != 0o722 {
		t.Errorf("default %v", got)
	}
	for _, bad := range []string{"rw", "0x1ff", "-1", "1000"} {
		_, _, err := Load("", []string{"VENEUR_UNIX_SOCKET_MODE=" + bad})
		checkKeyErrors(t, bad, err, "", wantKey{"unix_socket_mode", 0, ""})
	}
	c := Default()
	c.UnixSocketMode = 0o4755
	checkKeyErrors(t, "Validate", c.Validate(), "", wantKey{"unix_socket_mode", 0, "04755 has bits beyond 0777"})
}

// The built-in defaults are docs/configuration.md's, and valid.
func TestDefaultsAreTheSpec(t *testing.T) {
	d := Default()
	host, _ := os.Hostname()
	if !slices.Equal(d.StatsdListenAddresses, []ListenAddress{{"udp", "127.0.0.1:8125"}}) || d.HTTPAddress != "127.0.0.1:8127" ||
		d.Interval.D() != 10*time.Second || d.Hostname != host || len(d.ExtendTags) != 0 ||
		!slices.Equal(d.Percentiles, []float64{0.5, 0.75, 0.99}) ||
		!slices.Equal(d.Aggregates, []aggregate.Aggregate{aggregate.AggMin, aggregate.AggMax, aggregate.AggCount}) ||
		len(d.ForwardAddress) != 0 || d.NumReaders != runtime.NumCPU() || d.NumWorkers != min(runtime.NumCPU(), shards.Max) ||
		d.ReadBufferSizeBytes < 2<<20 || d.MetricMaxLength != 4096 || !d.FlushOnShutdown || len(d.MetricSinks) != 0 {
		t.Errorf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseListenAddress(t *testing.T) {
	for in, want := range map[string]ListenAddress{
		"udp://127.0.0.1:8125":     {"udp", "127.0.0.1:8125"},
		"tcp://[::1]:8126":         {"tcp", "[::1]:8126"},
		"unixgram:///tmp/dsd.sock": {"unixgram", "/tmp/dsd.sock"},
		"udp6://[::1]:0":           {"udp6", "[::1]:0"},
	} {
		got, err := ParseListenAddress(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseListenAddress(%q) = %+v (%s), %v; want %+v", in, got, got, err, want)
		}
	}
	for _, in := range []string{"udp://127.0.0.1", "unixgram://host/tmp/x", "http://x:1", "tcp://:8126/path"} {
		if _, err := ParseListenAddress(in); err == nil {
			t.Errorf("ParseListenAddress(%q) accepted", in)
		}
	}
}

// TestSeriesBoundsByRole: left out, the series bounds are a host agent's
// on a local and a global's on the root of the tier; set in the file or
// the environment, they are kept, 0 (no bound) included; negative is an
// error that names the key.
func TestSeriesBoundsByRole(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, body      string
		env             []string
		max, maxPerName int
		wantErrKey      string
	}{
		{"root", "", nil, GlobalMaxSeries, GlobalMaxSeriesPerName, ""},
		{"local", "forward_address: http://g:8127\n", nil, LocalMaxSeries, LocalMaxSeriesPerName, ""},
		{"set", "forward_address: http://g:8127\nmax_series: 5000\n", nil, 5000, LocalMaxSeriesPerName, ""},
		{"unbounded", "max_series: 0\nmax_series_per_name: 0\n", nil, 0, 0, ""},
		{"env", "", []string{"VENEUR_MAX_SERIES_PER_NAME=7"}, GlobalMaxSeries, 7, ""},
		{"negative", "max_series: -1\n", nil, 0, 0, "max_series"},
	} {
		cfg, _, err := Load(write(tc.name+".yaml", tc.body), tc.env)
		if tc.wantErrKey != "" {
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.wantErrKey {
				t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.wantErrKey)
			}
			continue
		}
		if err != nil || cfg.MaxSeries != tc.max || cfg.MaxSeriesPerName != tc.maxPerName {
			t.Errorf("%s: max_series %d, per name %d (%v); want %d, %d", tc.name, cfg.MaxSeries, cfg.MaxSeriesPerName, err, tc.max, tc.maxPerName)
		}
	}
}

// TestSinkHygieneKeys: a metric_sinks entry takes Veneur's hygiene keys
// beside kind, name and config; a negative limit names its key.
func TestSinkHygieneKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.yaml")
	body := `metric_sinks:
  - kind: console
    max_name_length: 200
    max_tag_length: 100
    max_tags: 50
    strip_tags: [pod, "dd.*"]
    add_tags: env:prod
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.MetricSinks[0].Hygiene
	if h.MaxNameLength != 200 || h.MaxTagLength != 100 || h.MaxTags != 50 ||
		!slices.Equal(h.StripTags, []string{"pod", "dd.*"}) || !slices.Equal(h.AddTags, []string{"env:prod"}) {
		t.Errorf("hygiene %+v", h)
	}
	if err := os.WriteFile(path, []byte("metric_sinks:\n  - kind: console\n    max_tags: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(path, nil)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "metric_sinks[0].max_tags" {
		t.Errorf("error %v, want one naming metric_sinks[0].max_tags", err)
	}
}

// The Datadog Agent's keys, as its datadog.yaml writes them, reproduce its
// histogram outputs: histogram_aggregates becomes aggregates, and
// histogram_percentiles (strings or numbers) the per-host percentiles.
func TestAgentHistogramKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("histogram_aggregates: [max, median, avg, count]\nhistogram_percentiles: [\"0.95\", 0.99]\npercentiles: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []aggregate.Aggregate{aggregate.AggMax, aggregate.AggMedian, aggregate.AggAvg, aggregate.AggCount}
	if !slices.Equal(cfg.Aggregates, want) || !slices.Equal(cfg.HostPercentiles(), []float64{0.95, 0.99}) {
		t.Fatalf("aggregates %v host percentiles %v", cfg.Aggregates, cfg.HostPercentiles())
	}
	env := []string{"VENEUR_HISTOGRAM_PERCENTILES=0.9,0.95", "VENEUR_PERCENTILES=0.5"}
	if cfg, _, err = Load("", env); err != nil || !slices.Equal(cfg.HostPercentiles(), []float64{0.9, 0.95}) {
		t.Fatalf("from the environment: %v, %v", cfg.HostPercentiles(), err)
	}
}

// The README's "Coming from the Datadog Agent" block is a valid config that
// sets the Agent's histogram outputs and the v2 protobuf intake.
func TestReadmeAgentBlock(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Coming from the Datadog Agent")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no yaml block under Coming from the Datadog Agent")
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []aggregate.Aggregate{aggregate.AggMax, aggregate.AggMedian, aggregate.AggAvg, aggregate.AggCount}
	if !slices.Equal(cfg.Aggregates, want) || !slices.Equal(cfg.HostPercentiles(), []float64{0.95}) || len(cfg.Percentiles) != 0 {
		t.Fatalf("aggregates %v, host percentiles %v, percentiles %v", cfg.Aggregates, cfg.HostPercentiles(), cfg.Percentiles)
	}
	if len(cfg.MetricSinks) != 1 || cfg.MetricSinks[0].Kind != "datadog" || !strings.Contains(block, "api_version: v2") {
		t.Fatalf("sinks %+v", cfg.MetricSinks)
	}
}
