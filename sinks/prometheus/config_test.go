package prometheus

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{FlushMaxPerBody: 2000, MaxConcurrency: 8, Timeout: 5 * time.Second}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
}

// decode mirrors how cmd/veneur-lite decodes a sink's map: defaults first,
// then strict YAML.
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
url: https://prom.example:9090/api/v1/write
headers: {X-Scope-OrgID: tenant-1}
basic_auth: {username: u, password: p}
flush_max_per_body: 500
max_concurrency: 2
timeout: 1500ms
tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, server_name: prom.internal}
`)
	// Validate reads the TLS files, which this test does not write: that
	// they are missing must be the only complaint.
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "tls: ") {
		t.Fatalf("error %v, want only the missing TLS files", err)
	}
	want := Config{
		URL:             "https://prom.example:9090/api/v1/write",
		Headers:         map[string]string{"X-Scope-OrgID": "tenant-1"},
		BasicAuth:       &BasicAuth{Username: "u", Password: "p"},
		FlushMaxPerBody: 500, MaxConcurrency: 2, Timeout: 1500 * time.Millisecond,
		TLS: &TLSConfig{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem", ServerName: "prom.internal"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
	for _, bad := range []string{"url: http://x\nurll: y\n", "url: http://x\nbasic_auth: {user: u}\n", "url: http://x\ntls: {ca: f}\n"} {
		if _, err := decode(t, bad); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%q: error %v, want an unknown key", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"timeout: 1s", "url: must be set"},
		{"url: ftp://x/w", `url: "ftp://x/w" is not an http(s) URL`},
		{"url: prom:9090/api/v1/write", `url: "prom:9090/api/v1/write" needs a scheme: http://prom:9090/api/v1/write`},
		{"url: http://prom:99999/api/v1/write", `url: "http://prom:99999/api/v1/write": port 99999 is out of range`},
		{"url: 'http://prom:9090/api/v1/write?token=secret1'\ntls: {ca_file: c}", `tls: set, but url "http://prom:9090/api/v1/write?token=xxxxx" is not https`},
		{"url: 'http:///w'", `url: "http:///w" has no host`},
		{"url: 'http://x%zz'", `url: "http://x%zz" is not a valid URL: invalid URL escape`},
		{"url: 'https://u:secretpw@x/w'", `url: "https://xxxxx@x/w" carries credentials: use basic_auth`},
		{"url: 'http://x/w#f'", "has a fragment"},
		{"url: http://x\nflush_max_per_body: 0", "flush_max_per_body: must be positive, got 0"},
		{"url: http://x\nmax_concurrency: -1", "max_concurrency: must be positive, got -1"},
		{"url: http://x\ntimeout: -1s", "timeout: must be positive, got -1s"},
		{"url: http://x\nbasic_auth: {password: p}", "basic_auth: username must be set"},
		{"url: http://x\nheaders: {content-type: text/plain}", "headers: Content-Type is set by the sink"},
		{"url: http://x\nheaders: {X-Prometheus-Remote-Write-Version: 2.0.0}", "headers: X-Prometheus-Remote-Write-Version is set by the sink"},
		{"url: http://x\nheaders: {'bad name': v}", `headers: "bad name" is not a valid header name`},
		{"url: http://x\nheaders: {X-A: \"line\\nbreak-secret\"}", "headers: the value of X-A holds characters"},
		{"url: http://x\nheaders: {Authorization: t}\nbasic_auth: {username: u}", "headers: Authorization conflicts with basic_auth"},
		{"url: http://x\nheaders: {x-a: '1', X-A: '2'}", "headers: X-A given twice"},
		{"url: https://x\ntls: {cert_file: c}", "tls: cert_file and key_file go together"},
		{"url: http://x\ntls: {ca_file: c}", `tls: set, but url "http://x" is not https`},
	} {
		_, err := decode(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error repeats a secret: %v", tc.yaml, err)
		}
	}
	// Every problem at once, each named.
	_, err := decode(t, "flush_max_per_body: -1\nmax_concurrency: 0\ntimeout: 0s")
	for _, key := range []string{"url:", "flush_max_per_body:", "max_concurrency:", "timeout:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

// However a Config is printed or logged, the password and header values
// stay out.
func TestConfigRedacted(t *testing.T) {
	c := Config{
		URL:       "https://prom/api/v1/write?token=" + testToken,
		Headers:   map[string]string{"Authorization": testToken},
		BasicAuth: &BasicAuth{Username: "user", Password: testPassword},
		TLS:       &TLSConfig{CAFile: "/ca.pem"},
	}
	c.SetDefaults()
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", c, "auth", c.BasicAuth, "auth_value", *c.BasicAuth)
	for _, out := range []string{
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v %+v %#v", c.BasicAuth, *c.BasicAuth, c.BasicAuth),
		logs.String(),
	} {
		if strings.Contains(out, testPassword) || strings.Contains(out, "tok-0f1e2d3c4b5a6978") {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "user") {
			t.Errorf("username missing: %s", out)
		}
	}
}
