package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/veneur-lite/veneur-lite/internal/httpclient"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/wire"
)

const (
	// maxAttemptsNoDeadline bounds retries when ctx has no deadline;
	// normally the deadline (the next tick) ends them.
	maxAttemptsNoDeadline = 10
	// maxPooledBuf is the largest buffer kept for reuse; a rare huge batch
	// should not pin its memory for the life of the process.
	maxPooledBuf = 8 << 20
	// defaultMaxBatchBytes bounds one batch's encoding, which
	// MaxBatchSeries alone does not: a dense HLL encodes to about 5 KB and
	// a busy series' digest to about 2 KB, so 5000 of them would make a
	// 10-25 MB request for a global to buffer and decode at once.
	defaultMaxBatchBytes = 4 << 20
)

// batch is one POST: a member's share of series, at most MaxBatchSeries.
type batch struct {
	member string // base URL; "" when no member is known
	key    string // Idempotency-Key, the same for every attempt
	// series and since are the batch's data until it is delivered or held
	// as ambiguous, after which only body carries it.
	series   []metric.Series
	since    []time.Time
	oldest   time.Time // min(since): the batch's age for the memory bound
	n        int       // series in the batch
	rawLen   int       // uncompressed encoding, the held-size estimate of its series
	body     []byte    // the encoding, compressed
	encoding string    // body's Content-Encoding: zstd, or gzip for an older global
	pooled   *[]byte   // the pooled buffer holding body; nil once body is owned

	// maybeMerged is set once an attempt may have reached the global
	// (written in full, answer lost; or 409): from then on only the global's
	// answer for this key can settle the batch, and its data never travels
	// under another key. firstReached starts the ambiguousTTL clock.
	maybeMerged  bool
	firstReached time.Time
}

// encoder compresses every batch body, at the fastest level: t-digest
// centroids and HLL registers are nearly incompressible at any level,
// while names and tags compress well at all of them. zstd at it costs
// about as much CPU as gzip's fastest on the local and decompresses several
// times faster on the global, where a fleet's batches meet: there, gunzip
// was half of what a forwarded digest cost to merge. EncodeAll may be
// called concurrently.
var encoder = func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("forward: " + err.Error()) // constant, valid options
	}
	return e
}()

// Content encodings of a batch body. Globals older than zstd forwarding
// answer a zstd body with 415 before reading it; such a member is sent
// gzip (the encoding every version takes) for gzipFallbackFor, then offered
// zstd again, which finds it once it has been upgraded.
const (
	encodingZstd    = "zstd"
	encodingGzip    = "gzip"
	gzipFallbackFor = 10 * time.Minute
)

// compress sets b.body to raw, compressed as b.member takes it.
func (f *Forwarder) compress(b *batch, raw []byte) error {
	if b.pooled == nil {
		b.pooled = f.bodyBufs.Get().(*[]byte)
	}
	dst := (*b.pooled)[:0]
	if !f.wantsGzip(b.member) {
		b.body, b.encoding = encoder.EncodeAll(raw, dst), encodingZstd
		return nil
	}
	buf := bytes.NewBuffer(dst)
	zw, _ := gzip.NewWriterLevel(buf, gzip.BestSpeed) // constant, valid level
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	b.body, b.encoding = buf.Bytes(), encodingGzip
	return nil
}

func (f *Forwarder) wantsGzip(member string) bool {
	until, ok := f.gzipUntil.Load(member)
	return ok && f.now().Before(until.(time.Time))
}

// recompressGzip turns b's zstd body, which b.member refused, into gzip,
// and sends that member gzip from now on.
func (f *Forwarder) recompressGzip(b *batch) error {
	if _, had := f.gzipUntil.Swap(b.member, f.now().Add(gzipFallbackFor)); !had {
		f.log.Warn("global refused a zstd body (415), as versions before zstd forwarding do: sending it gzip",
			"member", b.member, "retry_zstd_after", gzipFallbackFor)
	}
	raw, err := bodyDecoder().DecodeAll(b.body, nil)
	if err != nil {
		return fmt.Errorf("recompress for %s: %w", b.member, err)
	}
	return f.compress(b, raw)
}

// bodyDecoder decompresses the rare body that must be sent again as gzip.
var bodyDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)) // valid options
	return d
})

func (f *Forwarder) putRaw(p *[]byte, raw []byte) {
	if cap(raw) <= maxPooledBuf {
		*p = raw[:0]
		f.rawBufs.Put(p)
	}
}

// release returns b's compressed body to the pool.
func (f *Forwarder) release(b *batch) {
	if b.pooled != nil && cap(b.body) <= maxPooledBuf {
		*b.pooled = b.body[:0]
		f.bodyBufs.Put(b.pooled)
	}
	b.pooled, b.body = nil, nil
}

// ship encodes and compresses a fresh batch, then posts it.
func (f *Forwarder) ship(ctx context.Context, intervalStart time.Time, b *batch, out *outcome) {
	f.encodeParts(intervalStart, b, out, func(b *batch, raw []byte) {
		if b.member == "" || ctx.Err() != nil {
			out.undelivered(f, b) // encoded only to size it
			return
		}
		if err := f.compress(b, raw); err != nil {
			out.encodeFailed(f, b.n, err)
			f.release(b)
			return
		}
		f.post(ctx, b, out)
	})
}

// encodeParts encodes b and calls send with the encoding, valid during the
// call, and b.rawLen set. A batch whose encoding exceeds maxBatchBytes is
// split and each part sent on its own, one after the other: this is rare,
// and MaxInFlight stays a bound.
func (f *Forwarder) encodeParts(intervalStart time.Time, b *batch, out *outcome, send func(*batch, []byte)) {
	rawp := f.rawBufs.Get().(*[]byte)
	raw := f.encode((*rawp)[:0], intervalStart, b, out)
	if b.n > 1 && len(raw) > f.maxBatchBytes {
		f.putRaw(rawp, raw)
		// One part more than the average needs, as series sizes vary; a
		// part still too big splits again.
		for _, part := range split(b, min(len(raw)/f.maxBatchBytes+2, b.n)) {
			f.encodeParts(intervalStart, part, out, send)
		}
		return
	}
	defer f.putRaw(rawp, raw)
	if b.n == 0 {
		return // nothing encodable was left; encode counted it
	}
	b.rawLen = len(raw)
	out.encoded(b.n, len(raw))
	send(b, raw)
}

// split cuts an unsent batch into parts of about equal series counts, each
// a batch of its own with its own key.
func split(b *batch, parts int) []*batch {
	size := (b.n + parts - 1) / parts
	var out []*batch
	for lo := 0; lo < b.n; lo += size {
		hi := min(lo+size, b.n)
		out = append(out, newBatch(b.member, b.series[lo:hi:hi], b.since[lo:hi:hi]))
	}
	return out
}

// encode appends b's wire encoding to dst. A series the encoder refuses
// (a non-finite counter sum, say) is dropped and counted on its own rather
// than taking its whole batch down with it; b.n is what is left.
func (f *Forwarder) encode(dst []byte, intervalStart time.Time, b *batch, out *outcome) []byte {
	wb := wire.Batch{IntervalStart: intervalStart, Interval: f.cfg.Interval, Source: f.cfg.Source, Series: b.series}
	enc, err := wire.AppendEncode(dst, &wb)
	if err == nil {
		return enc
	}
	if len(b.series) <= 1 {
		out.encodeFailed(f, b.n, err)
		b.series, b.since, b.n = nil, nil, 0
		return enc
	}
	keep := b.series[:0:len(b.series)] // filtered in place: the batch owns its window
	since := b.since[:0:len(b.since)]
	var one [1]metric.Series
	for i, s := range b.series {
		one[0] = s
		wb.Series = one[:]
		var serr error
		if enc, serr = wire.AppendEncode(enc[:0], &wb); serr != nil {
			out.encodeFailed(f, 1, serr)
			continue
		}
		keep, since = append(keep, s), append(since, b.since[i])
	}
	b.series, b.since, b.n = keep, since, len(keep)
	if len(keep) == 0 {
		return enc[:0]
	}
	wb.Series = keep
	if enc, err = wire.AppendEncode(enc[:0], &wb); err != nil { // each encoded alone; cannot fail together
		out.encodeFailed(f, b.n, err)
		b.series, b.since, b.n = nil, nil, 0
	}
	return enc
}

// post sends b, retrying transient failures with exponential backoff and
// full jitter until the global accepts or rejects it, or ctx leaves no time
// for another attempt; an undelivered batch is held for the next Forward.
func (f *Forwarder) post(ctx context.Context, b *batch, out *outcome) {
	_, hasDeadline := ctx.Deadline()
	for attempt := 0; ; attempt++ {
		res := f.attempt(ctx, b)
		out.attempted(f, res)
		switch {
		case res.ok:
			out.delivered(f, b)
			return
		case res.poison:
			out.poisoned(f, b, res)
			return
		case res.zstdRefused:
			if err := f.recompressGzip(b); err != nil {
				out.encodeFailed(f, b.n, err)
				f.release(b)
				return
			}
			f.m.retries.Inc()
			continue // at once: the global read nothing
		}
		if !res.retry || ctx.Err() != nil || (!hasDeadline && attempt+1 >= maxAttemptsNoDeadline) {
			break
		}
		if !httpclient.Sleep(ctx, f.backoff.Delay(attempt, res.retryAfter)) {
			break
		}
		f.m.retries.Inc()
	}
	out.undelivered(f, b)
}

// result is what one attempt learned.
type result struct {
	ok, poison, retry bool
	zstdRefused       bool  // 415 to a zstd body: send it gzip
	cause             cause // why it failed, when it did
	err               error
	retryAfter        time.Duration
	took              time.Duration
}

// attempt makes one request and classifies its outcome.
func (f *Forwarder) attempt(ctx context.Context, b *batch) result {
	if err := ctx.Err(); err != nil {
		return result{cause: causeTimeout, err: fmt.Errorf("post %s: %w", b.member, err)}
	}
	actx, cancel := context.WithTimeout(ctx, f.attemptTimeout)
	defer cancel()
	// Whether the request left in full decides, on a failure without an
	// answer, between "certainly not merged" (a global merges only a
	// complete body) and "maybe merged".
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace),
		http.MethodPost, b.member+importPath, bytes.NewReader(b.body))
	if err != nil {
		return result{cause: causeEncode, err: fmt.Errorf("post %s: build request: %w", b.member, err)}
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set("Content-Encoding", b.encoding)
	// Besides the global's dedup, this header makes net/http itself treat
	// the POST as idempotent and retry it on a stale keep-alive connection.
	req.Header.Set(wire.HeaderIdempotencyKey, b.key)
	req.Header.Set("User-Agent", "veneur-lite")
	if f.cfg.Token != "" {
		req.Header.Set(wire.HeaderAuthorization, wire.BearerPrefix+f.cfg.Token)
	}
	f.m.bytesSent.Add(uint64(len(b.body)))

	began := time.Now()
	resp, err := f.client.Do(req)
	took := time.Since(began)
	if err != nil {
		sent := wrote.Load()
		if sent {
			b.reached(f.now())
		}
		return result{retry: true, cause: classify(err, sent), err: err, took: took}
	}
	defer resp.Body.Close()

	res := result{took: took}
	err = httpclient.Finish(resp, "post "+b.member+importPath, "global")
	if err == nil {
		res.ok = true
		return res
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusConflict:
		// Another request of ours holds the key right now: it got there.
		b.reached(f.now())
		res.retry, res.cause = true, causeConflict
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		res.retry, res.cause = true, causeHTTP4xx
	case code >= 500:
		// Only a 503 (the global's "busy", answered before it reads the
		// body) says the batch was not merged. Other 5xx may come from a
		// proxy in front of a global that merged it and then failed.
		if code != http.StatusServiceUnavailable {
			b.reached(f.now())
		}
		res.retry, res.cause = true, causeHTTP5xx
	case code == http.StatusUnsupportedMediaType && b.encoding == encodingZstd:
		res.zstdRefused, res.cause = true, causeHTTP4xx
	case code >= 400:
		res.poison, res.cause = true, causeHTTP4xx
	default:
		res.cause = causeHTTPOther
	}
	res.err = err
	var se *httpclient.StatusError
	if errors.As(err, &se) {
		res.retryAfter = se.RetryAfter
	}
	return res
}

// reached marks that an attempt of b may have been merged.
func (b *batch) reached(now time.Time) {
	if !b.maybeMerged {
		b.maybeMerged, b.firstReached = true, now
	}
}

// classify names the cause of a round trip that got no answer. A TLS
// failure is retried like any other (the global may be mid-rotation), but
// counted apart: it is a configuration problem, not an unreachable global.
func classify(err error, sent bool) cause {
	switch httpclient.ErrorCause(err) {
	case httpclient.CauseTLS:
		return causeTLS
	case httpclient.CauseTimeout:
		return causeTimeout
	}
	if !sent && httpclient.IsDialFailure(err) {
		return causeDial
	}
	return causeNetwork
}

// outcome collects what the batches of one Forward became; the batches
// report into it from their goroutines.
type outcome struct {
	mu sync.Mutex

	held      []heldSeries // undelivered and certainly not merged
	ambiguous []*batch     // undelivered and maybe merged

	deliveredBatches, deliveredSeries int
	poisonedSeries                    int
	poisonReason                      string // the first, for the summary
	encodeDropped                     int
	causes                            [numCauses]int // failed attempts
	lastErr                           error
	encodedSeries, encodedBytes       int
}

func (o *outcome) encoded(series, bytes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.encodedSeries += series
	o.encodedBytes += bytes
}

func (o *outcome) attempted(f *Forwarder, res result) {
	f.m.requestDuration.ObserveDuration(res.took)
	if !res.ok {
		f.m.errors[res.cause].Inc()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !res.ok {
		o.causes[res.cause]++
		o.lastErr = res.err
	}
}

func (o *outcome) delivered(f *Forwarder, b *batch) {
	f.m.batchesSent.Inc()
	f.m.seriesSent.Add(uint64(b.n))
	f.release(b)
	b.series, b.since = nil, nil
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deliveredBatches++
	o.deliveredSeries += b.n
}

// poisoned drops a batch the global rejected: sending it again would be
// rejected again, and the log keeps the reason.
func (o *outcome) poisoned(f *Forwarder, b *batch, res result) {
	f.m.poisonDropped.Add(uint64(b.n))
	f.release(b)
	b.series, b.since = nil, nil
	o.mu.Lock()
	defer o.mu.Unlock()
	o.poisonedSeries += b.n
	if o.poisonReason == "" {
		o.poisonReason = res.err.Error()
	}
}

func (o *outcome) encodeFailed(f *Forwarder, series int, err error) {
	f.m.errors[causeEncode].Inc()
	f.m.encodeDropped.Add(uint64(series))
	o.mu.Lock()
	defer o.mu.Unlock()
	o.encodeDropped += series
	o.causes[causeEncode]++
	o.lastErr = err
}

// undelivered holds b for the next Forward, by what the global can have
// seen of it.
func (o *outcome) undelivered(f *Forwarder, b *batch) {
	if b.maybeMerged {
		// Resent as is, so the body must outlive the pooled buffer.
		if b.pooled != nil {
			body := bytes.Clone(b.body)
			f.release(b)
			b.body = body
		}
		b.series, b.since = nil, nil
		o.mu.Lock()
		o.ambiguous = append(o.ambiguous, b)
		o.mu.Unlock()
		return
	}
	f.release(b)
	// The encoding is the size estimate, shared evenly by its series.
	size := max(int64(b.rawLen)/int64(max(b.n, 1)), 1)
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, s := range b.series {
		o.held = append(o.held, heldSeries{series: s, since: b.since[i], size: size})
	}
}
