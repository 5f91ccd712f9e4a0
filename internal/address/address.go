// Package address is how veneur-lite checks and quotes the addresses it is
// configured with: a host:port whose port is in range, a URL that needs a
// scheme, and any URL's secrets (userinfo and query) redacted before it is
// quoted in an error or a log line. Every key that takes an address goes
// through it, so that each says the same thing about the same mistake.
package address

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// redacted replaces a secret in a quoted URL.
const redacted = "xxxxx"

// Redact returns raw with its userinfo and the values of its query
// replaced by xxxxx: "http://user:pw@h:1/p?token=t" reads
// "http://xxxxx@h:1/p?token=xxxxx". It works on text, so that what
// url.Parse rejects is redacted too; anything else is kept as written.
func Redact(raw string) string {
	rest, fragment, hasFragment := strings.Cut(raw, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	scheme, afterScheme, hasScheme := strings.Cut(rest, "://")
	if !hasScheme {
		scheme, afterScheme = "", rest
	}
	authority, path, hasPath := strings.Cut(afterScheme, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = redacted + authority[at:]
	}
	var b strings.Builder
	if hasScheme {
		b.WriteString(scheme + "://")
	}
	b.WriteString(authority)
	if hasPath {
		b.WriteString("/" + path)
	}
	if hasQuery {
		b.WriteByte('?')
		for i, param := range strings.Split(query, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			if key, _, ok := strings.Cut(param, "="); ok {
				b.WriteString(key + "=" + redacted)
			} else if param != "" {
				b.WriteString(redacted)
			}
		}
	}
	if hasFragment {
		b.WriteString("#" + fragment)
	}
	return b.String()
}

// Quote is Redact's result quoted for an error message.
func Quote(raw string) string { return strconv.Quote(Redact(raw)) }

// CheckPort reports whether port, as written in an address, is a port
// number: decimal, 0 to 65535. An empty port is not.
func CheckPort(port string) error {
	n, err := strconv.ParseUint(port, 10, 32)
	switch {
	case port == "":
		return errors.New("no port")
	case err != nil:
		return fmt.Errorf("port %q is not a number", port)
	case n > 65535:
		return fmt.Errorf("port %d is out of range (0 to 65535)", n)
	}
	return nil
}

// CheckHostPort checks a host:port address as net.Listen and net.Dial take
// it (the host may be empty: every interface), with the port in range.
func CheckHostPort(hostport string) error {
	if strings.Contains(hostport, "://") {
		return fmt.Errorf("%s is a URL; want host:port, such as 127.0.0.1:8127", Quote(hostport))
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%s is not host:port, such as 127.0.0.1:8127", Quote(hostport))
	}
	if err := CheckPort(port); err != nil {
		return fmt.Errorf("%s: %w", Quote(hostport), err)
	}
	return nil
}

// ParseURL parses raw, which must start with a scheme: without one, the
// error shows it written with defaultScheme ("needs a scheme:
// udp://127.0.0.1:8125") rather than url.Parse's reason. A port, when
// given, must be in range. Errors quote raw redacted.
func ParseURL(raw, defaultScheme string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("%s needs a scheme: %s", Quote(raw), Redact(defaultScheme+"://"+raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes raw as written, secrets included: keep only
		// the reason.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s is not a valid URL: %w", Quote(raw), err)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if err := CheckPort(port); err != nil {
			return nil, fmt.Errorf("%s: %w", Quote(raw), err)
		}
	}
	return u, nil
}

// RedactError redacts, in place, the URL that a *url.Error in err's chain
// quotes (http.Client.Do's errors are one), and returns err. Call it
// before wrapping err: a wrapper's text is fixed when it is made.
func RedactError(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		ue.URL = Redact(ue.URL)
	}
	return err
}
