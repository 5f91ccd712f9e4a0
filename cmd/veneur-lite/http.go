package main

import (
	"context"
	"crypto/tls"
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

// httpOptions are the server's optional parts.
type httpOptions struct {
	// TLS, when set, makes the server speak HTTPS with it.
	TLS *tls.Config
	// Profiling serves /debug/pprof/.
	Profiling bool
}

// newHTTPServer binds addr. /metrics serves reg, the registry whose
// increases are also flushed as veneur.* series.
func newHTTPServer(addr string, reg *telemetry.Registry, log *slog.Logger, opts httpOptions) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", addr, err)
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, versionString())
	})
	mux.Handle("GET /metrics", exposition.Handler(reg, log))
	if opts.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	panics := reg.Counter("http.panics")
	return &httpServer{
		ln:  ln,
		mux: mux,
		log: log,
		srv: &http.Server{
			Handler:           recoverPanics(mux, panics, log),
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

// recoverPanics answers 500 for a request whose handler panicked, counts
// and logs it, and lets the server go on: net/http would log it too, but
// not count it, and would cut the connection without an answer.
func recoverPanics(next http.Handler, panics *telemetry.Counter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel net/http panics with on purpose
					panic(p)
				}
				panics.Inc()
				log.Error("http handler panicked", "path", r.URL.Path, "remote", r.RemoteAddr,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
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
