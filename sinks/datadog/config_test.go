package datadog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{
		APIHostname:     "https://app.datadoghq.com",
		FlushMaxPerBody: 25000,
		APIVersion:      "v1",
		Compression:     "deflate",
		MaxConcurrency:  8,
		Timeout:         5 * time.Second,
	}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
}

// decode mirrors how the config package decodes a sink's map: defaults
// first, then strict YAML.
func decode(t *testing.T, text string) (Config, error) {
	t.Helper()
	var c Config
	c.SetDefaults()
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestConfigYAML(t *testing.T) {
	c, err := decode(t, `
api_key: abc
api_hostname: http://127.0.0.1:8428/datadog
flush_max_per_body: 1000
api_version: v2
compression: gzip
max_concurrency: 2
timeout: 1500ms
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{APIKey: "abc", APIHostname: "http://127.0.0.1:8428/datadog", FlushMaxPerBody: 1000,
		APIVersion: "v2", Compression: "gzip", MaxConcurrency: 2, Timeout: 1500 * time.Millisecond}
	if c != want {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
	if _, err := decode(t, "api_key: abc\napi_hotsname: http://x\n"); err == nil || !strings.Contains(err.Error(), "api_hotsname") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"api_hostname: http://x", "api_key: must be set"},
		{"api_key: '  '", "api_key: must be set"},
		{"api_key: k\napi_hostname: ftp://x", `api_hostname: "ftp://x" is not an http(s) URL`},
		{"api_key: k\napi_hostname: app.datadoghq.com", `api_hostname: "app.datadoghq.com" needs a scheme: https://app.datadoghq.com`},
		{"api_key: k\napi_hostname: https://app.datadoghq.com:99999", `api_hostname: "https://app.datadoghq.com:99999": port 99999 is out of range`},
		{"api_key: k\napi_hostname: 'http://'", "api_hostname: \"http://\" has no host"},
		{"api_key: k\napi_hostname: 'http://x/?api_key=1'", "api_hostname: \"http://x/?api_key=xxxxx\" must be a base URL"},
		{"api_key: k\napi_hostname: ''", "api_hostname: must be set"},
		{"api_key: k\napi_hostname: 'http://x%zz'", `api_hostname: "http://x%zz" is not a valid URL`},
		{"api_key: k\nflush_max_per_body: 0", "flush_max_per_body: must be positive, got 0"},
		{"api_key: k\nflush_max_per_body: -5", "flush_max_per_body: must be positive, got -5"},
		{"api_key: k\napi_version: v3", `api_version: must be v1 or v2, got "v3"`},
		{"api_key: k\ncompression: zstd", `compression: must be deflate or gzip, got "zstd"`},
		{"api_key: k\nmax_concurrency: 0", "max_concurrency: must be positive, got 0"},
		{"api_key: k\ntimeout: -1s", "timeout: must be positive, got -1s"},
	} {
		_, err := decode(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := New("x", Config{APIKey: "k"}, nil, nil); err == nil || !strings.Contains(err.Error(), `datadog sink "x"`) {
		t.Errorf("New without defaults: %v", err)
	}
}

func TestConfigRedactsKey(t *testing.T) {
	c := Config{APIKey: testKey}
	c.SetDefaults()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "datadog", c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c), logs.String()} {
		if strings.Contains(out, testKey) || !strings.Contains(out, "redacted") {
			t.Errorf("key not redacted: %s", out)
		}
	}
}
