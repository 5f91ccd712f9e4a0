package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue returns a certificate and key, in PEM, for a server on 127.0.0.1
// or for a client.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"statsd.test"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An mTLS server (a crypto/tls listener that requires a client certificate
// signed by its CA) gets the line from a client with the right certificate,
// and a client without one, or with one from another CA, fails with a clear
// error and exit 1.
func TestTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "veneur test CA")
	serverCert, serverKey := ca.issue(t, "statsd", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "cron", x509.ExtKeyUsageClientAuth)
	other := newTestCA(t, "another CA")
	strangerCert, strangerKey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := newTCPSink(t, ln)

	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile := writeFile(t, dir, "client.pem", clientCert)
	keyFile := writeFile(t, dir, "client.key", clientKey)
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
		"-tls_cert_file", writeFile(t, dir, "stranger.pem", strangerCert),
		"-tls_key_file", writeFile(t, dir, "stranger.key", strangerKey))...)
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
