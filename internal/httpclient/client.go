package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
)

// DialFunc makes a connection, as http.Transport.DialTLSContext does.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// NewClient returns the client every outgoing HTTP path of the daemon uses.
// It keeps an idle connection for each of maxInFlight requests to a host,
// so that the next interval reuses them; it never follows a redirect (one
// would carry credentials wherever it points and turn a POST into a GET),
// so a 3xx comes back as the answer; and it makes TLS connections with
// dialTLS (tlsconfig.Reloader.DialTLS: rotated certificates, verification
// under the dialled address), or Go's dialer and the system roots when nil.
func NewClient(maxInFlight int, dialTLS DialFunc) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxInFlight
	if dialTLS != nil {
		tr.DialTLSContext = dialTLS
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Cause names why an attempt failed: the value of the cause tag of
// veneur.sink.errors and veneur.forward.errors. A path may add its own
// (forward's dial and conflict, the Prometheus sink's duplicate).
type Cause string

// The causes every HTTP client path shares.
const (
	CauseTimeout   Cause = "timeout"    // the attempt or the flush ran out of time
	CauseNetwork   Cause = "network"    // the connection failed otherwise (refused, reset, EOF)
	CauseTLS       Cause = "tls"        // a certificate did not verify, on either side
	CauseHTTP4xx   Cause = "http_4xx"   // the server refused the request
	CauseHTTP5xx   Cause = "http_5xx"   // the server failed
	CauseHTTPOther Cause = "http_other" // 1xx/3xx: redirects are not followed, see NewClient
	CauseEncode    Cause = "encode"     // the body could not be built
)

// ErrorCause names the cause of a round trip that got no answer.
func ErrorCause(err error) Cause {
	switch {
	case IsTLSFailure(err):
		return CauseTLS
	case IsTimeout(err):
		return CauseTimeout
	}
	return CauseNetwork
}

// StatusCause names the cause of an answer other than 2xx.
func StatusCause(code int) Cause {
	switch {
	case code >= 500:
		return CauseHTTP5xx
	case code >= 400:
		return CauseHTTP4xx
	}
	return CauseHTTPOther
}

// IsTLSFailure reports whether err is a TLS verification failure on either
// side: ours of the server's certificate, or the server's alert about ours
// (crypto/tls reports an alert from the peer as a *net.OpError with Op
// "remote error"; its alert type is not exported). The same handshake
// fails the same way next time: it is a configuration problem, not an
// outage.
func IsTLSFailure(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var op *net.OpError
	return errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || (errors.As(err, &op) && op.Op == "remote error")
}
