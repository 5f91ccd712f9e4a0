package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
	"github.com/veneur-lite/veneur-lite/metric"
)

// A global whose certificate does not name the address dialled: the
// failure is counted as cause tls (a configuration problem), not network
// (an unreachable global), and the series are held, as for any failure
// before the request left. Verifying under the name the certificate does
// carry, the same global takes them.
func TestTLSVerificationFailureCountedAsTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "veneur-lite test CA")
	g := newFakeGlobal(t)
	srv := tlstest.Serve(t, ca.ServerOnly("global", "global.test"), g) // not for 127.0.0.1
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server at %s", srv.URL)
	}
	trust, err := tlsconfig.NewReloader(tlsconfig.Files{CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}

	f, _ := newTestForwarder(t, []string{srv.URL}, func(c *Config) { c.DialTLS = trust.DialTLS("", nil) })
	forwardWithin(t, f, time.Second, interval(0), []metric.Series{counterSeries("hits", 1), gaugeSeries("temp", 2)})
	if n := f.m.errors[causeTLS].Load(); n == 0 {
		t.Errorf("tls errors %d, want the failed handshakes counted", n)
	}
	if n, d := f.m.errors[causeNetwork].Load(), f.m.errors[causeDial].Load(); n != 0 || d != 0 {
		t.Errorf("network errors %d, dial errors %d: a certificate failure counted as an unreachable global", n, d)
	}
	if s, a := heldCounts(f); s != 2 || a != 0 {
		t.Errorf("held %d series, %d ambiguous; want both series held, unsent", s, a)
	}

	named, _ := newTestForwarder(t, []string{srv.URL}, func(c *Config) { c.DialTLS = trust.DialTLS("global.test", nil) })
	forwardWithin(t, named, 5*time.Second, interval(0), []metric.Series{counterSeries("hits", 1)})
	if n := named.m.errors[causeTLS].Load(); n != 0 {
		t.Errorf("tls errors %d verifying under the certificate's name", n)
	}
	g.snapshot(func(g *fakeGlobal) {
		if v := g.counters["counter|hits|"]; v != 1 {
			t.Errorf("global merged hits = %v, want 1", v)
		}
	})
}
