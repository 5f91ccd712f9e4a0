package top

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/internal/tlstest"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, want, display, err string
	}{
		{addr: "127.0.0.1:8127", want: "http://127.0.0.1:8127", display: "127.0.0.1:8127"},
		{addr: ":8127", want: "http://127.0.0.1:8127", display: "127.0.0.1:8127"},
		{addr: "[::1]:8127", want: "http://[::1]:8127", display: "[::1]:8127"},
		{addr: "veneur-1:8127", want: "http://veneur-1:8127", display: "veneur-1:8127"},
		{addr: "http://veneur-1:8127/", want: "http://veneur-1:8127", display: "veneur-1:8127"},
		{addr: "https://veneur-1:8127", want: "https://veneur-1:8127", display: "https://veneur-1:8127"},
		{addr: "https://proxy/veneur-1/", want: "https://proxy/veneur-1", display: "https://proxy/veneur-1"},
		{addr: "veneur-1", err: `address "veneur-1": want host:port`},
		{addr: "veneur-1:", err: `address "veneur-1:": want host:port`},
		{addr: "udp://veneur-1:8125", err: "want http:// or https://"},
		{addr: "http://veneur-1:8127/?n=5", err: "without credentials, query or fragment"},
		{addr: "http://user:pw@veneur-1:8127", err: "without credentials, query or fragment"},
		{addr: "http:///path", err: "without credentials, query or fragment"},
	} {
		u, err := ParseAddr(tc.addr)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.addr, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case u.String() != tc.want || Display(u) != tc.display:
			t.Errorf("%q: %s shown as %s, want %s shown as %s", tc.addr, u, Display(u), tc.want, tc.display)
		}
	}
}

func newTestClient(t *testing.T, addr string, tc TLS) *Client {
	t.Helper()
	base, err := ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(base, tc, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFetch: the query carries n and sort, the JSON is decoded, and the
// body is returned as it came.
func TestFetch(t *testing.T) {
	want := snapshot()
	var query url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/debug/series" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.Query()
		_ = json.NewEncoder(w).Encode(want)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/prefix", TLS{})
	st, body, err := c.Fetch(context.Background(), 7, "shed")
	if err != nil {
		t.Fatal(err)
	}
	if query.Get("n") != "7" || query.Get("sort") != "shed" {
		t.Errorf("query %v, want n=7 sort=shed", query)
	}
	if !st.IntervalStart.Equal(want.IntervalStart) || st.TotalNames != 57 || len(st.Names) != 3 ||
		st.Names[0].TopTagKeys[0] != want.Names[0].TopTagKeys[0] || st.ShedSamples["max_series_per_name"] != 4321 {
		t.Errorf("decoded %+v", st)
	}
	var again aggregate.SeriesStats
	if err := json.Unmarshal(body, &again); err != nil || again.LiveSeries != want.LiveSeries {
		t.Errorf("body %q: %v", body, err)
	}
}

// TestFetchErrors: each failure is one line that says what to do.
func TestFetchErrors(t *testing.T) {
	answer := func(code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	for _, tc := range []struct {
		name, addr string
		want       []string
		code       int
	}{
		{"down", closed, []string{closed + " unreachable: dial tcp " + closed + ": connect: connection refused"}, 0},
		{"not loopback", answer(403, "the /debug/ endpoints answer clients on this host only\n"), []string{"refused /debug/series (403)", "and this one is not on it; run veneur-lite top on that host (against any of its addresses), or set enable_profiling: true"}, 403},
		{"profiling off", answer(404, "404 page not found\n"), []string{"has no /debug/series (404): enable_profiling is false there"}, 404},
		{"broken", answer(500, "internal error\nstack…"), []string{"answered 500 Internal Server Error: internal error"}, 500},
		{"not JSON", answer(200, "<html>"), []string{"decode /debug/series from 127.0.0.1:"}, 0},
	} {
		_, _, err := newTestClient(t, tc.addr, TLS{}).Fetch(context.Background(), 20, "series")
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", tc.name, msg, w)
			}
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, "/debug/series?") {
			t.Errorf("%s: %q is not one short line", tc.name, msg)
		}
		if se := (*StatusError)(nil); tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code) {
			t.Errorf("%s: %v is not a StatusError %d", tc.name, err, tc.code)
		}
	}
}

// TestFetchTLS: an https instance is verified against -ca-file, and a
// client certificate is presented when given; TLS files with http:// are
// a mistake, not ignored.
func TestFetchTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "veneur")
	srvPair := ca.Server("veneur-1")
	cliPair := ca.Client("top")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(aggregate.SeriesStats{LiveSeries: 5})
	}))
	cert, err := tls.LoadX509KeyPair(srvPair.CertFile, srvPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()

	st, _, err := newTestClient(t, srv.URL, TLS{CAFile: ca.CertFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}).Fetch(context.Background(), 1, "series")
	if err != nil || st.LiveSeries != 5 {
		t.Errorf("with the CA and a client certificate: %+v %v", st, err)
	}
	if _, _, err := newTestClient(t, srv.URL, TLS{CAFile: ca.CertFile}).Fetch(context.Background(), 1, "series"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without a client certificate: %v, want the server's 403", err)
	}
	if _, _, err := newTestClient(t, srv.URL, TLS{}).Fetch(context.Background(), 1, "series"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("against the system roots: %v, want a certificate error", err)
	}
	base, _ := ParseAddr("127.0.0.1:8127")
	if _, err := NewClient(base, TLS{CAFile: ca.CertFile}, time.Second); err == nil || !strings.Contains(err.Error(), "is not https://") {
		t.Errorf("TLS files with http://: %v", err)
	}
}

// TestFetchNoRedirect: top is the daemon's HTTP client: a redirect is
// reported as the answer, not followed to wherever it points, and no
// proxy from the environment stands between top and the instance.
func TestFetchNoRedirect(t *testing.T) {
	elsewhere := make(chan string, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case elsewhere <- r.URL.Path:
		default:
		}
		_ = json.NewEncoder(w).Encode(aggregate.SeriesStats{LiveSeries: 5})
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/debug/series", http.StatusFound))
	defer srv.Close()

	c := newTestClient(t, srv.URL, TLS{})
	_, _, err := c.Fetch(context.Background(), 1, "series")
	if se := (*StatusError)(nil); !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Errorf("Fetch = %v, want the 302 as a StatusError", err)
	}
	select {
	case path := <-elsewhere:
		t.Errorf("the redirect was followed to %s", path)
	default:
	}
	if tr, ok := c.hc.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Errorf("transport %T uses a proxy from the environment", c.hc.Transport)
	}
}
