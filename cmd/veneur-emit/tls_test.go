package main

import (
	"crypto/tls"
	"testing"

	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// An mTLS server (a crypto/tls listener that requires a client certificate
// signed by its CA) gets the line from a client with the right certificate,
// and a client without one, or with one from another CA, fails with a clear
// error and exit 1.
func TestTLSClientCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "veneur test CA")
	server := ca.Server("statsd", "statsd.test")
	client := ca.Client("cron")
	stranger := tlstest.NewCA(t, "another CA").Client("stranger")

	pair, err := tls.LoadX509KeyPair(server.CertFile, server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := newTCPSink(t, ln)

	caFile, certFile, keyFile := ca.CertFile, client.CertFile, client.KeyFile
	base := []string{"-hostport", sink.url, "-tls_ca_file", caFile, "-name", "backup.runs", "-count", "1", "-tag", "via:tls"}

	code, _, stderr := emit(t, append(base, "-tls_cert_file", certFile, "-tls_key_file", keyFile)...)
	if code != 0 {
		t.Fatalf("right client certificate: exit %d: %s", code, stderr)
	}
	if got, want := sink.recv(t), "backup.runs:1|c|#via:tls\n"; got != want {
		t.Errorf("server read %q, want %q", got, want)
	}

	// The server's name may differ from the address dialled.
	code, _, stderr = emit(t, append(base, "-tls_cert_file", certFile, "-tls_key_file", keyFile, "-tls_server_name", "statsd.test")...)
	if code != 0 {
		t.Fatalf("-tls_server_name: exit %d: %s", code, stderr)
	}
	sink.recv(t)

	code, _, stderr = emit(t, base...)
	if code != 1 {
		t.Errorf("no client certificate: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "veneur-emit: send to "+sink.url+": the server refused the connection (is the client certificate right?)")
	mustContain(t, "stderr", stderr, "certificate required")
	if got := sink.recv(t); got[:len("read error")] != "read error" {
		t.Errorf("server read %q from a client without a certificate", got)
	}

	code, _, stderr = emit(t, append(base,
		"-tls_cert_file", stranger.CertFile, "-tls_key_file", stranger.KeyFile)...)
	if code != 1 {
		t.Errorf("client certificate of another CA: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "the server refused the connection")
	sink.recv(t)

	// The client checks the server too: without the CA, or for another
	// name, the handshake fails before anything is sent.
	code, _, stderr = emit(t, "-hostport", sink.url, "-tls_cert_file", certFile, "-tls_key_file", keyFile, "-name", "x", "-count", "1")
	if code != 1 {
		t.Errorf("unknown server CA: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "certificate signed by unknown authority")
	sink.recv(t)
	code, _, stderr = emit(t, append(base, "-tls_cert_file", certFile, "-tls_key_file", keyFile, "-tls_server_name", "elsewhere.test")...)
	if code != 1 {
		t.Errorf("wrong server name: exit %d, want 1", code)
	}
	mustContain(t, "stderr", stderr, "elsewhere.test")
	sink.recv(t)
}
