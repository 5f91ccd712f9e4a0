package tlsconfig

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// serve accepts TLS connections with cfg and answers each with the
// common name of the client's certificate ("-" for none).
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				name := "-"
				if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
					name = peers[0].Subject.CommonName
				}
				_, _ = io.WriteString(c, name)
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects with cfg and returns what the server answered, and the
// common name of the server's certificate.
func dial(addr string, cfg *tls.Config) (answer, server string, err error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", "", err
	}
	return string(b), c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// TestMutualTLS: a server with an authority certificate accepts a client
// certificate it signed and refuses none, or one from another CA; the
// client verifies the server against its CA.
func TestMutualTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "fleet"), tlstest.NewCA(t, "other")
	srvPair := ca.Server("global")
	srv, err := NewReloader(Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv.ServerConfig(RequireClientCert))

	client := func(pair *tlstest.Pair, caFile string) *tls.Config {
		f := Files{CA: caFile}
		if pair != nil {
			f.Cert, f.Key = pair.CertFile, pair.KeyFile
		}
		r, err := NewReloader(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.ClientConfig("127.0.0.1")
	}
	good := ca.Client("local-1")
	if answer, _, err := dial(addr, client(&good, ca.CertFile)); err != nil || answer != "local-1" {
		t.Errorf("right certificate: answer %q, %v; want local-1", answer, err)
	}
	if _, _, err := dial(addr, client(nil, ca.CertFile)); err == nil {
		t.Error("no client certificate: accepted")
	}
	stranger := other.Client("stranger")
	if _, _, err := dial(addr, client(&stranger, ca.CertFile)); err == nil {
		t.Error("a certificate from another CA: accepted")
	}
	// The client refuses a server its CA did not sign.
	if _, _, err := dial(addr, client(&good, other.CertFile)); err == nil {
		t.Error("a server from another CA: trusted")
	}
}

// TestRotation: once the files are replaced, new connections see the new
// certificate, after the change is noticed or on Reload; a change that
// does not load keeps the last good certificate and is reported.
func TestRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	live := ca.Server("first")
	srv, err := NewReloader(Files{Cert: live.CertFile, Key: live.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	srv.now = func() time.Time { return time.Unix(0, clock.Load()) }
	var reported atomic.Value
	srv.onError = func(err error) { reported.Store(err) }
	addr := serve(t, srv.ServerConfig(RequireClientCert))
	cr, err := NewReloader(Files{CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverName := func() string {
		t.Helper()
		_, name, err := dial(addr, cr.ClientConfig("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
	if got := serverName(); got != "first" {
		t.Fatalf("server %q, want first", got)
	}
	tlstest.Install(t, ca.Server("second"), live)
	clock.Add(int64(checkEvery)) // the next handshake checks the files
	if got := serverName(); got != "second" {
		t.Errorf("after the files changed: server %q, want second", got)
	}
	tlstest.Install(t, ca.Server("third"), live)
	if err := srv.Reload(); err != nil { // SIGHUP: at once
		t.Fatal(err)
	}
	if got := serverName(); got != "third" {
		t.Errorf("after Reload: server %q, want third", got)
	}

	// A key that does not match its certificate: kept the old pair.
	broken := ca.Server("broken")
	tlstest.Install(t, tlstest.Pair{CertFile: broken.CertFile, KeyFile: ca.Server("unrelated").KeyFile}, live)
	clock.Add(int64(checkEvery))
	if got := serverName(); got != "third" {
		t.Errorf("after a broken rotation: server %q, want third kept", got)
	}
	if err, _ := reported.Load().(error); err == nil {
		t.Error("the broken rotation was not reported")
	}
	if err := srv.Reload(); err == nil {
		t.Errorf("Reload of a broken pair: %v, want an error", err)
	}
}

func TestFilesValidate(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	pair := ca.Server("s")
	for _, tc := range []struct {
		name  string
		files Files
		ok    bool
	}{
		{"server", Files{Cert: pair.CertFile, Key: pair.KeyFile}, true},
		{"mtls", Files{Cert: pair.CertFile, Key: pair.KeyFile, CA: ca.CertFile}, true},
		{"cert without key", Files{Cert: pair.CertFile}, false},
		{"missing file", Files{Cert: pair.CertFile, Key: "/nonexistent/key.pem"}, false},
		{"not a CA file", Files{CA: pair.KeyFile}, false},
	} {
		if err := tc.files.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// BenchmarkHandshake is the TLS cost of one new connection with mutual
// authentication (ECDSA P-256 certificates, TLS 1.3), both sides in this
// process over loopback: what each new forwarder or statsd TCP connection
// pays once.
//
//	go test ./internal/tlsconfig -run '^$' -bench Handshake -count 3
func BenchmarkHandshake(b *testing.B) {
	ca := tlstest.NewCA(b, "fleet")
	srvPair, cliPair := ca.Server("server"), ca.Client("client")
	srv, err := NewReloader(Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := NewReloader(Files{Cert: cliPair.CertFile, Key: cliPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig(RequireClientCert))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	cfg := cli.ClientConfig("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// TestDialTLSVerifiesTheAddress: a handshake never carries an IP address,
// so a client dialling one must check the certificate against the address
// itself. DialTLS does, ClientConfig without a name refuses rather than
// accept any certificate the CA signed, and a server name given is what
// the certificate must hold.
func TestDialTLSVerifiesTheAddress(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	cr, err := NewReloader(Files{CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	server := func(pair tlstest.Pair) string {
		r, err := NewReloader(Files{Cert: pair.CertFile, Key: pair.KeyFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, r.ServerConfig(RequireClientCert))
	}
	dialTLS := func(serverName, addr string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c, err := cr.DialTLS(serverName, nil)(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}

	elsewhere := server(ca.ServerOnly("elsewhere", "elsewhere.example"))
	if err := dialTLS("", elsewhere); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a certificate for another name at 127.0.0.1: %v, want refused for 127.0.0.1", err)
	}
	if _, _, err := dial(elsewhere, cr.ClientConfig("")); err == nil || !strings.Contains(err.Error(), "no server name") {
		t.Errorf("ClientConfig without a name, dialling an address: %v, want refused", err)
	}
	if err := dialTLS("elsewhere.example", elsewhere); err != nil {
		t.Errorf("with the server name it holds: %v", err)
	}
	if err := dialTLS("", server(ca.Server("global"))); err != nil {
		t.Errorf("a certificate for 127.0.0.1: %v", err)
	}
}
