package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGoodFiles(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "full.good.yaml"), nil)
	if err != nil {
		t.Fatalf("full.good.yaml: %v", err)
	}
	if cfg.Interval.D() != 10*time.Second || cfg.Hostname != "web-1" || cfg.NumReaders != 4 || cfg.NumWorkers != 8 ||
		cfg.FlushOnShutdown || cfg.MetricMaxLength != 8192 || cfg.TCPIdleTimeout.D() != time.Minute {
		t.Errorf("scalars decoded wrong: %+v", cfg)
	}
	if got := strings.Join(cfg.ForwardAddress, ","); got != "http://veneur-global:8127" {
		t.Errorf("forward_address = %q", got)
	}
	if len(cfg.MetricSinks) != 2 || cfg.MetricSinks[1].Kind != "datadog" || cfg.MetricSinks[1].SinkName() != "dd" {
		t.Fatalf("metric_sinks = %+v", cfg.MetricSinks)
	}
	var dd struct {
		APIKey          string `yaml:"api_key"`
		APIHostname     string `yaml:"api_hostname"`
		FlushMaxPerBody int    `yaml:"flush_max_per_body"`
	}
	if err := DecodeNode(&cfg.MetricSinks[1].Config, &dd); err != nil || dd.FlushMaxPerBody != 10000 || dd.APIKey != "secret" {
		t.Errorf("sink config = %+v, %v", dd, err)
	}

	def, err := Load(filepath.Join("testdata", "empty.good.yaml"), nil)
	if err != nil {
		t.Fatalf("empty.good.yaml: %v", err)
	}
	want := Default()
	if def.HTTPAddress != "127.0.0.1:8127" || def.StatsdListenAddresses[0] != "udp://127.0.0.1:8125" ||
		def.Interval != want.Interval || !def.FlushOnShutdown || def.MetricMaxLength != 4096 || def.ReadBufferSizeBytes < 2<<20 {
		t.Errorf("defaults wrong: %+v", def)
	}
}

func TestLoadBadFilesNameTheKey(t *testing.T) {
	cases := map[string]string{
		"unknown_key.bad.yaml":    `unknown key "flush_intervall" (line 2)`,
		"bad_interval.bad.yaml":   `"soon" is not a duration`,
		"bad_percentile.bad.yaml": "percentiles: 1.5 is not in (0, 1)",
		"dup_percentile.bad.yaml": `percentiles: 0.9 and 0.9 both name "90percentile"`,
		"bad_aggregate.bad.yaml":  "aggregates:",
		"bad_listen.bad.yaml":     "statsd_listen_addresses:",
		"bad_forward.bad.yaml":    "forward_address:",
		"bad_workers.bad.yaml":    "num_workers: 0 is less than 1",
		"bad_sink_kind.bad.yaml":  `metric_sinks[0].kind: "kafka" is not one of`,
		"syntax.bad.yaml":         "yaml:",
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if len(files) != len(cases) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(cases))
	}
	for name, want := range cases {
		_, err := Load(filepath.Join("testdata", name), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, want)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	env := []string{
		"VENEUR_INTERVAL=3s",
		"VENEUR_FORWARD_ADDRESS=http://g1:8127,http://g2:8127",
		"VENEUR_PERCENTILES=0.5,0.999",
		"VENEUR_FLUSH_ON_SHUTDOWN=false",
		"VENEUR_HOSTNAME=from-env",
		"VENEUR_METRIC_SINKS=[{kind: console, name: c2}]",
		"PATH=/usr/bin",
	}
	cfg, err := Load(filepath.Join("testdata", "full.good.yaml"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval.D() != 3*time.Second || cfg.Hostname != "from-env" || cfg.FlushOnShutdown {
		t.Errorf("scalars not overridden: %+v", cfg)
	}
	if got := strings.Join(cfg.ForwardAddress, " "); got != "http://g1:8127 http://g2:8127" {
		t.Errorf("forward_address = %q", got)
	}
	if len(cfg.Percentiles) != 2 || cfg.Percentiles[1] != 0.999 {
		t.Errorf("percentiles = %v", cfg.Percentiles)
	}
	if len(cfg.MetricSinks) != 1 || cfg.MetricSinks[0].SinkName() != "c2" {
		t.Errorf("metric_sinks = %+v", cfg.MetricSinks)
	}
	if _, err := Load("", []string{"VENEUR_NUM_READERS=many"}); err == nil || !strings.Contains(err.Error(), "VENEUR_NUM_READERS") {
		t.Errorf("bad env value: %v", err)
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
		if err != nil || got != want {
			t.Errorf("ParseListenAddress(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"udp://127.0.0.1", "unixgram://host/tmp/x", "http://x:1", "tcp://:8126/path"} {
		if _, err := ParseListenAddress(in); err == nil {
			t.Errorf("ParseListenAddress(%q) accepted", in)
		}
	}
}
