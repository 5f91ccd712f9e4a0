package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/flusher"
	"github.com/veneur-lite/veneur-lite/forward"
	"github.com/veneur-lite/veneur-lite/importsrv"
	"github.com/veneur-lite/veneur-lite/internal/tlsconfig"
	"github.com/veneur-lite/veneur-lite/journal"
	"github.com/veneur-lite/veneur-lite/listener"
	"github.com/veneur-lite/veneur-lite/sinks"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// daemon is one veneur-lite process's components, bound and ready to run.
type daemon struct {
	cfg       config.Config
	log       *slog.Logger
	agg       *aggregate.Aggregator
	fleet     *global.Windows
	listeners []listener.Listener
	http      *httpServer
	flusher   *flusher.Flusher
	forwarder *forward.Forwarder // nil unless forward_address is set
	journal   *journal.Journal   // nil unless import_journal_dir is set
	// flushFleet is what the flusher flushes: fleet, or with a journal
	// fleet forgetting what every output is done with.
	flushFleet flusher.Fleet
	reloaders  []*tlsconfig.Reloader
}

// newDaemon binds every socket (so a port in use fails at start, not later)
// and wires listeners → aggregator → flusher → sinks. cfg is validated
// (config.Load), so it fails only on what a config cannot know: a port in
// use, a socket path taken.
func newDaemon(cfg config.Config, outputs []sinks.Sink, reg *telemetry.Registry, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, log: log}
	if err := d.build(outputs, reg); err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

// build makes the components in the order they depend on each other.
func (d *daemon) build(outputs []sinks.Sink, reg *telemetry.Registry) error {
	if err := d.buildAggregation(reg); err != nil {
		return err
	}
	// The TLS files are reread when they change and on SIGHUP (Reload);
	// config.Load has checked that they load.
	var serverTLS *tlsconfig.Reloader
	if c := d.cfg; c.TLSCertificate != "" {
		var err error
		serverTLS, err = d.reloader(tlsconfig.Files{Cert: c.TLSCertificate, Key: c.TLSKey, CA: c.TLSAuthorityCertificate})
		if err != nil {
			return fmt.Errorf("tls_certificate: %w", err)
		}
	}
	if err := d.buildForwarder(reg); err != nil {
		return err
	}
	if err := d.bindListeners(reg, serverTLS); err != nil {
		return err
	}
	if err := d.bindHTTP(reg, serverTLS); err != nil {
		return err
	}
	d.buildFlusher(outputs, reg)
	return nil
}

// buildAggregation makes the local aggregator and the global windows; the
// percentiles are named once for both.
func (d *daemon) buildAggregation(reg *telemetry.Registry) error {
	cfg := d.cfg
	percentiles := cfg.NamedPercentiles()
	var err error
	d.agg, err = aggregate.New(aggregate.Config{
		Workers:          cfg.NumWorkers,
		Hostname:         cfg.Hostname,
		ExtendTags:       cfg.ExtendTags,
		Percentiles:      percentiles,
		HostPercentiles:  cfg.NamedHostPercentiles(),
		Aggregates:       cfg.Aggregates,
		MaxSeries:        cfg.MaxSeries,
		MaxSeriesPerName: cfg.MaxSeriesPerName,
		Stats:            reg,
		Log:              d.log.With("component", "aggregate"),
	})
	if err != nil {
		return fmt.Errorf("build aggregator: %w", err)
	}
	d.fleet, err = global.New(global.Config{
		Interval:         cfg.Interval.D(),
		Percentiles:      percentiles,
		Forwarding:       len(cfg.ForwardAddress) > 0,
		MaxSeries:        cfg.MaxSeries,
		MaxSeriesPerName: cfg.MaxSeriesPerName,
		Stats:            reg,
		Log:              d.log.With("component", "global"),
	})
	if err != nil {
		return fmt.Errorf("build global aggregation: %w", err)
	}
	return nil
}

// buildForwarder makes the client of forward_address, if it is set.
func (d *daemon) buildForwarder(reg *telemetry.Registry) error {
	cfg := d.cfg
	if len(cfg.ForwardAddress) == 0 {
		return nil
	}
	fwd := forward.Config{
		Addresses: cfg.ForwardAddress,
		Source:    cfg.Hostname,
		Interval:  cfg.Interval.D(),
		Token:     cfg.ImportToken,
		Stats:     reg,
		Log:       d.log.With("component", "forward"),
	}
	if !cfg.TLS.IsZero() {
		client, err := d.reloader(tlsconfig.Files{Cert: cfg.TLS.CertFile, Key: cfg.TLS.KeyFile, CA: cfg.TLS.CAFile})
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		fwd.DialTLS = client.DialTLS(cfg.TLS.ServerName, nil)
	}
	var err error
	d.forwarder, err = forward.New(fwd)
	if err != nil {
		return fmt.Errorf("forward_address: %w", err)
	}
	return nil
}

// bindListeners binds every statsd_listen_addresses entry; tcp:// ones
// speak TLS when serverTLS is set.
func (d *daemon) bindListeners(reg *telemetry.Registry, serverTLS *tlsconfig.Reloader) error {
	cfg, agg := d.cfg, d.agg
	parser := listener.NewParser(cfg.MetricMaxLength, reg)
	for _, la := range cfg.StatsdListenAddresses {
		opts := listener.Options{
			Parser:          parser,
			Pusher:          agg,
			NewPusher:       func() listener.Pusher { return agg.NewWriter() },
			NumReaders:      cfg.NumReaders,
			ReadBufferBytes: cfg.ReadBufferSizeBytes,
			TCPIdleTimeout:  cfg.TCPIdleTimeout.D(),
			SocketMode:      cfg.UnixSocketMode.Mode(),
			Stats:           reg,
			Log:             d.log,
		}
		if serverTLS != nil {
			opts.TLS = serverTLS.ServerConfig(tlsconfig.RequireClientCert)
		}
		l, err := listener.New(la.Network, la.Address, opts)
		if err != nil {
			return err
		}
		d.listeners = append(d.listeners, l)
	}
	return nil
}

// bindHTTP binds http_address and mounts the import endpoint on it; with
// import_journal_dir, the journal is replayed first, before the port is
// bound, so that no import reaches this instance before its windows hold
// what it acknowledged before.
func (d *daemon) bindHTTP(reg *telemetry.Registry, serverTLS *tlsconfig.Reloader) error {
	cfg, log := d.cfg, d.log
	// Every instance accepts imports: a middle tier of a chained global tier
	// has forward_address set just like a local. On an address others can
	// reach, only authenticated senders may import.
	auth := importsrv.Auth{
		Token:         cfg.ImportToken,
		VerifiedCerts: cfg.TLSAuthorityCertificate != "",
		Required:      !config.IsLoopback(cfg.HTTPAddress),
	}
	if auth.Required && auth.Token == "" && !auth.VerifiedCerts {
		log.Warn("imports are refused to everyone: http_address is not a loopback address and neither import_token nor tls_authority_certificate is set",
			"http_address", cfg.HTTPAddress)
	}
	icfg := importsrv.Config{
		Importer: d.fleet,
		Auth:     auth,
		Stats:    reg,
		Log:      log.With("component", "import"),
	}
	var ref journalRef
	if cfg.ImportJournalDir != "" {
		icfg.Journal = &ref
	}
	imports := importsrv.New(icfg)
	d.flushFleet = d.fleet
	if cfg.ImportJournalDir != "" {
		var err error
		d.journal, err = openJournal(cfg.ImportJournalDir, cfg.ImportJournalMaxBytes, imports, &ref, reg, log.With("component", "journal"))
		if err != nil {
			return err
		}
		d.flushFleet = &journaledFleet{Windows: d.fleet, journal: d.journal, log: log.With("component", "journal")}
	}
	httpOpts := httpOptions{Debug: cfg.DebugAccess(), Stats: d.agg.Stats}
	if serverTLS != nil {
		// Health checks come without a client certificate; imports must
		// bring one or the token (importsrv.Auth).
		httpOpts.TLS = serverTLS.ServerConfig(tlsconfig.VerifyClientCertIfGiven)
	}
	var err error
	d.http, err = newHTTPServer(cfg.HTTPAddress, reg, log, httpOpts)
	if err != nil {
		return err
	}
	d.http.mux.Handle(importsrv.Path, imports)
	return nil
}

// buildFlusher makes the flusher that ends each interval and hands it to
// the sinks and the forwarder.
func (d *daemon) buildFlusher(outputs []sinks.Sink, reg *telemetry.Registry) {
	fcfg := flusher.Config{
		Aggregator: d.agg,
		Fleet:      d.flushFleet,
		Sinks:      outputs,
		Interval:   d.cfg.Interval.D(),
		Stats:      reg,
		Log:        d.log,
	}
	if d.forwarder != nil { // never a typed nil in the interface
		fcfg.Forwarder = d.forwarder
	}
	d.flusher = flusher.New(fcfg)
}

// reloader loads TLS files and keeps them for Reload (SIGHUP); a later
// change that does not load is logged.
func (d *daemon) reloader(files tlsconfig.Files) (*tlsconfig.Reloader, error) {
	r, err := tlsconfig.NewReloader(files, func(err error) {
		d.log.Error("TLS files changed but do not load; the previous ones stay in use", "error", err)
	})
	if err != nil {
		return nil, err
	}
	d.reloaders = append(d.reloaders, r)
	return r, nil
}

// Reload rereads every TLS file at once (SIGHUP); each configuration
// whose files do not load keeps its current certificates.
func (d *daemon) Reload() {
	if len(d.reloaders) == 0 {
		d.log.Info("SIGHUP received: no TLS files to reload")
		return
	}
	for _, r := range d.reloaders {
		if err := r.Reload(); err != nil {
			d.log.Error("SIGHUP: reload failed", "error", err)
			continue
		}
	}
	d.log.Info("SIGHUP received: TLS files reloaded", "sets", len(d.reloaders))
}

// release closes the sockets of a daemon that will never run.
func (d *daemon) release() {
	for _, l := range d.listeners {
		if err := l.Close(); err != nil {
			d.log.Warn("close listener", "address", l.Addr(), "error", err)
		}
	}
	if d.http != nil {
		d.http.ln.Close()
	}
	if d.journal != nil {
		_ = d.journal.Close()
	}
}

// ListenAddrs returns the bound statsd addresses, in config order.
func (d *daemon) ListenAddrs() []string {
	addrs := make([]string, len(d.listeners))
	for i, l := range d.listeners {
		addrs[i] = l.Addr()
	}
	return addrs
}

// listenerSummary describes the statsd listeners for the start log, each
// with its scheme and, for TCP, whether it requires TLS: a UDP and a TCP
// listener on one port are two different things to the reader.
func (d *daemon) listenerSummary() string {
	addrs := d.ListenAddrs()
	parts := make([]string, len(addrs))
	for i, la := range d.cfg.StatsdListenAddresses {
		if i >= len(addrs) {
			break
		}
		parts[i] = la.Network + "://" + addrs[i] // a unixgram path is absolute: unixgram:///path
		if strings.HasPrefix(la.Network, "tcp") {
			if d.cfg.TLSCertificate != "" {
				parts[i] += " (tls)"
			} else {
				parts[i] += " (no tls)"
			}
		}
	}
	return strings.Join(parts, ", ")
}

// httpSummary is the HTTP address for the start log, with its scheme.
func (d *daemon) httpSummary() string {
	if d.cfg.TLSCertificate != "" {
		return "https://" + d.http.Addr()
	}
	return "http://" + d.http.Addr()
}

// Run serves until ctx ends, then stops in the order data flows: the
// listeners drain what the kernel holds and stop; the HTTP server stops,
// so no forwarded batch arrives after the imported intervals are drained;
// and the final flush goes out to every output, all within shutdownBudget
// of the signal.
func (d *daemon) Run(ctx context.Context) error {
	d.log.Info("veneur-lite started", "version", version, "statsd", d.listenerSummary(), "http", d.httpSummary(),
		"interval", d.cfg.Interval.D().String(), "hostname", d.cfg.Hostname,
		"forward_address", strings.Join(d.cfg.ForwardAddress, ","), "readers", d.cfg.NumReaders, "workers", d.cfg.NumWorkers)

	// The shutdown budget runs from the signal, not from whenever the
	// listeners finish draining.
	var signalled atomic.Int64
	stopWatch := context.AfterFunc(ctx, func() { signalled.Store(time.Now().UnixNano()) })
	defer stopWatch()

	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- d.http.Run(httpCtx) }()

	ingest, ingestCtx := errgroup.WithContext(ctx)
	for _, l := range d.listeners {
		ingest.Go(func() error { return l.Run(ingestCtx) })
	}
	ingest.Go(func() error { return d.flusher.Run(ingestCtx) })
	if d.forwarder != nil {
		ingest.Go(func() error { return d.forwarder.Run(ingestCtx) })
	}
	ingest.Go(func() error {
		// The HTTP server failing is fatal for the process: stop ingesting.
		select {
		case err := <-httpDone:
			httpDone <- err
			return err
		case <-ingestCtx.Done():
			return nil
		}
	})
	ingestErr := ingest.Wait()

	shutdownStart := time.Now()
	deadline := shutdownStart.Add(shutdownBudget)
	if at := signalled.Load(); at != 0 {
		deadline = time.Unix(0, at).Add(shutdownBudget)
	}
	if !d.cfg.FlushOnShutdown {
		d.log.Info("shutting down without a final flush (flush_on_shutdown: false)")
		stopHTTP()
		httpErr := <-httpDone
		wctx, cancel := context.WithDeadline(context.Background(), deadline)
		d.flusher.Wait(wctx)
		cancel()
		if d.journal != nil {
			// What was not flushed stays in it, for the next start.
			_ = d.journal.Close()
		}
		return errors.Join(ingestErr, httpErr)
	}
	// Imports stop first, so that the final flush includes every batch a
	// local managed to deliver, and the global intervals not yet due.
	stopHTTP()
	httpErr := <-httpDone
	d.fleet.Drain()
	d.log.Info("shutting down: final flush")
	fctx, cancel := context.WithDeadline(context.Background(), deadline)
	d.flusher.Final(fctx)
	cancel()
	if d.journal != nil {
		if err := d.journal.Close(); err != nil {
			d.log.Error("import journal: close", "error", err)
		}
	}
	d.log.Info("veneur-lite stopped", "shutdown_seconds", time.Since(shutdownStart).Seconds())
	return errors.Join(ingestErr, httpErr)
}
