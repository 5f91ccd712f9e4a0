package datadog

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/address"
)

// Defaults applied by SetDefaults.
const (
	DefaultAPIHostname     = "https://app.datadoghq.com"
	DefaultFlushMaxPerBody = 25000
	DefaultAPIVersion      = "v1"
	DefaultCompression     = "deflate"
	// DefaultMaxConcurrency bounds the bodies in flight per flush. Each body
	// holds at most 3.2 MB compressed (v1), so this also bounds the memory a
	// flush holds while the intake is slow.
	DefaultMaxConcurrency = 8
	// DefaultTimeout is per request. It is well under the default 10s
	// interval so a hung request still leaves time for a retry; the flush
	// context bounds the total either way.
	DefaultTimeout = 5 * time.Second
)

// Config is the `config:` map of a `kind: datadog` entry in metric_sinks.
// The caller decodes it strictly from YAML (unknown keys rejected) after
// SetDefaults, then calls Validate.
type Config struct {
	// APIKey goes into the DD-API-KEY header and nowhere else: String and
	// LogValue redact it, and no error or log line of this package holds it.
	APIKey string `yaml:"api_key"`
	// APIHostname is the base URL the API paths are appended to, such as
	// https://app.datadoghq.com or http://127.0.0.1:8428/datadog for a
	// Datadog-compatible receiver.
	APIHostname string `yaml:"api_hostname"`
	// FlushMaxPerBody is the most series one request body carries. Bodies
	// are also cut to stay under Datadog's documented size limits.
	FlushMaxPerBody int `yaml:"flush_max_per_body"`
	// APIVersion selects the series intake: "v1" (/api/v1/series) or "v2"
	// (/api/v2/series).
	APIVersion string `yaml:"api_version"`
	// Compression is the Content-Encoding of series bodies: "deflate" (a
	// zlib stream, what the Datadog Agent sends) or "gzip".
	Compression string `yaml:"compression"`
	// MaxConcurrency is the most requests in flight at once.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Timeout bounds one HTTP request, response included.
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills every field with its default. Call it before decoding
// so that keys left out of the file keep their defaults.
func (c *Config) SetDefaults() {
	if c.APIHostname == "" {
		c.APIHostname = DefaultAPIHostname
	}
	if c.FlushMaxPerBody == 0 {
		c.FlushMaxPerBody = DefaultFlushMaxPerBody
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate reports every invalid key, each error naming the key. It never
// repeats the API key's value.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.APIKey) == "" {
		errs = append(errs, errors.New("api_key: must be set"))
	}
	if err := validateBaseURL(c.APIHostname); err != nil {
		errs = append(errs, fmt.Errorf("api_hostname: %w", err))
	}
	if c.FlushMaxPerBody <= 0 {
		errs = append(errs, fmt.Errorf("flush_max_per_body: must be positive, got %d", c.FlushMaxPerBody))
	}
	switch c.APIVersion {
	case "v1", "v2":
	default:
		errs = append(errs, fmt.Errorf("api_version: must be v1 or v2, got %q", c.APIVersion))
	}
	switch c.Compression {
	case "deflate", "gzip":
	default:
		errs = append(errs, fmt.Errorf("compression: must be deflate or gzip, got %q", c.Compression))
	}
	if c.MaxConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("max_concurrency: must be positive, got %d", c.MaxConcurrency))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

func validateBaseURL(raw string) error {
	if raw == "" {
		return errors.New("must be set")
	}
	u, err := address.ParseURL(raw, "https")
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s is not an http(s) URL", address.Quote(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("%s has no host", address.Quote(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s must be a base URL without query or fragment", address.Quote(raw))
	}
	return nil
}

// String describes c with the API key redacted, so that printing a Config
// with %v or %+v cannot leak it.
func (c Config) String() string {
	return fmt.Sprintf("{api_key:%s api_hostname:%s flush_max_per_body:%d api_version:%s compression:%s max_concurrency:%d timeout:%s}",
		redact(c.APIKey), address.Redact(c.APIHostname), c.FlushMaxPerBody, c.APIVersion, c.Compression, c.MaxConcurrency, c.Timeout)
}

// GoString keeps %#v from printing the API key too.
func (c Config) GoString() string { return "datadog.Config" + c.String() }

// LogValue makes slog print c with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_key", redact(c.APIKey)),
		slog.String("api_hostname", address.Redact(c.APIHostname)),
		slog.Int("flush_max_per_body", c.FlushMaxPerBody),
		slog.String("api_version", c.APIVersion),
		slog.String("compression", c.Compression),
		slog.Int("max_concurrency", c.MaxConcurrency),
		slog.Duration("timeout", c.Timeout),
	)
}

func redact(key string) string {
	if key == "" {
		return ""
	}
	return "<redacted>"
}
