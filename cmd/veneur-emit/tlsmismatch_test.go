package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

// A line sent in plain TCP to a veneur-lite tcp:// listener that requires
// TLS is lost: veneur-emit must exit 1 and say to use -tls, never report
// success. The reverse, -tls against a plain tcp:// listener, must say the
// server does not speak TLS, not just "context deadline exceeded".
func TestTLSMismatchAgainstVeneurLite(t *testing.T) {
	t.Parallel() // mostly go build
	ca := tlstest.NewCA(t, "mismatch CA")
	server := ca.Server("statsd", "localhost")
	tlsAddr, plainAddr, udp := freeAddr(t, "tcp"), freeAddr(t, "tcp"), freeAddr(t, "udp")
	// Over TLS the HTTP address serves HTTPS; the health check uses the
	// plain instance's.
	tlsHTTP, plainHTTP := freeAddr(t, "tcp"), freeAddr(t, "tcp")
	secure := startVeneurLite(t, fmt.Sprintf(
		"statsd_listen_addresses: [tcp://%s]\nhttp_address: %s\ninterval: 1s\nhostname: box\ntls_certificate: %s\ntls_key: %s\n",
		tlsAddr, tlsHTTP, server.CertFile, server.KeyFile))
	plain := startVeneurLite(t, fmt.Sprintf(
		"statsd_listen_addresses: [tcp://%s, udp://%s]\nhttp_address: %s\ninterval: 1s\nhostname: box\n",
		plainAddr, udp, plainHTTP))
	awaitHealthy(t, plainHTTP)
	await.Until(t, 20*time.Second, func() (bool, string) {
		return strings.Contains(secure.stderr.String(), "veneur-lite started"), secure.stderr.String()
	})

	t.Run("plain to TLS", func(t *testing.T) {
		code, _, stderr := emit(t, "-hostport", "tcp://"+tlsAddr, "-name", "lost", "-count", "1")
		if code != exitSendError {
			t.Errorf("plain TCP to a TLS listener: exit %d, want %d (the line was not taken); stderr %q", code, exitSendError, stderr)
		}
		mustContain(t, "stderr", stderr, "the server speaks TLS? use -tls")
		// With -tls the same line is taken.
		code, _, stderr = emit(t, "-hostport", "tcp://localhost:"+tlsAddr[strings.LastIndex(tlsAddr, ":")+1:],
			"-tls_ca_file", ca.CertFile, "-name", "kept", "-count", "1")
		if code != exitOK {
			t.Errorf("-tls to the TLS listener: exit %d: %s", code, stderr)
		}
	})

	t.Run("TLS to plain", func(t *testing.T) {
		code, _, stderr := emit(t, "-hostport", "tcp://"+plainAddr, "-tls_ca_file", ca.CertFile, "-name", "lost", "-count", "1")
		if code != exitSendError {
			t.Errorf("-tls to a plain listener: exit %d, want %d; stderr %q", code, exitSendError, stderr)
		}
		mustContain(t, "stderr", stderr, "does not speak TLS")
		mustContain(t, "stderr", stderr, "leave out -tls")
		if strings.Contains(stderr, "no answer within -timeout") {
			t.Errorf("the plain listener let the handshake wait for -timeout: %q", stderr)
		}
		// The plain listener still takes a plain line.
		if code, _, stderr := emit(t, "-hostport", "tcp://"+plainAddr, "-name", "kept", "-count", "1"); code != exitOK {
			t.Errorf("plain TCP to the plain listener: exit %d: %s", code, stderr)
		}
	})

	secure.stop(t)
	plain.stop(t)
	for _, v := range []*veneurLite{secure, plain} {
		for _, line := range v.output() {
			if strings.HasPrefix(line, "lost") {
				t.Errorf("a line sent with the wrong transport was flushed: %q", line)
			}
		}
	}
	for name, v := range map[string]*veneurLite{"TLS": secure, "plain": plain} {
		if !containsPrefix(v.output(), "kept rate 1 ") {
			t.Errorf("%s instance did not flush the line sent right: %q", name, v.output())
		}
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
