package top

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
)

// maxBody bounds an answer: 10,000 names (the endpoint's limit) with
// five tag keys each take a few MiB.
const maxBody = 32 << 20

// ParseAddr turns -addr into the instance's base URL: host:port (an
// empty host is 127.0.0.1) means http://host:port; a URL may be http or
// https and may carry a path prefix (a reverse proxy's).
func ParseAddr(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			return nil, fmt.Errorf("address %q: want host:port (the instance's http_address) or an http(s):// URL", addr)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("address %q: want http:// or https://", addr)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("address %q: want scheme://host:port[/prefix], without credentials, query or fragment", addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Display is how the header names the instance: host:port for plain
// http, the whole URL otherwise.
func Display(base *url.URL) string {
	if base.Scheme == "http" && base.Path == "" {
		return base.Host
	}
	return base.String()
}

// TLS is the client side of an https -addr: the same files as the
// config's tls: block.
type TLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

func (t TLS) isZero() bool { return t == TLS{} }

// Client reads GET /debug/series from one instance.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// NewClient returns a client of base whose requests give up after
// timeout. TLS settings need an https base. It is the daemon's client
// (httpclient.NewClient: no redirects followed, the reloading TLS dial)
// without a proxy: the endpoint answers clients on its own host unless
// enable_profiling opens it, and a proxy from the environment would turn
// a client on that host into a remote one.
func NewClient(base *url.URL, t TLS, timeout time.Duration) (*Client, error) {
	var dialTLS httpclient.DialFunc
	if base.Scheme == "https" {
		r, err := tlsconfig.NewReloader(tlsconfig.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile}, nil)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		dialTLS = r.DialTLS(t.ServerName, nil)
	} else if !t.isZero() {
		return nil, fmt.Errorf("address %s is not https://, but TLS files are given", base)
	}
	hc := httpclient.NewClient(1, dialTLS)
	hc.Transport.(*http.Transport).Proxy = nil
	// The timeout bounds the whole request, dial and handshake included.
	hc.Timeout = timeout
	return &Client{base: base, hc: hc}, nil
}

// StatusError is an answer other than 200 OK.
type StatusError struct {
	URL  string
	Code int
	Body string // the answer's first line
}

func (e *StatusError) Error() string {
	switch e.Code {
	case http.StatusForbidden:
		return fmt.Sprintf("%s refused /debug/series (403): it answers clients on its own host only, and this one is not on it; run veneur-lite top on that host (against any of its addresses), or set enable_profiling: true in its config", e.URL)
	case http.StatusNotFound:
		return fmt.Sprintf("%s has no /debug/series (404): enable_profiling is false there, or it is not a veneur-lite that serves it", e.URL)
	}
	msg := fmt.Sprintf("%s answered %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Fetch reads the top n names by order. It returns the answer's body as
// well, for -json.
func (c *Client) Fetch(ctx context.Context, n int, order string) (aggregate.SeriesStats, []byte, error) {
	u := c.base.JoinPath("/debug/series")
	u.RawQuery = url.Values{"n": {strconv.Itoa(n)}, "sort": {order}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return aggregate.SeriesStats{}, nil, fmt.Errorf("request %s: %w", u, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // the URL is said below, once
		}
		return aggregate.SeriesStats{}, nil, fmt.Errorf("%s unreachable: %w", Display(c.base), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return aggregate.SeriesStats{}, nil, fmt.Errorf("read /debug/series from %s: %w", Display(c.base), err)
	}
	if resp.StatusCode != http.StatusOK {
		return aggregate.SeriesStats{}, nil, &StatusError{URL: Display(c.base), Code: resp.StatusCode, Body: Fit(oneLine(string(body)), 200)}
	}
	if len(body) > maxBody {
		return aggregate.SeriesStats{}, nil, fmt.Errorf("/debug/series from %s: answer longer than %d bytes", Display(c.base), maxBody)
	}
	var st aggregate.SeriesStats
	if err := json.Unmarshal(body, &st); err != nil {
		return aggregate.SeriesStats{}, nil, fmt.Errorf("decode /debug/series from %s: %w", Display(c.base), err)
	}
	return st, body, nil
}
