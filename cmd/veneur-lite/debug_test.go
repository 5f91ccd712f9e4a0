package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/internal/await"
)

// TestDebugSeriesMatchesWhatWasSent: /debug/series on a running daemon
// counts the series and samples sent over UDP, per metric name, and the
// tag key that multiplies a name's series.
func TestDebugSeriesMatchesWhatWasSent(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	conn, err := net.Dial("udp", td.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 200 {
		if _, err := fmt.Fprintf(conn, "api.requests:1|c|#env:prod,user:%d\napi.latency:%d|ms|#env:prod\n", i%120, i); err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + td.http.Addr() + "/debug/series?n=5&sort=series"
	var st aggregate.SeriesStats
	await.Until(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		st = aggregate.SeriesStats{}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, err.Error()
		}
		return st.Samples == 400, fmt.Sprintf("%+v", st)
	})
	if st.LiveSeries != 121 || len(st.Names) != 2 {
		t.Fatalf("live series %d, names %+v; want 121 over 2 names", st.LiveSeries, st.Names)
	}
	req, lat := st.Names[0], st.Names[1]
	if req.Name != "api.requests" || req.Series != 120 || req.Samples != 200 || lat.Name != "api.latency" || lat.Series != 1 || lat.Samples != 200 {
		t.Errorf("names %+v", st.Names)
	}
	if len(req.TopTagKeys) == 0 || req.TopTagKeys[0] != (aggregate.TagKeyStats{Key: "user", Values: 120}) {
		t.Errorf("api.requests tag keys %+v, want user with 120 values first", req.TopTagKeys)
	}
	resp, err := http.Get("http://" + td.http.Addr() + "/debug/series?sort=nonsense")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad sort: status %d, want 400", resp.StatusCode)
	}
}

// TestDebugAccess: left out, enable_profiling opens /debug/ to clients on
// this host only; true opens it to all, false to none. Other endpoints
// are not affected.
func TestDebugAccess(t *testing.T) {
	stats := func(time.Time, int, string) aggregate.SeriesStats { return aggregate.SeriesStats{} }
	for _, tc := range []struct {
		access       config.Access
		remote       string
		pprof, serie int
	}{
		{config.AccessLoopback, "127.0.0.1:5555", http.StatusOK, http.StatusOK},
		{config.AccessLoopback, "[::1]:5555", http.StatusOK, http.StatusOK},
		{config.AccessLoopback, "10.1.2.3:5555", http.StatusForbidden, http.StatusForbidden},
		{config.AccessEveryone, "10.1.2.3:5555", http.StatusOK, http.StatusOK},
		{config.AccessNone, "127.0.0.1:5555", http.StatusNotFound, http.StatusNotFound},
	} {
		h, err := newHTTPServer("127.0.0.1:0", nil, slog.New(slog.DiscardHandler), httpOptions{Debug: tc.access, Stats: stats})
		if err != nil {
			t.Fatal(err)
		}
		h.ln.Close()
		get := func(path string) int {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			h.srv.Handler.ServeHTTP(w, r)
			return w.Code
		}
		if got := get("/debug/pprof/"); got != tc.pprof {
			t.Errorf("access %v from %s: /debug/pprof/ %d, want %d", tc.access, tc.remote, got, tc.pprof)
		}
		if got := get("/debug/series"); got != tc.serie {
			t.Errorf("access %v from %s: /debug/series %d, want %d", tc.access, tc.remote, got, tc.serie)
		}
		if got := get("/healthcheck"); got != http.StatusOK {
			t.Errorf("access %v: /healthcheck %d", tc.access, got)
		}
	}
}
