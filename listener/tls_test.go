package listener

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// TestTCPMutualTLS: a tcp:// listener with an authority certificate takes
// lines only from clients whose certificate it signed. A client without
// one and a client of another CA are refused at the handshake, counted,
// and nothing they wrote is aggregated.
func TestTCPMutualTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "fleet"), tlstest.NewCA(t, "other")
	srvPair := ca.Server("statsd")
	srv, err := tlsconfig.NewReloader(tlsconfig.Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "tcp", "127.0.0.1:0", Options{Pusher: p, Stats: reg, TLS: srv.ServerConfig(tlsconfig.RequireClientCert)})

	send := func(name string, pair *tlstest.Pair) error {
		files := tlsconfig.Files{CA: ca.CertFile}
		if pair != nil {
			files.Cert, files.Key = pair.CertFile, pair.KeyFile
		}
		cr, err := tlsconfig.NewReloader(files, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", l.Addr(), cr.ClientConfig("127.0.0.1"))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, name+":1|c\n"); err != nil {
			return err
		}
		// Half-close and wait for the server to close: a refused client
		// certificate shows up here under TLS 1.3.
		if err := c.CloseWrite(); err != nil {
			return err
		}
		_, err = io.ReadAll(c)
		return err
	}
	good := ca.Client("app")
	if err := send("good", &good); err != nil {
		t.Fatalf("right certificate: %v", err)
	}
	if err := send("nocert", nil); err == nil {
		t.Error("no client certificate: the connection went through")
	}
	stranger := other.Client("stranger")
	if err := send("stranger", &stranger); err == nil {
		t.Error("a certificate of another CA: the connection went through")
	}
	failed := reg.Counter("listener.tls_handshake_errors", "protocol:tcp")
	await.Until(t, 5*time.Second, func() (bool, string) {
		return p.sum("good") == 1 && failed.Load() == 2, ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.sum("nocert") != 0 || p.sum("stranger") != 0 {
		t.Errorf("refused clients' lines were aggregated: %v", p.sums)
	}
}
