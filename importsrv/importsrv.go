// Package importsrv is the HTTP endpoint on a global instance that decodes
// forwarded batches and merges them.
//
//	local ──POST /import (zstd or gzip, Idempotency-Key)──▶ Handler
//	        method, media type, encoding, key ─▶ read body (bounded, decompressed bounded)
//	        ─▶ dedup: merged already? 200 · in progress? 409
//	        ─▶ wire.Decode (whole batch validated) ─▶ [Journal.Append, durable] ─▶ merge ─▶ key done ─▶ 200
//
// A batch is merged exactly once however often its sender retries it: the
// handler remembers idempotency keys (bounded in number and in time),
// acknowledges a key it has merged without merging again, answers 409 to a
// key another request is merging right now, and records a key as merged
// only once the merge is done. A batch is decoded and validated completely
// before anything is merged, so a bad one is rejected whole, with a 4xx and
// a short reason, and counted by cause. With a Journal, a batch is on disk
// before it is merged and acknowledged, and Replay merges what the journal
// kept when the process starts again (docs/output.md, Durability).
package importsrv

import (
	"bytes"
	"container/list"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/veneur-lite/veneur-lite/aggregate/global"
	"github.com/veneur-lite/veneur-lite/internal/logthrottle"
	"github.com/veneur-lite/veneur-lite/journal"
	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
	"github.com/veneur-lite/veneur-lite/wire"
)

// Path is where the handler is mounted.
const Path = "/import"

// Importer merges a decoded batch; *global.Windows is one. Import must be
// done merging when it returns: the handler acknowledges the batch then.
// Import may keep the series' strings and set sketches, but not their
// digests: those live in memory the handler reuses for the next batch
// once Import returns (wire.Decoder), so Import merges them into digests
// of its own.
type Importer interface {
	Import(intervalStart time.Time, interval time.Duration, series []metric.Series)
}

// Defaults for the zero fields of Config.
const (
	// The forward client cuts batches at 4 MiB uncompressed; these leave
	// room for other senders while keeping MaxConcurrent bodies in memory
	// cheap.
	DefaultMaxBodyBytes    = 16 << 20
	DefaultMaxDecodedBytes = 16 << 20
	// DefaultBodyReadTimeout bounds how long a request may take to send
	// its body while it holds a processing slot.
	DefaultBodyReadTimeout = 10 * time.Second
	DefaultDedupWindow     = 15 * time.Minute
	// DefaultDedupMaxKeys covers the forward client's ten-minute resend
	// window for ~800 batches/s (thousands of locals); ~150 bytes a key.
	DefaultDedupMaxKeys = 500_000
	// DefaultMaxConcurrent bounds the batches decoded at once, since each
	// may hold MaxDecodedBytes.
	DefaultMaxConcurrent = 8
	// admissionWait is how long a request waits for a slot before a 503
	// sends it back to the client's backoff (and, failing that, its held
	// data for the next interval).
	admissionWait = time.Second
)

// MaxKeyBytes bounds an idempotency key; a UUID is 36 bytes.
const MaxKeyBytes = 128

// Config configures a Handler. Only Importer is required.
type Config struct {
	Importer Importer
	// MaxBodyBytes bounds the request body as sent (compressed); beyond
	// it the answer is 413.
	MaxBodyBytes int64
	// MaxDecodedBytes bounds the batch after decompression, which is what
	// is held in memory while decoding; beyond it the answer is 413. gzip
	// expands up to ~1000×, so this, not MaxBodyBytes, bounds memory.
	MaxDecodedBytes int64
	// DedupWindow is how long a merged key is remembered. It must outlast
	// the time a sender keeps retrying one batch.
	DedupWindow time.Duration
	// DedupMaxKeys bounds the keys remembered; the oldest go first.
	DedupMaxKeys int
	// BodyReadTimeout bounds reading one request's body, so that stalled
	// senders cannot hold every processing slot.
	BodyReadTimeout time.Duration
	// MaxConcurrent bounds the batches read and decoded at once; beyond it
	// a request waits briefly, then gets 503 and retries.
	MaxConcurrent int
	// Limits bound what a batch may hold (wire.Decode).
	Limits wire.Limits
	// Stats receives the handler's measurements; nil measures nothing.
	Stats *telemetry.Registry
	// Log receives rejected batches (throttled); nil means slog.Default().
	Log *slog.Logger
	// Now is the clock of the dedup window; nil means time.Now.
	Now func() time.Time
	// Auth decides who may import; the zero value lets everyone in.
	Auth Auth
	// Journal, if set, makes every batch durable before it is
	// acknowledged: appended, as received, to the journal of the window it
	// merges into. Importer must then lease windows (Leaser).
	Journal Journal
}

// Journal keeps acknowledged batches until their window is flushed;
// *journal.Journal is one. Append returns once rec is durable;
// journal.ErrFull means it is not, for lack of room.
type Journal interface {
	Append(window time.Time, rec *journal.Record) error
}

// Leaser is an Importer that holds the window a batch merges into open
// while the batch is journaled; *global.Windows is one.
type Leaser interface {
	Acquire(intervalStart time.Time, interval time.Duration) *global.Lease
}

// Auth is who may import. A sender is authenticated by the shared Token
// (an "Authorization: Bearer <token>" header, compared in constant time)
// or by a client certificate that the TLS layer verified against the
// instance's authority certificate. Required makes one of the two
// mandatory: an http_address that is not loopback requires it, so that
// no one who can merely reach the port can import into the fleet's
// numbers; with Required and neither a Token nor VerifiedCerts, every
// import is refused.
type Auth struct {
	Token string
	// VerifiedCerts says the TLS layer verifies client certificates
	// against an authority (tls_authority_certificate).
	VerifiedCerts bool
	Required      bool
}

// check reports why r may not import, if it may not.
func (a *Auth) check(r *http.Request) (cause, error) {
	if got := r.Header.Get(wire.HeaderAuthorization); got != "" && a.Token != "" {
		// Compared in constant time; the token itself is never logged
		// nor echoed, and neither is what was sent.
		if subtle.ConstantTimeCompare([]byte(got), []byte(wire.BearerPrefix+a.Token)) == 1 {
			return 0, nil
		}
		return causeForbidden, errors.New("import token does not match")
	}
	if a.VerifiedCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return 0, nil
	}
	switch {
	case !a.Required && a.Token == "":
		return 0, nil
	case a.Token == "" && !a.VerifiedCerts:
		return causeForbidden, errors.New("imports are refused: http_address is not loopback and neither import_token nor tls_authority_certificate is set")
	case a.Token != "" && a.VerifiedCerts:
		return causeUnauthenticated, errors.New("import needs the import token or a client certificate signed by the authority")
	case a.Token != "":
		return causeUnauthenticated, errors.New("import needs the import token (Authorization: Bearer …)")
	}
	return causeUnauthenticated, errors.New("import needs a client certificate signed by the authority")
}

// Handler serves POST /import. It is safe for concurrent use.
type Handler struct {
	slots  chan struct{} // admission: one token per batch being processed
	cfg    Config
	leaser Leaser // with a Journal
	keys   *dedup
	stats  handlerStats
	// bufs holds decoded-body buffers for reuse: wire.Decode copies what
	// it keeps, so a buffer is free again once the batch is decoded.
	bufs sync.Pool
	// decoders hold the arrays the batches' digests are decoded into.
	decoders sync.Pool
	zstdOnce sync.Once
	zstd     *zstd.Decoder
	// Rejections are logged at most once per logEvery; the rest are
	// counted and reported with the next log line.
	refusals logthrottle.Throttle
}

// logEvery throttles logs about bad batches: a misbehaving sender retries
// and must not flood the log.
const logEvery = time.Second

// maxPooledBuffer keeps one huge batch from pinning its buffer forever.
const maxPooledBuffer = 4 << 20

// New returns a handler for cfg; zero fields take their defaults.
func New(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxDecodedBytes <= 0 {
		cfg.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.DedupMaxKeys <= 0 {
		cfg.DedupMaxKeys = DefaultDedupMaxKeys
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var leaser Leaser
	if cfg.Journal != nil {
		var ok bool
		if leaser, ok = cfg.Importer.(Leaser); !ok {
			panic(fmt.Sprintf("importsrv: a Journal needs an Importer that leases windows, not %T", cfg.Importer))
		}
	}
	return &Handler{
		leaser:   leaser,
		slots:    make(chan struct{}, cfg.MaxConcurrent),
		cfg:      cfg,
		keys:     newDedup(cfg.DedupWindow, cfg.DedupMaxKeys),
		stats:    newHandlerStats(cfg.Stats),
		decoders: sync.Pool{New: func() any { return new(wire.Decoder) }},
		refusals: logthrottle.Throttle{Every: logEvery, Now: cfg.Now},
	}
}

// cause is why a request was refused; each is counted as
// import.errors{cause:<name>}.
type cause uint8

const (
	causeMethod cause = iota
	causeContentType
	causeEncoding
	causeKey
	causeBodyTooLarge
	causeDecodedTooLarge
	causeRead
	causeDecompress
	causeChecksum
	causeMagic
	causeVersion
	causeLimit
	causeMalformed
	causeBusy
	causeReadTimeout
	causeUnauthenticated // no token and no verified client certificate
	causeForbidden       // a wrong token, or imports refused to everyone
	causePanic           // the merge panicked; the batch is not acknowledged
	causeJournalFull     // the journal is at import_journal_max_bytes
	causeJournal         // the journal could not make the batch durable
	causeCount
)

var causeNames = [causeCount]string{
	causeMethod:          "method",
	causeContentType:     "content_type",
	causeEncoding:        "encoding",
	causeKey:             "key",
	causeBodyTooLarge:    "body_too_large",
	causeDecodedTooLarge: "decoded_too_large",
	causeRead:            "read",
	causeDecompress:      "decompress",
	causeChecksum:        "checksum",
	causeMagic:           "magic",
	causeVersion:         "version",
	causeLimit:           "limit",
	causeMalformed:       "malformed",
	causeBusy:            "busy",
	causeReadTimeout:     "read_timeout",
	causeUnauthenticated: "unauthenticated",
	causeForbidden:       "forbidden",
	causePanic:           "panic",
	causeJournalFull:     "journal_full",
	causeJournal:         "journal",
}

// causeStatus is the HTTP status of each cause.
var causeStatus = [causeCount]int{
	causeMethod:          http.StatusMethodNotAllowed,
	causeContentType:     http.StatusUnsupportedMediaType,
	causeEncoding:        http.StatusUnsupportedMediaType,
	causeKey:             http.StatusBadRequest,
	causeBodyTooLarge:    http.StatusRequestEntityTooLarge,
	causeDecodedTooLarge: http.StatusRequestEntityTooLarge,
	causeRead:            http.StatusBadRequest,
	causeDecompress:      http.StatusBadRequest,
	causeChecksum:        http.StatusBadRequest,
	causeMagic:           http.StatusBadRequest,
	causeVersion:         http.StatusBadRequest,
	causeLimit:           http.StatusBadRequest,
	causeMalformed:       http.StatusBadRequest,
	causeBusy:            http.StatusServiceUnavailable,
	// The sender was too slow, the batch was fine: it may try again.
	causeReadTimeout:     http.StatusRequestTimeout,
	causeUnauthenticated: http.StatusUnauthorized,
	causeForbidden:       http.StatusForbidden,
	causePanic:           http.StatusInternalServerError,
	// Nothing was merged: 503 is the answer a sender holds and resends on.
	causeJournalFull: http.StatusServiceUnavailable,
	causeJournal:     http.StatusServiceUnavailable,
}

type handlerStats struct {
	batches      *telemetry.Counter
	series       *telemetry.Counter
	bytesBody    *telemetry.Counter
	bytesDecoded *telemetry.Counter
	duplicates   *telemetry.Counter
	conflicts    *telemetry.Counter
	errors       [causeCount]*telemetry.Counter
	decodeTime   *telemetry.Histogram
	mergeTime    *telemetry.Histogram
}

func newHandlerStats(reg *telemetry.Registry) handlerStats {
	st := handlerStats{
		batches:      reg.Counter("import.batches"),
		series:       reg.Counter("import.series"),
		bytesBody:    reg.Counter("import.received_bytes", "encoding:compressed"),
		bytesDecoded: reg.Counter("import.received_bytes", "encoding:decoded"),
		duplicates:   reg.Counter("import.duplicates"),
		conflicts:    reg.Counter("import.conflicts"),
		decodeTime:   reg.Histogram("import.duration_seconds", "stage:decode"),
		mergeTime:    reg.Histogram("import.duration_seconds", "stage:merge"),
	}
	for c := range causeCount {
		st.errors[c] = reg.Counter("import.errors", "cause:"+causeNames[c])
	}
	return st
}

// admit takes a processing slot, waiting up to admissionWait for one.
func (h *Handler) admit(r *http.Request) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(admissionWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// ServeHTTP handles one forwarded batch: it checks the request, takes a
// processing slot, reads the body, claims the idempotency key and merges
// the batch (journaling it first when a journal is configured).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	enc, key, c, err := h.checkRequest(w, r)
	if err != nil {
		h.refuse(w, r, c, err)
		return
	}
	if !h.admit(r) {
		w.Header().Set("Retry-After", "1")
		h.refuse(w, r, causeBusy, fmt.Errorf("%d batches already being imported", cap(h.slots)))
		return
	}
	defer func() { <-h.slots }()
	// Not every ResponseWriter supports deadlines (test recorders); the
	// server's own does.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.BodyReadTimeout))

	// The body is read before the key is looked up, so that a sender is
	// never cut off mid-request: it would retry what may be a success.
	raw := h.getBuffer(r.ContentLength)
	defer h.putBuffer(raw)
	decoded := h.getBuffer(0)
	defer h.putBuffer(decoded)
	batch, c, err := h.readBody(w, r, enc, raw, decoded)
	if err != nil {
		h.refuse(w, r, c, err)
		return
	}

	state, claim := h.keys.begin(strings.Clone(key), h.cfg.Now())
	switch state {
	case keyDone:
		h.stats.duplicates.Inc()
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok (duplicate, not merged again)\n")
		return
	case keyBusy:
		h.stats.conflicts.Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "batch with this idempotency key is being merged; retry", http.StatusConflict)
		return
	}
	if c, err := h.decodeAndMerge(claim, key, enc, raw.Bytes(), batch); err != nil {
		if c == causeJournalFull {
			w.Header().Set("Retry-After", strconv.Itoa(journalFullRetrySeconds))
		}
		h.refuse(w, r, c, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
}

// journalFullRetrySeconds is the Retry-After of a full journal: room comes
// back when a window is flushed, once an interval.
const journalFullRetrySeconds = 5

// checkRequest checks what the headers say, before anything is read:
// who sends, the method, the media type, the encoding, the key and the
// declared length.
func (h *Handler) checkRequest(w http.ResponseWriter, r *http.Request) (journal.Encoding, string, cause, error) {
	if c, err := h.cfg.Auth.check(r); err != nil {
		if c == causeUnauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="veneur-lite import"`)
		}
		return 0, "", c, err
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, "", causeMethod, fmt.Errorf("method %s: only POST", r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != wire.ContentType {
		return 0, "", causeContentType, fmt.Errorf("content type %q: want %s", r.Header.Get("Content-Type"), wire.ContentType)
	}
	var enc journal.Encoding
	switch name := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); name {
	case "", "identity":
		enc = journal.Identity
	case "zstd":
		enc = journal.Zstd
	case "gzip":
		enc = journal.Gzip
	default:
		return 0, "", causeEncoding, fmt.Errorf("content encoding %q: want zstd, gzip or identity", name)
	}
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if err := checkKey(key); err != nil {
		return 0, "", causeKey, err
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return 0, "", causeBodyTooLarge, fmt.Errorf("body of %d bytes: at most %d", r.ContentLength, h.cfg.MaxBodyBytes)
	}
	return enc, key, 0, nil
}

// decodeAndMerge decodes the batch and merges it under the claimed key:
// the key is recorded as merged once it is (a resend is then acknowledged
// without merging), and dropped if nothing was (a resend is merged).
func (h *Handler) decodeAndMerge(claim *list.Element, key string, enc journal.Encoding, raw, decoded []byte) (cause, error) {
	began := time.Now()
	dec := h.decoders.Get().(*wire.Decoder)
	defer h.decoders.Put(dec)
	batch, err := dec.Decode(decoded, h.cfg.Limits)
	if err != nil {
		h.keys.abort(claim)
		return decodeCause(err), err
	}
	decodedAt := time.Now()
	var panicked error
	if h.cfg.Journal != nil {
		var c cause
		if c, panicked, err = h.journalAndMerge(batch, key, enc, raw); err != nil {
			h.keys.abort(claim)
			return c, err
		}
	} else {
		panicked = h.importBatch(batch, h.cfg.Importer.Import)
	}
	// Even a merge that panicked part way may have merged some of the
	// batch: the key is recorded, so that the sender's resend is not
	// merged a second time.
	h.keys.complete(claim, h.cfg.Now())
	if panicked != nil {
		return causePanic, panicked
	}
	h.stats.batches.Inc()
	h.stats.series.Add(uint64(len(batch.Series)))
	h.stats.decodeTime.ObserveDuration(decodedAt.Sub(began))
	h.stats.mergeTime.Since(decodedAt)
	return 0, nil
}

// journalAndMerge appends the batch, as received, to the journal of the
// window it merges into, and merges it once the record is durable. The
// window is leased throughout, so its flush (and the journal's forgetting
// of it) cannot come in between. An error means nothing was merged.
func (h *Handler) journalAndMerge(batch *wire.Batch, key string, enc journal.Encoding, raw []byte) (c cause, panicked, err error) {
	lease := h.leaser.Acquire(batch.IntervalStart, batch.Interval)
	defer lease.Release()
	rec := journal.Record{
		Key: key, IntervalStart: batch.IntervalStart, Interval: batch.Interval,
		Received: h.cfg.Now(), Encoding: enc, Body: raw,
	}
	if err := h.cfg.Journal.Append(lease.Window(), &rec); err != nil {
		if errors.Is(err, journal.ErrFull) {
			return causeJournalFull, nil, fmt.Errorf("%w: retry once a window is flushed", err)
		}
		return causeJournal, nil, err
	}
	return 0, h.importBatch(batch, func(_ time.Time, _ time.Duration, series []metric.Series) { lease.Import(series) }), nil
}

// Replay merges a batch the journal kept (journal.Open's replay function):
// decoded and merged as a live import is, its key recorded as merged, so
// that a sender's resend after the restart is acknowledged as a duplicate.
// It writes nothing to the journal. Call it before serving.
func (h *Handler) Replay(_ time.Time, rec *journal.Record) error {
	buf := h.getBuffer(0)
	defer h.putBuffer(buf)
	decoded, _, err := h.decompress(rec.Encoding, rec.Body, buf)
	if err != nil {
		return err
	}
	state, claim := h.keys.begin(rec.Key, rec.Received)
	if state != keyNew {
		return nil // the journal holds a key once; nothing to do twice
	}
	dec := h.decoders.Get().(*wire.Decoder)
	defer h.decoders.Put(dec)
	batch, err := dec.Decode(decoded, h.cfg.Limits)
	if err != nil {
		h.keys.abort(claim)
		return err
	}
	panicked := h.importBatch(batch, h.cfg.Importer.Import)
	h.keys.complete(claim, rec.Received)
	return panicked
}

// importBatch merges a decoded batch with merge, containing a panic: one
// bad batch must not take the endpoint, or the process, down.
func (h *Handler) importBatch(batch *wire.Batch, merge func(start time.Time, interval time.Duration, series []metric.Series)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("merge of %d series panicked (part of it may be merged): %v", len(batch.Series), p)
			h.cfg.Log.Error("import merge panicked", "error", err, "source", batch.Source, "stack", string(debug.Stack()))
		}
	}()
	merge(batch.IntervalStart, batch.Interval, batch.Series)
	return nil
}

// checkKey accepts 1 to MaxKeyBytes bytes of visible ASCII, which covers
// UUIDs and any hex or base64 form and keeps logs and memory sane.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("missing %s header", wire.HeaderIdempotencyKey)
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%s of %d bytes: at most %d", wire.HeaderIdempotencyKey, len(key), MaxKeyBytes)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < '!' || key[i] > '~' {
			return fmt.Errorf("%s: byte %d is not visible ASCII", wire.HeaderIdempotencyKey, i)
		}
	}
	return nil
}

// decoder decompresses zstd bodies; DecodeAll may be called concurrently.
// Its memory bound is set per handler by zstdDecoder.
func (h *Handler) zstdDecoder() *zstd.Decoder {
	h.zstdOnce.Do(func() {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(h.cfg.MaxDecodedBytes)))
		if err != nil {
			panic("importsrv: " + err.Error()) // valid options
		}
		h.zstd = d
	})
	return h.zstd
}

// readBody reads the body as sent into raw, within MaxBodyBytes, and
// returns the batch it holds (decompress).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, enc journal.Encoding, raw, decoded *bytes.Buffer) ([]byte, cause, error) {
	body := &countingReader{r: http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)}
	_, err := raw.ReadFrom(body)
	h.stats.bytesBody.Add(uint64(body.n))
	if err != nil {
		return nil, readCause(err, causeRead), fmt.Errorf("read body: %w", err)
	}
	return h.decompress(enc, raw.Bytes(), decoded)
}

// decompress decodes a body as sent, within MaxDecodedBytes, into dst, and
// returns the batch: in dst, or raw itself when it is not compressed.
func (h *Handler) decompress(enc journal.Encoding, raw []byte, dst *bytes.Buffer) ([]byte, cause, error) {
	switch enc {
	case journal.Zstd:
		// The decoder refuses to produce more than MaxDecodedBytes.
		out, err := h.zstdDecoder().DecodeAll(raw, dst.AvailableBuffer())
		h.stats.bytesDecoded.Add(uint64(len(out)))
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > int(h.cfg.MaxDecodedBytes) {
			return nil, causeDecodedTooLarge, fmt.Errorf("batch beyond %d bytes decoded", h.cfg.MaxDecodedBytes)
		}
		if err != nil {
			return nil, causeDecompress, fmt.Errorf("decompress: %w", err)
		}
		dst.Write(out) // in place when out is dst's own spare room
		return dst.Bytes(), 0, nil
	case journal.Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, causeDecompress, fmt.Errorf("decompress: %w", err)
		}
		// One byte more than allowed tells "exactly at the bound" from "beyond".
		n, err := dst.ReadFrom(io.LimitReader(zr, h.cfg.MaxDecodedBytes+1))
		h.stats.bytesDecoded.Add(uint64(n))
		if err != nil {
			return nil, causeDecompress, fmt.Errorf("read body: %w", err)
		}
	default:
		if int64(len(raw)) > h.cfg.MaxDecodedBytes {
			return nil, causeDecodedTooLarge, fmt.Errorf("batch beyond %d bytes decoded", h.cfg.MaxDecodedBytes)
		}
		h.stats.bytesDecoded.Add(uint64(len(raw)))
		return raw, 0, nil
	}
	if int64(dst.Len()) > h.cfg.MaxDecodedBytes {
		return nil, causeDecodedTooLarge, fmt.Errorf("batch beyond %d bytes decoded", h.cfg.MaxDecodedBytes)
	}
	return dst.Bytes(), 0, nil
}

// readCause tells a body over the size bound and a body that did not
// arrive within BodyReadTimeout from other read failures.
func readCause(err error, otherwise cause) cause {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return causeBodyTooLarge
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return causeReadTimeout
	}
	return otherwise
}

func decodeCause(err error) cause {
	switch {
	case errors.Is(err, wire.ErrChecksum):
		return causeChecksum
	case errors.Is(err, wire.ErrMagic):
		return causeMagic
	case errors.Is(err, wire.ErrVersion):
		return causeVersion
	case errors.Is(err, wire.ErrLimit):
		return causeLimit
	}
	return causeMalformed
}

// refuse answers a request that merged nothing, counts it and logs it
// (throttled).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, c cause, err error) {
	h.stats.errors[c].Inc()
	http.Error(w, err.Error(), causeStatus[c])

	ok, suppressed := h.refusals.Allow()
	if !ok {
		return
	}
	h.cfg.Log.Warn("import request refused",
		"cause", causeNames[c], "status", causeStatus[c], "error", err,
		"remote", r.RemoteAddr, "key", truncate(r.Header.Get(wire.HeaderIdempotencyKey), MaxKeyBytes),
		"suppressed_since_last", suppressed)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (h *Handler) getBuffer(contentLength int64) *bytes.Buffer {
	buf, _ := h.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	// A body's size is known: read it without regrowing.
	if contentLength > 0 && contentLength <= h.cfg.MaxBodyBytes {
		buf.Grow(int(contentLength) + 1) // +1: ReadFrom wants room to see EOF
	}
	return buf
}

func (h *Handler) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	h.bufs.Put(buf)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
