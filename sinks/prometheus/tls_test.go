package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// pki is a throwaway CA that signs a server and a client certificate,
// written as PEM files for the sink's tls keys.
type pki struct {
	pool                  *x509.CertPool
	server                tls.Certificate
	caFile                string
	clientCert, clientKey string
}

func newPKI(t *testing.T, serverName string) pki {
	t.Helper()
	ca := tlstest.NewCA(t, "veneur-lite test CA")
	// The server's certificate names serverName only, not 127.0.0.1,
	// so that reaching it by address needs server_name.
	srv := ca.ServerOnly("receiver", serverName)
	server, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	client := ca.Client("veneur-lite-client")
	return pki{pool: ca.Pool(), server: server, caFile: ca.CertFile, clientCert: client.CertFile, clientKey: client.KeyFile}
}

// A receiver behind mutual TLS: the sink verifies it with ca_file and
// server_name and presents its client certificate; without any one of
// them nothing is delivered, and the failure is not retried, since the
// same handshake would fail again.
func TestMutualTLS(t *testing.T) {
	const serverName = "receiver.test"
	p := newPKI(t, serverName)
	rc := makeReceiver(t)
	srv := httptest.NewUnstartedServer(rc)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	}
	// The refused handshakes below are expected: keep them out of the
	// test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server at %s", srv.URL)
	}
	url := srv.URL + "/api/v1/write"
	full := TLSConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: serverName}

	s := newTestSink(t, url, func(c *Config) { c.TLS = &full })
	if err := flush(t, s, gauges(4, "tls")); err != nil {
		t.Fatal(err)
	}
	rc.checkExactlyOnce(t, wantGauges(4, "tls"))

	for name, tc := range map[string]struct {
		mod  func(*TLSConfig)
		want string
	}{
		"no client certificate": {func(c *TLSConfig) { c.CertFile, c.KeyFile = "", "" }, "certificate required"},
		"no ca_file":            {func(c *TLSConfig) { c.CAFile = "" }, "certificate signed by unknown authority"},
		"no server_name":        {func(c *TLSConfig) { c.ServerName = "" }, "127.0.0.1"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := full
			tc.mod(&cfg)
			s := newTestSink(t, url, func(c *Config) { c.TLS = &cfg })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := s.Flush(ctx, gauges(2, "refused"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
			// Not retried: well before the deadline.
			if s.counter("sink.retries") != 0 || s.counter("sink.errors", "cause:tls") != 1 || time.Since(start) > 5*time.Second {
				t.Errorf("retries %d, tls errors %d, after %v", s.counter("sink.retries"), s.counter("sink.errors", "cause:tls"), time.Since(start))
			}
			if !strings.Contains(s.logs.String(), "TLS") {
				t.Errorf("TLS failure not logged:\n%s", s.logs)
			}
		})
	}
	rc.checkExactlyOnce(t, wantGauges(4, "tls")) // nothing more arrived
}

func TestTLSFilesCheckedAtStart(t *testing.T) {
	p := newPKI(t, "x")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tls  TLSConfig
		want string
	}{
		{TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}, "tls: read authority certificate"},
		{TLSConfig{CAFile: notPEM}, "no PEM certificate"},
		{TLSConfig{CertFile: p.clientCert, KeyFile: p.caFile}, "tls: load certificate"},
	} {
		cfg := Config{URL: "https://127.0.0.1:1/api/v1/write", TLS: &tc.tls}
		cfg.SetDefaults()
		if _, err := New("prom", cfg, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.tls, err, tc.want)
		}
	}
}
