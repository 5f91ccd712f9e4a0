package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
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
	// DialTLS makes the connections to https:// members
	// (tlsconfig.Reloader.DialTLS); nil means Go's (the system roots).
	// Ignored when Client is set.
	DialTLS httpclient.DialFunc
	// Token is the global's import token, sent with every batch; empty
	// sends none.
	Token string
	// Client makes the requests; nil means httpclient.NewClient's, with
	// connection reuse for MaxInFlight requests per global and no
	// redirects (one is a misconfigured address, and would turn a POST
	// into a GET on 301/302).
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
		f.client = httpclient.NewClient(cfg.MaxInFlight, cfg.DialTLS)
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
// call — by ctx's deadline at the latest. It takes ownership of series,
// which it reorders and merges in place, and of their digests and
// sketches. Calls must not overlap (the flusher runs one at a time).
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
	f.m.forwardDuration.Since(began)
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
// its series (a fresh gauge wins). fresh is compacted in place and becomes
// the front of the result: an interval of a million series is not copied.
func (f *Forwarder) coalesce(held []heldSeries, fresh []metric.Series, intervalStart time.Time, out *outcome) pending {
	idx := newKeyIndex(len(fresh) + len(held))
	series := fresh[:0]
	for r := range fresh {
		h := idx.hash(fresh[r].Key)
		if i, ok := idx.find(series, fresh[r].Key, h); ok {
			if err := series[i].Merge(&fresh[r]); err != nil {
				// Only mismatched sketches can fail (a precision or kind
				// that one Key cannot have); the part that failed is lost.
				out.encodeFailed(f, 1, err)
			}
			continue
		}
		idx.add(h, fresh[r].Key, len(series))
		series = append(series, fresh[r]) // in place: len(series) ≤ r
	}
	since := make([]time.Time, len(series), len(series)+len(held))
	for i := range since {
		since[i] = intervalStart
	}
	for _, hs := range held {
		h := idx.hash(hs.series.Key)
		i, ok := idx.find(series, hs.series.Key, h)
		if !ok {
			idx.add(h, hs.series.Key, len(series))
			series, since = append(series, hs.series), append(since, hs.since)
			continue
		}
		merged := hs.series // the older data first, so that a fresh gauge wins
		if err := merged.Merge(&series[i]); err != nil {
			out.encodeFailed(f, 1, err)
			continue
		}
		series[i] = merged
		if hs.since.Before(since[i]) {
			since[i] = hs.since
		}
	}
	return pending{series: series, since: since}
}

// keyIndex finds series by Key through a pointer-free map of key hashes,
// which a million-series interval fills several times faster than a map
// of strings; the rare key whose hash another took goes to clash.
type keyIndex struct {
	seed   maphash.Seed
	byHash map[uint64]int32
	clash  map[string]int
}

func newKeyIndex(n int) *keyIndex {
	return &keyIndex{seed: maphash.MakeSeed(), byHash: make(map[uint64]int32, n)}
}

func (x *keyIndex) hash(key string) uint64 { return maphash.String(x.seed, key) }

// find returns the index in series of key, whose hash is hash.
func (x *keyIndex) find(series []metric.Series, key string, hash uint64) (int, bool) {
	j, ok := x.byHash[hash]
	if !ok {
		return 0, false
	}
	if series[j].Key == key {
		return int(j), true
	}
	i, ok := x.clash[key]
	return i, ok
}

func (x *keyIndex) add(hash uint64, key string, i int) {
	if _, taken := x.byHash[hash]; !taken {
		x.byHash[hash] = int32(i)
		return
	}
	if x.clash == nil {
		x.clash = map[string]int{}
	}
	x.clash[key] = i
}

// plan routes every series to its member and cuts each member's share into
// batches of at most MaxBatchSeries, fewer when series are large. With no
// member known, everything goes into batches for member "", which are
// encoded (to size them) and held. p's slices are reordered in place.
func (f *Forwarder) plan(v *view, p pending) []*batch {
	groups := max(len(v.members), 1)
	series, since := p.series, p.since
	dest := make([]int32, len(series))
	offs := make([]int, groups+1) // counts, then start offsets
	for i := range series {
		m := max(v.route(series[i].Key), 0)
		dest[i] = int32(m)
		offs[m+1]++
	}
	for m := 1; m <= groups; m++ {
		offs[m] += offs[m-1]
	}
	// Sort by member in place (each series swapped straight into its
	// member's next free place), so each batch is one contiguous window.
	next := slices.Clone(offs[:groups])
	for m := range groups {
		for i := next[m]; i < offs[m+1]; i = next[m] {
			d := dest[i]
			if int(d) == m {
				next[m]++
				continue
			}
			j := next[d]
			next[d]++
			series[i], series[j] = series[j], series[i]
			since[i], since[j] = since[j], since[i]
			dest[i], dest[j] = dest[j], dest[i]
		}
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
