package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// TestBinaryStartLogNamesSchemeAndTLS: a UDP and a TCP listener on one
// port are told apart in the start log by their scheme, and the TCP one
// says whether it speaks TLS; so does the HTTP address.
func TestBinaryStartLogNamesSchemeAndTLS(t *testing.T) {
	port := freePort(t, "tcp")
	plain := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s, tcp://%s]
http_address: %s
`, port, port, freePort(t, "tcp")))
	plain.waitErrLine(t, 10*time.Second, "veneur-lite started", fmt.Sprintf(`statsd="udp://%s, tcp://%s (no tls)"`, port, port), "http=http://")

	ca := tlstest.NewCA(t, "start-log")
	pair := ca.Server("veneur")
	port = freePort(t, "tcp")
	secure := startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%s, tcp://%s]
http_address: %s
tls_certificate: %s
tls_key: %s
`, port, port, freePort(t, "tcp"), pair.CertFile, pair.KeyFile))
	secure.waitErrLine(t, 10*time.Second, "veneur-lite started", fmt.Sprintf(`statsd="udp://%s, tcp://%s (tls)"`, port, port), "http=https://")
}
