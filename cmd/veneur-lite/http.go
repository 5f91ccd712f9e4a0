package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"time"

	"github.com/veneur-lite/veneur-lite/telemetry"
	"github.com/veneur-lite/veneur-lite/telemetry/exposition"
)

// httpServer serves /healthcheck, /version, /metrics, /debug/pprof/ and,
// on a global instance, the import endpoint.
type httpServer struct {
	ln  net.Listener
	srv *http.Server
	mux *http.ServeMux
	log *slog.Logger
}

// newHTTPServer binds addr. /metrics serves reg, the registry whose
// increases are also flushed as veneur.* series.
func newHTTPServer(addr string, reg *telemetry.Registry, log *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, versionString())
	})
	mux.Handle("GET /metrics", exposition.Handler(reg, log))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &httpServer{
		ln:  ln,
		mux: mux,
		log: log,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			// Forwarders reuse their connections every interval; one left
			// idle longer (a client gone quiet) should not hold a descriptor.
			IdleTimeout: 2 * time.Minute,
			ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}, nil
}

func (h *httpServer) Addr() string { return h.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully (bounded).
func (h *httpServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		// A long request (a pprof profile, a slow import) must not turn
		// a clean stop into a failed one: cut it off.
		h.log.Warn("http requests still running at shutdown; closing them", "error", err)
		_ = h.srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += "+" + s.Value
			}
		}
	}
	return "veneur-lite " + v
}
