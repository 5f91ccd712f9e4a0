package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/veneur-lite/veneur-lite/aggregate"
	"github.com/veneur-lite/veneur-lite/forward"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/wire"
)

// A template is one simulated local's interval as a real forward.Forwarder
// sent it: the requests it made to each member of the tier, bodies and
// headers as captured. The replay sends a template's requests again for
// every local j with j mod K = its index, each under a fresh idempotency
// key, so N locals cost K templates of memory, not N.
type template struct {
	Index  int
	Source string
	// Members holds, per member (global) index, the requests it received.
	Members [][]request
}

// request is one captured POST /import.
type request struct {
	body   []byte
	header http.Header // the headers replayed as sent: content type and encoding, user agent
	series int         // digests in the batch
}

// replayedHeaders are the captured headers sent again. The idempotency
// key is not among them: every replayed batch gets a fresh one, as every
// local's batch has its own.
var replayedHeaders = []string{"Content-Type", "Content-Encoding", "User-Agent"}

// templateStats describes the templates for the report.
type templateStats struct {
	Templates        int     `json:"templates"`
	SeriesPerLocal   int     `json:"series_per_local"`
	SamplesPerDigest int     `json:"samples_per_digest"`
	Requests         int     `json:"requests_per_local"`   // summed over members, averaged over templates
	BodyBytes        float64 `json:"body_bytes_per_local"` // compressed, as sent
	BytesPerDigest   float64 `json:"compressed_bytes_per_digest"`
	Encoding         string  `json:"content_encoding"`
	MemberShares     []int   `json:"series_per_member"` // of one local's series, by member (the same for every template)
	IntervalStart    string  `json:"interval_start"`
	BuildSeconds     float64 `json:"build_s"`
	TemplateBytes    int64   `json:"template_bytes"` // all bodies held
}

// seriesName is the name of series i: every local of the fleet runs the
// same app, so series i has the same name and tag everywhere and the
// global merges the locals' digests of it into one.
func seriesName(i int) string { return "bench.latency." + strconv.Itoa(i) }

// seriesTag is the one tag of every series.
const seriesTag = "service:bench"

// sourceName is template k's hostname, carried in its batches: the capture
// servers file each batch under the template it names.
func sourceName(k int) string { return "bench-local-" + strconv.Itoa(k) }

// buildTemplates aggregates K locals' intervals of S histogram series and
// forwards each through a real forward.Forwarder to G in-process capture
// servers, which keep what they receive.
func buildTemplates(ctx context.Context, o options, intervalStart time.Time, log *slog.Logger) ([]*template, templateStats, error) {
	began := time.Now()
	cs, err := startCapture(o.globals, o.templates)
	if err != nil {
		return nil, templateStats{}, err
	}
	defer cs.close()

	// One template at a time: each holds a whole local's interval, S
	// digests of every sample (~10 KB a series at 500 samples), until it
	// is forwarded. Only the compressed bodies (~450 B a digest) are kept.
	for k := range o.templates {
		if err := captureTemplate(ctx, o, k, intervalStart, cs.urls); err != nil {
			return nil, templateStats{}, err
		}
	}
	if err := cs.err(); err != nil {
		return nil, templateStats{}, err
	}
	// The locals' aggregators are garbage now: give their memory back
	// before the globals start, on the same machine.
	debug.FreeOSMemory()
	st := templateStats{
		Templates:        o.templates,
		SeriesPerLocal:   o.series,
		SamplesPerDigest: o.samples,
		IntervalStart:    intervalStart.UTC().Format(time.RFC3339),
		BuildSeconds:     time.Since(began).Seconds(),
	}
	encodings := map[string]bool{}
	for k, t := range cs.templates {
		shares := make([]int, o.globals)
		total := 0
		for m, reqs := range t.Members {
			for _, r := range reqs {
				shares[m] += r.series
				total += r.series
				st.Requests++
				st.BodyBytes += float64(len(r.body))
				st.TemplateBytes += int64(len(r.body))
				encodings[r.header.Get("Content-Encoding")] = true
			}
		}
		if total != o.series {
			return nil, st, fmt.Errorf("template %d: the capture servers received %d series, the local forwarded %d", k, total, o.series)
		}
		if st.MemberShares == nil {
			st.MemberShares = shares
		} else if fmt.Sprint(shares) != fmt.Sprint(st.MemberShares) {
			// Routing depends on the series key only: every local of
			// the fleet sends series i to the same global.
			return nil, st, fmt.Errorf("template %d routed its series as %v, template 0 as %v", k, shares, st.MemberShares)
		}
	}
	st.BytesPerDigest = st.BodyBytes / float64(o.series*o.templates)
	st.Requests /= o.templates
	st.BodyBytes /= float64(o.templates)
	for e := range encodings {
		st.Encoding = strings.TrimSpace(st.Encoding + " " + e)
	}
	log.Info("templates", "locals", o.templates, "series", o.series, "requests_per_local", st.Requests,
		"series_per_member", fmt.Sprint(st.MemberShares), "bytes_per_digest", fmt.Sprintf("%.0f", st.BytesPerDigest),
		"encoding", st.Encoding, "held_mib", fmt.Sprintf("%.1f", float64(st.TemplateBytes)/(1<<20)),
		"build_s", fmt.Sprintf("%.1f", st.BuildSeconds))
	return cs.templates, st, nil
}

// captureTemplate is one simulated local: it aggregates o.series histogram
// series of o.samples lognormal samples each, flushes the interval and
// forwards it to the capture servers.
func captureTemplate(ctx context.Context, o options, k int, intervalStart time.Time, members []string) error {
	local, err := aggregate.New(aggregate.Config{Hostname: sourceName(k)})
	if err != nil {
		return fmt.Errorf("template %d: local aggregator: %w", k, err)
	}
	// Each template draws its own samples, so the locals' digests differ
	// as real hosts' would.
	rng := rand.New(rand.NewPCG(o.seed, uint64(k)))
	tag := []byte(seriesTag)
	samples := make([]metric.Sample, o.samples)
	for i := range o.series {
		if i%1000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		name := []byte(seriesName(i))
		for s := range samples {
			samples[s] = metric.Sample{Name: name, Tags: tag, Value: math.Exp(3 + rng.NormFloat64()), Rate: 1, Kind: metric.Histogram}
		}
		local.Push(samples)
	}
	flushed := local.Flush(intervalStart.Add(o.interval), o.interval)
	if len(flushed.Forward) != o.series {
		return fmt.Errorf("template %d: the local flushed %d series to forward, want %d", k, len(flushed.Forward), o.series)
	}
	fwd, err := forward.New(forward.Config{
		Addresses: members,
		Source:    sourceName(k),
		Interval:  o.interval,
		// Quiet: a forward that does not deliver everything fails the
		// build all the same, by the series count buildTemplates checks.
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("template %d: forwarder: %w", k, err)
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fwd.Forward(fctx, intervalStart, flushed.Forward)
	return nil
}

// captureServers stand in for the tier while the templates are built: one
// HTTP server per member, each answering 200 to every batch and keeping
// it, filed by the template its Source names.
type captureServers struct {
	urls      []string
	servers   []*http.Server
	mu        sync.Mutex
	templates []*template
	errs      []error
}

func startCapture(members, templates int) (*captureServers, error) {
	cs := &captureServers{}
	for k := range templates {
		cs.templates = append(cs.templates, &template{Index: k, Source: sourceName(k), Members: make([][]request, members)})
	}
	for m := range members {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			cs.close()
			return nil, fmt.Errorf("capture server: %w", err)
		}
		srv := &http.Server{Handler: cs.handler(m), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		cs.servers = append(cs.servers, srv)
		cs.urls = append(cs.urls, "http://"+ln.Addr().String())
	}
	return cs, nil
}

func (cs *captureServers) close() {
	for _, s := range cs.servers {
		_ = s.Close()
	}
}

func (cs *captureServers) err() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return errors.Join(cs.errs...)
}

func (cs *captureServers) fail(err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.errs) < 10 {
		cs.errs = append(cs.errs, err)
	}
}

// maxCaptureBody bounds a captured body: the forwarder cuts batches at
// 4 MiB before compression.
const maxCaptureBody = 16 << 20

// captureDecoder decompresses bodies to count their series; DecodeAll may
// be called concurrently.
var captureDecoder = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic("capture: " + err.Error()) // constant, valid options
	}
	return d
}()

// handler is member m's: it decodes each batch to learn its template and
// series count, checks that every series is a histogram digest, and keeps
// the body as sent.
func (cs *captureServers) handler(m int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/import" {
			cs.fail(fmt.Errorf("capture: unexpected %s %s", r.Method, r.URL.Path))
			http.Error(w, "not an import", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxCaptureBody+1))
		if err == nil && len(body) > maxCaptureBody {
			err = fmt.Errorf("body over %d bytes", maxCaptureBody)
		}
		var raw []byte
		if err == nil {
			raw, err = decompress(r.Header.Get("Content-Encoding"), body)
		}
		var b *wire.Batch
		if err == nil {
			b, err = wire.Decode(raw, wire.Limits{})
		}
		if err != nil {
			cs.fail(fmt.Errorf("capture member %d: %w", m, err))
			http.Error(w, err.Error(), http.StatusBadRequest) // poison: the forwarder stops sending it
			return
		}
		k, err := strconv.Atoi(strings.TrimPrefix(b.Source, "bench-local-"))
		if err != nil || k < 0 || k >= len(cs.templates) {
			cs.fail(fmt.Errorf("capture member %d: batch from unknown source %q", m, b.Source))
			http.Error(w, "unknown source", http.StatusBadRequest)
			return
		}
		for _, s := range b.Series {
			if s.Kind != metric.Histogram || s.Digest == nil {
				cs.fail(fmt.Errorf("capture member %d: series %q is a %v, want a histogram digest", m, s.Name, s.Kind))
				break
			}
		}
		h := http.Header{}
		for _, name := range replayedHeaders {
			if v := r.Header.Get(name); v != "" {
				h.Set(name, v)
			}
		}
		cs.mu.Lock()
		t := cs.templates[k]
		t.Members[m] = append(t.Members[m], request{body: body, header: h, series: len(b.Series)})
		cs.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
}

// decompress undoes a body's Content-Encoding.
func decompress(encoding string, body []byte) ([]byte, error) {
	switch encoding {
	case "zstd":
		raw, err := captureDecoder.DecodeAll(body, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(zr, 4*maxCaptureBody))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return raw, nil
	case "", "identity":
		return body, nil
	}
	return nil, fmt.Errorf("content encoding %q", encoding)
}
