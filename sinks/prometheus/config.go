package prometheus

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"

	"golang.org/x/net/http/httpguts"
)

// Defaults applied by SetDefaults.
const (
	// DefaultFlushMaxPerBody is Prometheus's own max_samples_per_send:
	// a request size that receivers are tuned for. Each series here
	// carries one sample.
	DefaultFlushMaxPerBody = 2000
	// DefaultMaxConcurrency bounds the requests in flight per flush, and
	// with it the bodies held in memory while the receiver is slow.
	DefaultMaxConcurrency = 8
	// DefaultTimeout is per request, well under the default 10s interval
	// so that a hung request still leaves time for a retry; the flush
	// context bounds the total either way.
	DefaultTimeout = 5 * time.Second
)

// Config is the `config:` map of a `kind: prometheus_remote_write` entry in
// metric_sinks. The caller decodes it strictly from YAML (unknown keys
// rejected) after SetDefaults, then calls Validate.
type Config struct {
	// URL is the remote-write endpoint itself, such as
	// http://prometheus:9090/api/v1/write. Credentials go in BasicAuth or
	// Headers, not in the URL.
	URL string `yaml:"url"`
	// Headers are added to every request, e.g. an Authorization bearer
	// token or a tenant header. Their values never appear in logs or
	// errors.
	Headers map[string]string `yaml:"headers"`
	// BasicAuth, when set, sends HTTP basic authentication.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// FlushMaxPerBody is the most series one request carries.
	FlushMaxPerBody int `yaml:"flush_max_per_body"`
	// MaxConcurrency is the most requests in flight at once.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Timeout bounds one HTTP request, response included.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures the client side of https:// URLs.
	TLS *TLSConfig `yaml:"tls"`
}

// BasicAuth is HTTP basic authentication. The password is never printed.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// TLSConfig is the client side of TLS, with the keys Veneur uses for its
// forwarding client (docs/configuration.md, tls).
type TLSConfig struct {
	// CAFile holds the PEM certificates that verify the server; empty
	// means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key, for
	// receivers that require mTLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server's certificate is checked
	// against (and sent in SNI).
	ServerName string `yaml:"server_name"`
}

// SetDefaults fills every field left at zero with its default. Call it
// before decoding so that keys left out of the file keep their defaults.
func (c *Config) SetDefaults() {
	if c.FlushMaxPerBody == 0 {
		c.FlushMaxPerBody = DefaultFlushMaxPerBody
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// reservedHeaders are set by the sink itself: the remote-write protocol
// fixes them, and a configured value would corrupt every request.
var reservedHeaders = []string{
	"Content-Encoding", "Content-Type", "Content-Length", "Host",
	"User-Agent", "X-Prometheus-Remote-Write-Version", "Transfer-Encoding", "Connection",
}

// Validate reports every invalid key, each error naming the key. It never
// repeats a password or a header value. It reads the files named under
// tls, so that a bad one is found by -validate-config; New reads them
// again.
func (c Config) Validate() error {
	var errs []error
	u, err := validateURL(c.URL)
	if err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		canon := http.CanonicalHeaderKey(name)
		switch {
		case seen[canon]:
			// Which of the two is sent would depend on map order.
			errs = append(errs, fmt.Errorf("headers: %s given twice (header names ignore case)", canon))
		case !httpguts.ValidHeaderFieldName(name):
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", name))
		case slices.Contains(reservedHeaders, canon):
			errs = append(errs, fmt.Errorf("headers: %s is set by the sink and cannot be configured", canon))
		case canon == "Authorization" && c.BasicAuth != nil:
			errs = append(errs, errors.New("headers: Authorization conflicts with basic_auth"))
		case !httpguts.ValidHeaderFieldValue(c.Headers[name]):
			errs = append(errs, fmt.Errorf("headers: the value of %s holds characters a header cannot carry", name))
		}
		seen[canon] = true
	}
	if c.BasicAuth != nil && c.BasicAuth.Username == "" {
		errs = append(errs, errors.New("basic_auth: username must be set"))
	}
	if c.FlushMaxPerBody <= 0 {
		errs = append(errs, fmt.Errorf("flush_max_per_body: must be positive, got %d", c.FlushMaxPerBody))
	}
	if c.MaxConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("max_concurrency: must be positive, got %d", c.MaxConcurrency))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, errors.New("tls: cert_file and key_file go together"))
		}
		if u != nil && u.Scheme != "https" {
			// Ignoring it would send in the clear what the operator
			// meant to protect.
			errs = append(errs, fmt.Errorf("tls: set, but url %q is not https", u.Redacted()))
		}
		if (t.CertFile == "") == (t.KeyFile == "") {
			if err := t.files().Validate(); err != nil {
				errs = append(errs, fmt.Errorf("tls: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func validateURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("must be set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input, credentials included if it holds
		// any: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http(s) URL", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q carries credentials: use basic_auth", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%q has a fragment", u.Redacted())
	}
	return u, nil
}

// files names the PEM files for the reloading client configuration that
// the forwarder's client side uses too (internal/tlsconfig).
func (t *TLSConfig) files() tlsconfig.Files {
	return tlsconfig.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile}
}

// secrets lists what must never reach a log line or an error: the
// password, every header value and the basic-auth header they make.
func (c Config) secrets() []string {
	var out []string
	if c.BasicAuth != nil && c.BasicAuth.Password != "" {
		// An echoed request would show the Authorization header encoded.
		encoded := base64.StdEncoding.EncodeToString([]byte(c.BasicAuth.Username + ":" + c.BasicAuth.Password))
		out = append(out, c.BasicAuth.Password, encoded)
	}
	for _, v := range c.Headers {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// String describes c with the password and header values redacted, so that
// printing a Config with %v or %+v cannot leak them.
func (c Config) String() string {
	return fmt.Sprintf("{url:%s headers:%v basic_auth:%s flush_max_per_body:%d max_concurrency:%d timeout:%s tls:%s}",
		c.URL, c.headerNames(), c.basicAuthString(), c.FlushMaxPerBody, c.MaxConcurrency, c.Timeout, c.tlsString())
}

// GoString keeps %#v from printing secrets too.
func (c Config) GoString() string { return "prometheus.Config" + c.String() }

// LogValue makes slog print c with secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.Any("headers", c.headerNames()),
		slog.String("basic_auth", c.basicAuthString()),
		slog.Int("flush_max_per_body", c.FlushMaxPerBody),
		slog.Int("max_concurrency", c.MaxConcurrency),
		slog.Duration("timeout", c.Timeout),
		slog.String("tls", c.tlsString()),
	)
}

// headerNames shows which headers are set, each value redacted.
func (c Config) headerNames() []string {
	names := slices.Sorted(maps.Keys(c.Headers))
	for i, n := range names {
		names[i] = n + ":<redacted>"
	}
	return names
}

func (c Config) basicAuthString() string {
	if c.BasicAuth == nil {
		return "none"
	}
	return c.BasicAuth.Username + ":<redacted>"
}

func (c Config) tlsString() string {
	if c.TLS == nil {
		return "none"
	}
	return fmt.Sprintf("{ca_file:%s cert_file:%s key_file:%s server_name:%s}", c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ServerName)
}

// String keeps a BasicAuth printed on its own from showing the password.
func (b BasicAuth) String() string { return b.Username + ":<redacted>" }

// GoString keeps %#v from printing the password.
func (b BasicAuth) GoString() string { return "prometheus.BasicAuth{" + b.String() + "}" }
