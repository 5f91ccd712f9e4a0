package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/config"
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
	// Debug is who may use /debug/pprof/ and /debug/series.
	Debug config.Access
	// Stats serves /debug/series; nil serves none.
	Stats func(now time.Time, n int, order string) aggregate.SeriesStats
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
	if opts.Debug != config.AccessNone {
		debug := func(h http.HandlerFunc) http.Handler { return debugOnly(opts.Debug, h) }
		mux.Handle("/debug/pprof/", debug(pprof.Index))
		mux.Handle("/debug/pprof/cmdline", debug(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", debug(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", debug(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", debug(pprof.Trace))
		if opts.Stats != nil {
			mux.Handle("GET /debug/series", debug(seriesHandler(opts.Stats)))
		}
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

// debugOnly serves h to the clients access allows, 403 to the others.
func debugOnly(access config.Access, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access == config.AccessLoopback && !isLocalClient(r) {
			http.Error(w, "the /debug/ endpoints answer clients on this host only (set enable_profiling: true to open them)", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// isLocalClient reports whether a request comes from this host: from a
// loopback address, or from one of the host's own addresses, which is
// where a client on this host comes from when it dials a non-loopback
// http_address (veneur-lite top run beside the instance).
func isLocalClient(r *http.Request) bool {
	ip, ok := addrIP(r.RemoteAddr)
	if !ok {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if lip, ok := addrIP(local.String()); ok && lip == ip {
			return true
		}
	}
	return isOwnAddress(ip)
}

// addrIP is the IP of a host:port address, IPv4-mapped ones unmapped.
func addrIP(hostport string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// isOwnAddress reports whether ip is an address of one of this host's
// interfaces. It asks the kernel each time: debug requests are rare, and
// addresses change.
func isOwnAddress(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if own, ok := netip.AddrFromSlice(n.IP); ok && own.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// seriesHandler serves GET /debug/series?n=20&sort=series|samples|shed:
// the interval's live series and samples per metric name, as JSON.
func seriesHandler(stats func(time.Time, int, string) aggregate.SeriesStats) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := 20
		if v := r.URL.Query().Get("n"); v != "" {
			parsed, err := strconv.Atoi(v)
			if err != nil || parsed < 0 || parsed > 10_000 {
				http.Error(w, "n: want a number from 0 to 10000", http.StatusBadRequest)
				return
			}
			n = parsed
		}
		order := r.URL.Query().Get("sort")
		switch order {
		case "", aggregate.BySeries, aggregate.BySamples, aggregate.ByShed:
		default:
			http.Error(w, "sort: want series, samples or shed", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(stats(time.Now(), n, order))
	}
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
