package forward

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// Config wires a Forwarder. Zero values take the documented defaults.
type Config struct {
	// Addresses are the forward_address entries: http(s)://host:port base
	// URLs (an http host name is resolved to one member per address), or
	// srv://name for DNS SRV records.
	Addresses []string
	// Source is this instance's hostname, carried in every batch for the
	// global's logs.
	Source   string
	Interval time.Duration
	// MaxInFlight bounds concurrent POSTs, shared evenly by the members
	// (at least one each); default 8.
	MaxInFlight int
	// MaxBatchSeries bounds the series per POST; default 5000.
	MaxBatchSeries int
	// MaxHeldBytes bounds the data held over for the next interval while
	// the global tier is unreachable; default 64 MiB.
	MaxHeldBytes int64
	// ResolveEvery is the DNS re-resolution period of Run; default 30s.
	ResolveEvery time.Duration
	// Resolver looks up DNS entries; nil means net.DefaultResolver.
	Resolver Resolver
	// TLS configures the client side of https:// members; nil means Go's
	// defaults (the system roots). Ignored when Client is set.
	TLS *tls.Config
	// Token is the global's import token, sent with every batch; empty
	// sends none.
	Token string
	// Client makes the requests; nil means a client with connection reuse
	// for MaxInFlight requests per global and no redirects.
	Client *http.Client
	Stats  *telemetry.Registry
	Log    *slog.Logger
}

const (
	defaultMaxInFlight    = 8
	defaultMaxBatchSeries = 5000
	defaultMaxHeldBytes   = 64 << 20
	defaultResolveEvery   = 30 * time.Second

	// ambiguousTTL is how long an ambiguous batch is resent before it is
	// given up: well inside the 15 minutes the global remembers keys for,
	// so a resend it acknowledges is never merged twice.
	ambiguousTTL = 10 * time.Minute
	// importPath is where a global serves imports (importsrv.Path).
	importPath = "/import"
)

// Forwarder ships each interval's global series to the global tier. It
// implements flusher.Forwarder.
type Forwarder struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	resolver Resolver
	m        metrics

	// backoff shapes the waits between attempts; attemptTimeout bounds
	// one attempt so that a global that hangs leaves time to try again
	// within the interval.
	backoff        httpclient.Backoff
	attemptTimeout time.Duration
	maxBatchBytes  int // see defaultMaxBatchBytes
	// bytesPerSeries is the average encoded size of a series in the last
	// Forward. plan sizes batches by it so that they rarely exceed
	// maxBatchBytes and need encoding twice (see encodeParts).
	bytesPerSeries atomic.Int64
	now            func() time.Time

	entries   []*entry   // guarded by resolveMu
	resolveMu sync.Mutex // one resolution round at a time
	view      atomic.Pointer[view]

	heldMu sync.Mutex
	held   heldState

	rawBufs  sync.Pool // *[]byte: wire encodings
	bodyBufs sync.Pool // *[]byte: compressed bodies

	// gzipUntil maps a member that refused a zstd body (a global older
	// than zstd forwarding) to when to offer it zstd again.
	gzipUntil sync.Map // string → time.Time
}

// New validates cfg, resolves the addresses once and returns a Forwarder.
// A resolution failure is logged, not returned: the global tier may come up
// after this instance, and series are held until it does.
func New(cfg Config) (*Forwarder, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("forward: no forward address")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("forward: interval %v is not positive", cfg.Interval)
	}
	if cfg.MaxInFlight < 0 || cfg.MaxBatchSeries < 0 || cfg.MaxHeldBytes < 0 || cfg.ResolveEvery < 0 {
		return nil, errors.New("forward: negative limit in config")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if cfg.MaxBatchSeries == 0 {
		cfg.MaxBatchSeries = defaultMaxBatchSeries
	}
	if cfg.MaxHeldBytes == 0 {
		cfg.MaxHeldBytes = defaultMaxHeldBytes
	}
	if cfg.ResolveEvery == 0 {
		cfg.ResolveEvery = defaultResolveEvery
	}
	f := &Forwarder{
		cfg:            cfg,
		log:            cfg.Log,
		client:         cfg.Client,
		resolver:       cfg.Resolver,
		m:              newMetrics(cfg.Stats),
		backoff:        httpclient.Backoff{Base: 50 * time.Millisecond, Max: 2 * time.Second},
		attemptTimeout: min(max(cfg.Interval/2, time.Second), 30*time.Second),
		maxBatchBytes:  defaultMaxBatchBytes,
		now:            time.Now,
	}
	for _, a := range cfg.Addresses {
		e, err := parseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		f.entries = append(f.entries, e)
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	if f.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		// Keep every in-flight connection for the next interval.
		tr.MaxIdleConnsPerHost = cfg.MaxInFlight
		f.client = &http.Client{
			Transport: tr,
			// A redirect is a misconfigured address; following it would
			// also turn a POST into a GET on 301/302.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	f.rawBufs.New = func() any { return new([]byte) }
	f.bodyBufs.New = func() any { return new([]byte) }
	f.view.Store(newView(nil))
	f.resolve(context.Background())
	return f, nil
}

// Forward ships series, the global series of the interval that started at
// intervalStart, together with whatever earlier intervals left undelivered,
// and returns when all of it is delivered, rejected, or held for the next
// call — by ctx's deadline at the latest. It takes ownership of the series'
// digests and sketches. Calls must not overlap (the flusher runs one at a
// time).
func (f *Forwarder) Forward(ctx context.Context, intervalStart time.Time, series []metric.Series) {
	began := time.Now()
	prev := f.takeHeld(f.now())
	if len(series) == 0 && len(prev.series) == 0 && len(prev.ambiguous) == 0 && prev.expired == 0 {
		return
	}
	var out outcome
	p := f.coalesce(prev.series, series, intervalStart, &out)
	v := f.view.Load()
	batches := f.plan(v, p)

	// Each member gets its own lane of requests, so a global that refuses
	// connections or hangs ties up only its own batches (retrying until
	// the deadline), never the healthy members' share of MaxInFlight.
	lanes := map[string][]func(){}
	for _, b := range prev.ambiguous {
		lanes[b.member] = append(lanes[b.member], func() {
			f.m.ambiguousResent.Inc()
			f.post(ctx, b, &out)
		})
	}
	for _, b := range batches {
		lanes[b.member] = append(lanes[b.member], func() { f.ship(ctx, intervalStart, b, &out) })
	}
	perLane := max(1, f.cfg.MaxInFlight/max(len(lanes), 1))
	var all sync.WaitGroup
	for _, work := range lanes {
		all.Go(func() {
			var g errgroup.Group
			g.SetLimit(perLane)
			for _, w := range work {
				g.Go(func() error { w(); return nil })
			}
			_ = g.Wait() // ship and post report through out, never an error
		})
	}
	all.Wait()

	if out.encodedSeries > 0 {
		f.bytesPerSeries.Store(int64(max(out.encodedBytes/out.encodedSeries, 1)))
	}
	st := f.keep(&out)
	f.m.forwardDuration.Set(float64(time.Since(began).Microseconds()) / 1000)
	f.m.requestDuration.Set(float64(out.slowest.Microseconds()) / 1000)
	f.summarize(intervalStart, len(series), prev, len(batches), len(v.members), &out, st)
}

// pending is the outgoing series of one Forward. since[i] is the start of
// the oldest interval whose data series[i] carries: the age by which held
// data is dropped when it outgrows MaxHeldBytes.
type pending struct {
	series []metric.Series
	since  []time.Time
}

// coalesce merges held and fresh series into one entry per Key: two scopes
// of one series produce the same Key, and held data joins the fresh data of
// its series. Held series go first so a fresh gauge wins.
func (f *Forwarder) coalesce(held []heldSeries, fresh []metric.Series, intervalStart time.Time, out *outcome) pending {
	n := len(held) + len(fresh)
	p := pending{series: make([]metric.Series, 0, n), since: make([]time.Time, 0, n)}
	at := make(map[string]int, n)
	add := func(s metric.Series, since time.Time) {
		i, ok := at[s.Key]
		if !ok {
			at[s.Key] = len(p.series)
			p.series = append(p.series, s)
			p.since = append(p.since, since)
			return
		}
		if err := p.series[i].Merge(&s); err != nil {
			// Only mismatched sketches can fail (a precision or kind
			// that one Key cannot have); the part that failed is lost.
			out.encodeFailed(f, 1, err)
			return
		}
		if since.Before(p.since[i]) {
			p.since[i] = since
		}
	}
	for _, h := range held {
		add(h.series, h.since)
	}
	for _, s := range fresh {
		add(s, intervalStart)
	}
	return p
}

// plan routes every series to its member and cuts each member's share into
// batches of at most MaxBatchSeries, fewer when series are large. With no member known, everything goes
// into batches for member "", which are encoded (to size them) and held.
func (f *Forwarder) plan(v *view, p pending) []*batch {
	groups := max(len(v.members), 1)
	dest := make([]int32, len(p.series))
	offs := make([]int, groups+1) // counts, then start offsets
	for i := range p.series {
		m := max(v.route(p.series[i].Key), 0)
		dest[i] = int32(m)
		offs[m+1]++
	}
	for m := 1; m <= groups; m++ {
		offs[m] += offs[m-1]
	}
	// Counting sort by member, so each batch is one contiguous window.
	series := make([]metric.Series, len(p.series))
	since := make([]time.Time, len(p.series))
	next := slices.Clone(offs[:groups])
	for i, m := range dest {
		series[next[m]], since[next[m]] = p.series[i], p.since[i]
		next[m]++
	}
	perBatch := f.cfg.MaxBatchSeries
	if bps := f.bytesPerSeries.Load(); bps > 0 {
		// Three quarters of the bound leaves room for series that are
		// larger than the average.
		perBatch = int(min(max(int64(f.maxBatchBytes)*3/4/bps, 1), int64(perBatch)))
	}
	var batches []*batch
	for m := range groups {
		member := ""
		if len(v.members) > 0 {
			member = v.members[m]
		}
		for lo := offs[m]; lo < offs[m+1]; lo += perBatch {
			hi := min(lo+perBatch, offs[m+1])
			batches = append(batches, newBatch(member, series[lo:hi:hi], since[lo:hi:hi]))
		}
	}
	return batches
}

// newBatch returns an unsent batch of series for member, with a fresh key.
func newBatch(member string, series []metric.Series, since []time.Time) *batch {
	return &batch{
		member: member,
		key:    newKey(),
		series: series,
		since:  since,
		n:      len(series),
		oldest: slices.MinFunc(since, time.Time.Compare),
	}
}

// newKey returns a random 128-bit idempotency key in hex: unique across
// every host's batches without coordination.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b[:])
}

// summarize logs one line per Forward: what went, what is held, what was
// lost. Quiet (debug) when everything was delivered.
func (f *Forwarder) summarize(intervalStart time.Time, fresh int, prev heldState, batches, members int, out *outcome, st heldStats) {
	level, msg := slog.LevelDebug, "forwarded interval"
	if st.series > 0 || st.dropped > 0 || out.poisonedSeries > 0 || out.encodeDropped > 0 || prev.expired > 0 {
		level, msg = slog.LevelWarn, "forward incomplete"
	}
	if !f.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.Time("interval_start", intervalStart),
		slog.Int("members", members),
		slog.Int("series", fresh),
		slog.Int("held_in", len(prev.series)),
		slog.Int("batches", batches),
		slog.Int("resent_ambiguous", len(prev.ambiguous)),
		slog.Int("delivered_batches", out.deliveredBatches),
		slog.Int("delivered_series", out.deliveredSeries),
		slog.Int("held_series", st.series),
		slog.Int("held_ambiguous_batches", st.ambiguous),
		slog.Int64("held_bytes", st.bytes),
	}
	if st.dropped > 0 {
		attrs = append(attrs, slog.Int("held_dropped_series", st.dropped))
	}
	if prev.expired > 0 {
		attrs = append(attrs, slog.Int("ambiguous_expired_series", prev.expired))
	}
	if out.poisonedSeries > 0 {
		attrs = append(attrs, slog.Int("poisoned_series", out.poisonedSeries), slog.String("poison_reason", out.poisonReason))
	}
	if out.encodeDropped > 0 {
		attrs = append(attrs, slog.Int("encode_dropped_series", out.encodeDropped))
	}
	if members == 0 {
		attrs = append(attrs, slog.Any("error", errNoMembers))
	} else if out.lastErr != nil {
		attrs = append(attrs, slog.Any("last_error", out.lastErr))
	}
	for c, n := range out.causes {
		if n > 0 {
			attrs = append(attrs, slog.Int("failed_attempts_"+cause(c).String(), n))
		}
	}
	f.log.LogAttrs(context.Background(), level, msg, attrs...)
}
