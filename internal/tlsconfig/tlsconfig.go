// Package tlsconfig builds the TLS configurations of veneur-lite's servers
// (the tcp:// statsd listener and http_address) and clients (the forwarder,
// the Prometheus remote-write sink) from certificate files, and rereads
// the files when they change, so that certificates rotate without a
// restart: a new connection sees the files as they are now.
//
// Files are checked for changes at most every checkEvery, when a handshake
// needs them, and at once on Reload (SIGHUP). A change that does not load
// (a half-written file, a key that does not match) keeps the last good
// certificates in use and is reported through the error callback.
package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// checkEvery bounds how often a busy server stats its certificate files.
const checkEvery = time.Second

// Files names the PEM files of one side of a connection.
type Files struct {
	// Cert and Key are this side's certificate chain and private key;
	// both or neither. A server needs them; a client presents them for
	// mTLS.
	Cert, Key string
	// CA is the authority that signs the other side: a server with one
	// requires and verifies client certificates (mTLS); a client verifies
	// the server with it instead of the system roots.
	CA string
}

// Validate checks that the files are named consistently and load.
func (f Files) Validate() error {
	if (f.Cert == "") != (f.Key == "") {
		return errors.New("certificate and key go together")
	}
	_, err := f.load()
	return err
}

// loaded is one reading of the files.
type loaded struct {
	cert *tls.Certificate // nil without Cert
	pool *x509.CertPool   // nil without CA
}

func (f Files) load() (loaded, error) {
	var l loaded
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return l, fmt.Errorf("load certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		l.cert = &cert
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return l, fmt.Errorf("read authority certificate: %w", err)
		}
		l.pool = x509.NewCertPool()
		if !l.pool.AppendCertsFromPEM(pem) {
			return l, fmt.Errorf("authority certificate %s: no PEM certificate in it", f.CA)
		}
	}
	return l, nil
}

// stamp is what tells that a file changed.
type stamp struct {
	mod  time.Time
	size int64
}

func (f Files) stamps() [3]stamp {
	var s [3]stamp
	for i, name := range [3]string{f.Cert, f.Key, f.CA} {
		if name == "" {
			continue
		}
		if fi, err := os.Stat(name); err == nil {
			s[i] = stamp{fi.ModTime(), fi.Size()}
		}
	}
	return s
}

// Reloader holds the current reading of some Files.
type Reloader struct {
	files   Files
	onError func(error)
	now     func() time.Time

	mu      sync.Mutex
	cur     loaded
	stamps  [3]stamp
	checked time.Time
}

// NewReloader loads files; onError (may be nil) hears of later changes
// that fail to load.
func NewReloader(files Files, onError func(error)) (*Reloader, error) {
	if (files.Cert == "") != (files.Key == "") {
		return nil, errors.New("certificate and key go together")
	}
	cur, err := files.load()
	if err != nil {
		return nil, err
	}
	if onError == nil {
		onError = func(error) {}
	}
	return &Reloader{files: files, onError: onError, now: time.Now, cur: cur, stamps: files.stamps(), checked: time.Now()}, nil
}

// Reload rereads the files now, keeping the current ones if they fail.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	r.stamps = r.files.stamps()
	r.checked = r.now()
	next, err := r.files.load()
	if err != nil {
		return fmt.Errorf("reload TLS files (keeping the current ones): %w", err)
	}
	r.cur = next
	return nil
}

// current returns the files' latest good reading, rereading them if they
// changed since the last check.
func (r *Reloader) current() loaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= checkEvery {
		r.checked = now
		if s := r.files.stamps(); s != r.stamps {
			if err := r.reloadLocked(); err != nil {
				r.onError(err)
			}
		}
	}
	return r.cur
}

// ClientCerts is what a server with a CA asks of its clients.
type ClientCerts uint8

const (
	// RequireClientCert refuses a client without a certificate the CA
	// signed (the statsd TCP listener: mTLS).
	RequireClientCert ClientCerts = iota
	// VerifyClientCertIfGiven verifies a certificate a client presents
	// and lets one without through, for the handler to decide (the HTTP
	// server: health checks come without one, imports must bring one or
	// the token).
	VerifyClientCertIfGiven
)

// ServerConfig returns a server configuration: the Reloader's certificate,
// and when it has a CA, client certificates verified against it as certs
// says. Each handshake takes the files' current reading.
func (r *Reloader) ServerConfig(certs ClientCerts) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur := r.current()
		c := &tls.Config{MinVersion: tls.VersionTLS12}
		if cur.cert != nil {
			c.Certificates = []tls.Certificate{*cur.cert}
		}
		if cur.pool != nil {
			c.ClientCAs = cur.pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if certs == VerifyClientCertIfGiven {
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
		return c, nil
	}
	return base
}

// DialTLS returns a dial function for http.Transport.DialTLSContext that
// makes TLS connections with ClientConfig, verifying the server under
// serverName or, when that is empty, under the host dialled. A transport
// needs it: the name a handshake carries (SNI) is never an IP address, so
// a configuration shared by every connection cannot tell which address a
// certificate must be checked against; the dialer knows. dial makes the
// TCP connection; nil means a net.Dialer's.
func (r *Reloader) DialTLS(serverName string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		name := serverName
		if name == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("tls: dial %s: %w", addr, err)
			}
			name = host
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(raw, r.ClientConfig(name))
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return conn, nil
	}
}

// ClientConfig returns a client configuration that verifies the server
// against the CA (the system roots without one) under serverName, a DNS
// name or an IP address, and presents the certificate when there is one.
// Each handshake takes the files' current reading. With serverName empty,
// the name the handshake carries is used; dialling an IP address, there
// is none, and the handshake fails rather than accept any certificate the
// CA signed: give the address as serverName, or use DialTLS.
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert := r.current().cert; cert != nil {
			return cert, nil
		}
		return &tls.Certificate{}, nil // none: the server decides
	}
	if r.files.CA == "" {
		return c
	}
	// The CA can rotate too, so the server is verified here against the
	// current pool, as the standard verification would against RootCAs.
	c.InsecureSkipVerify = true //nolint:gosec // verified below, against the current CA
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server presented no certificate")
		}
		name := serverName
		if name == "" {
			name = cs.ServerName
		}
		if name == "" {
			return errors.New("tls: no server name to verify the certificate against (an IP address is not sent in the handshake)")
		}
		opts := x509.VerifyOptions{
			Roots:         r.current().pool,
			DNSName:       name, // an IP address is checked against the IP SANs
			Intermediates: x509.NewCertPool(),
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("tls: verify the server's certificate: %w", err)
		}
		return nil
	}
	return c
}
