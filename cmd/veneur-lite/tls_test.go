package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// TestBinaryForwardOverMutualTLS: a local with the right tls: settings
// forwards to a global that serves HTTPS and requires a client
// certificate, both built binaries; the global flushes the fleet
// percentiles. Then the global's certificate files are replaced in
// place, and new connections see the new certificate, without a restart.
func TestBinaryForwardOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	globalPair, localPair := ca.Server("global-1"), ca.Client("local-1")
	globalHTTP := freePort(t, "tcp")
	global := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: global-1
tls_certificate: %s
tls_key: %s
tls_authority_certificate: %s
`, freePort(t, "udp"), globalHTTP, globalPair.CertFile, globalPair.KeyFile, ca.CertFile))
	global.waitErrLine(t, 10*time.Second, "veneur-lite started")

	localUDP, localHTTP := freePort(t, "udp"), freePort(t, "tcp")
	local := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
interval: 1s
hostname: local-1
forward_address: https://%s
tls: {ca_file: %s, cert_file: %s, key_file: %s}
`, localUDP, localHTTP, globalHTTP, ca.CertFile, localPair.CertFile, localPair.KeyFile))
	waitHealthy(t, localHTTP)
	conn, err := net.Dial("udp", localUDP)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		if _, err := fmt.Fprintf(conn, "tls.latency:%d|ms\n", i); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	local.waitLine(t, "tls.latency.count", 10*time.Second) // aggregated, so forwarded at that flush
	if err := local.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-local.done
	if err := global.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p50 := global.waitLine(t, "tls.latency.50percentile", 15*time.Second)
	if !strings.Contains(p50, " host= ") {
		t.Errorf("fleet percentile %q: want no host", p50)
	}
	for _, l := range local.errLines {
		if strings.Contains(l, "forward incomplete") {
			t.Errorf("the local could not forward: %s", l)
		}
	}
}

// TestBinaryCertificateRotation: replacing the certificate files of a
// running binary's HTTPS address changes the certificate new connections
// see, within a second, and SIGHUP does it at once.
func TestBinaryCertificateRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "fleet")
	live := ca.Server("first")
	httpAddr := freePort(t, "tcp")
	p := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s]
http_address: %s
tls_certificate: %s
tls_key: %s
`, freePort(t, "udp"), httpAddr, live.CertFile, live.KeyFile))
	p.waitErrLine(t, 10*time.Second, "veneur-lite started")
	client, err := tlsconfig.NewReloader(tlsconfig.Files{CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverName := func() (string, error) {
		c, err := tls.Dial("tcp", httpAddr, client.ClientConfig("127.0.0.1"))
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	for _, step := range []struct {
		name   string
		rotate func()
	}{
		{"second", func() { tlstest.Install(t, ca.Server("second"), live) }},
		{"third", func() {
			tlstest.Install(t, ca.Server("third"), live)
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		step.rotate()
		await.Until(t, 10*time.Second, func() (bool, string) {
			name, err := serverName()
			return err == nil && name == step.name, fmt.Sprintf("%q %v", name, err)
		})
	}
	p.waitErrLine(t, 5*time.Second, "SIGHUP received: TLS files reloaded")
}
