package datadog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/DataDog/agent-payload/v5/gogen"
	"github.com/klauspost/compress/zlib"

	"github.com/klauspost/compress/gzip"

	"github.com/veneur-lite/veneur-lite/metric"
)

// The series encoders write JSON by hand with strconv.Append*: a flush can
// hold hundreds of thousands of points, and BenchmarkEncodeSeries shows
// reflection-based encoding/json several times slower for the same bytes.

var errNonFinite = errors.New("value is NaN or infinite, which JSON cannot carry")

// appendSeriesV1 appends p as one element of the v1 "series" array.
//
// Every field is always present, as the Datadog Agent's v1 JSON has them
// (Veneur omits empty ones): a fleet-wide series has "host":"" and a
// tagless one "tags":[].
// Leaving them out is valid JSON for Datadog, but receivers that decode
// into reused structs keep the previous series' values for absent fields
// (VictoriaMetrics 1.79 gives a hostless series the host and tags of an
// earlier request), so absent must never be how "none" is said.
func appendSeriesV1(dst []byte, p *metric.Point, c *fieldCache) []byte {
	dst = append(dst, `{"metric":`...)
	dst = appendString(dst, p.Name)
	dst = append(dst, `,"points":[[`...)
	dst = strconv.AppendInt(dst, p.Timestamp, 10)
	dst = append(dst, ',')
	dst = appendFloat(dst, p.Value)
	if p.Type == metric.RatePoint {
		dst = append(dst, `]],"type":"rate","interval":`...)
		dst = strconv.AppendInt(dst, intervalSeconds(p.Interval), 10)
	} else {
		dst = append(dst, `]],"type":"gauge","interval":0`...)
	}
	dst = append(dst, `,"host":`...)
	dst = c.appendHost(dst, p.Host)
	dst = append(dst, `,"tags":`...)
	dst = c.appendTags(dst, p.Tags)
	return append(dst, '}')
}

// appendSeriesV2 appends p as one MetricPayload field-1 entry (one
// MetricSeries) in protobuf, with the Datadog Agent's own message types
// (agent-payload gogen), as the Agent posts /api/v2/series: the host as a
// "host" resource (none for a fleet-wide series), the type as RATE with
// its interval or GAUGE, one point with its timestamp. A body is these
// entries back to back, which is a MetricPayload.
func appendSeriesV2(dst []byte, p *metric.Point, c *fieldCache) []byte {
	if c == nil {
		c = new(fieldCache)
	}
	m := &c.pb
	m.point = gogen.MetricPayload_MetricPoint{Value: p.Value, Timestamp: p.Timestamp}
	m.points[0] = &m.point
	m.series = gogen.MetricPayload_MetricSeries{Metric: p.Name, Tags: p.Tags, Points: m.points[:], Type: gogen.MetricPayload_GAUGE}
	if p.Type == metric.RatePoint {
		m.series.Type, m.series.Interval = gogen.MetricPayload_RATE, intervalSeconds(p.Interval)
	}
	if p.Host != "" {
		m.resource = gogen.MetricPayload_Resource{Type: "host", Name: p.Host}
		m.resources[0] = &m.resource
		m.series.Resources = m.resources[:]
	}
	return appendField(dst, metricPayloadSeriesField, &m.series)
}

// sizedMessage is a gogen protobuf message.
type sizedMessage interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// appendField appends m as an embedded message under key: its
// length-prefixed encoding, written in place.
func appendField(dst []byte, key byte, m sizedMessage) []byte {
	size := m.Size()
	dst = append(dst, key)
	dst = binary.AppendUvarint(dst, uint64(size))
	at := len(dst)
	dst = append(dst, make([]byte, size)...)
	// MarshalToSizedBuffer cannot fail for a message its own Size measured.
	_, _ = m.MarshalToSizedBuffer(dst[at:])
	return dst
}

// metricPayloadSeriesField is the key of MetricPayload's field 1
// (repeated MetricSeries), wire type 2.
const metricPayloadSeriesField = 1<<3 | 2

// seriesProto holds one series' protobuf messages, reused from one point
// to the next.
type seriesProto struct {
	series    gogen.MetricPayload_MetricSeries
	point     gogen.MetricPayload_MetricPoint
	points    [1]*gogen.MetricPayload_MetricPoint
	resource  gogen.MetricPayload_Resource
	resources [1]*gogen.MetricPayload_Resource
}

// fieldCache keeps the JSON of the last point's host and tags. The points
// of one series come one after the other and share one Tags slice (see
// aggregate.Flushed), and most points of an instance share its host, so
// each is escaped once per series, not once per point: on a flush of
// histogram aggregates, that is most of the encoding. A nil cache encodes
// every time.
type fieldCache struct {
	pb       seriesProto // v2's messages
	tags     []string
	tagsJSON []byte
	host     string
	hostJSON []byte
}

func (c *fieldCache) appendTags(dst []byte, tags []string) []byte {
	if c == nil {
		return appendTags(dst, tags)
	}
	if !sameSlice(tags, c.tags) || c.tagsJSON == nil {
		c.tags, c.tagsJSON = tags, appendTags(c.tagsJSON[:0], tags)
	}
	return append(dst, c.tagsJSON...)
}

func (c *fieldCache) appendHost(dst []byte, host string) []byte {
	if c == nil {
		return appendString(dst, host)
	}
	if host != c.host || c.hostJSON == nil {
		c.host, c.hostJSON = host, appendString(c.hostJSON[:0], host)
	}
	return append(dst, c.hostJSON...)
}

// sameSlice reports whether a and b are the same slice: same array, same
// length. Tags are read-only once flushed, so the same slice holds the
// same tags.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// intervalSeconds is the "interval" field of a rate: whole seconds, at
// least one, since Datadog multiplies the rate back by it.
func intervalSeconds(d time.Duration) int64 {
	s := int64((d + time.Second/2) / time.Second)
	return max(s, 1)
}

// appendTags appends tags as a JSON array, [] when there are none.
func appendTags(dst []byte, tags []string) []byte {
	dst = append(dst, '[')
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t)
	}
	return append(dst, ']')
}

// appendFloat appends f as a JSON number. f must be finite. Plain notation
// is used where it is short, as encoding/json does.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64)
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes a JSON string carries as they are: printable
// ASCII but the quote and the backslash. One table load per byte is what
// names and tags, nearly always plain, cost to escape.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// with encoding/json, so the body always stays valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEvent appends e as the body of POST /api/v1/events. Empty optional
// fields are left out so that Datadog applies its own defaults.
func appendEvent(dst []byte, e *metric.Event, now int64) []byte {
	dst = append(dst, `{"title":`...)
	dst = appendString(dst, e.Title)
	dst = append(dst, `,"text":`...)
	dst = appendString(dst, e.Text)
	ts := e.Timestamp
	if ts == 0 {
		ts = now
	}
	dst = append(dst, `,"date_happened":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = appendOptional(dst, `,"host":`, e.Hostname)
	dst = appendOptional(dst, `,"aggregation_key":`, e.AggregationKey)
	dst = appendOptional(dst, `,"priority":`, e.Priority)
	dst = appendOptional(dst, `,"source_type_name":`, e.SourceType)
	dst = appendOptional(dst, `,"alert_type":`, e.AlertType)
	if len(e.Tags) > 0 {
		dst = append(dst, `,"tags":`...)
		dst = appendTags(dst, e.Tags)
	}
	return append(dst, '}')
}

// appendCheck appends c as one element of the POST /api/v1/check_run
// array. check, host_name, status and tags are required by the API, so
// they are always present.
func appendCheck(dst []byte, c *metric.ServiceCheck, now int64) []byte {
	dst = append(dst, `{"check":`...)
	dst = appendString(dst, c.Name)
	dst = append(dst, `,"host_name":`...)
	dst = appendString(dst, c.Hostname)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendUint(dst, uint64(c.Status), 10)
	ts := c.Timestamp
	if ts == 0 {
		ts = now
	}
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = appendOptional(dst, `,"message":`, c.Message)
	dst = append(dst, `,"tags":`...)
	dst = appendTags(dst, c.Tags)
	return append(dst, '}')
}

func appendOptional(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendString(dst, v)
}

// limits bound one request body.
type limits struct {
	maxItems      int
	maxRaw        int // uncompressed bytes
	maxCompressed int // bytes on the wire
}

// Datadog's documented payload limits for the series intakes: at most
// 3,200,000 bytes on the wire for v1 and 512,000 for v2, and a decompressed
// size "less than" 62,914,560 and 5,242,880 bytes.
var (
	v1Limits = limits{maxRaw: 62_914_560 - 1, maxCompressed: 3_200_000}
	v2Limits = limits{maxRaw: 5_242_880 - 1, maxCompressed: 512_000}
)

// checkLimits bound a check_run body. The API documents no size limit for
// it; service checks are few, so these are kept modest, well under the
// series ones.
var checkLimits = limits{maxItems: 1000, maxRaw: 512_000, maxCompressed: 512_000}

// compressor is what *zlib.Writer and *gzip.Writer have in common.
type compressor interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// body is one request body being built: a JSON array of items between a
// prefix and a suffix, compressed as it is written so that a full body never
// exists twice in memory. Bodies are pooled; the compressor's state is the
// costly part to allocate.
type body struct {
	buf     bytes.Buffer // what goes on the wire
	zw      compressor   // nil: the body is sent uncompressed
	items   int
	raw     int // uncompressed bytes written
	pending int // uncompressed bytes written since the compressor was last flushed
}

// compressionLevel is klauspost/compress's fastest. On benchPoints (v1
// JSON, written in 4 KiB pieces) it makes 18.8 bytes per series in 350 ns,
// where the default level (5, what the Agent uses) makes 17.7 in 620 ns:
// 6% more bytes for 44% less CPU, which is most of what a flush of a
// million series costs. (The standard library's level 1 made bodies 42%
// larger than its default.)
const compressionLevel = zlib.BestSpeed

func newBody(compression string) *body {
	b := &body{}
	switch compression {
	case "gzip":
		b.zw, _ = gzip.NewWriterLevel(&b.buf, compressionLevel)
	case "deflate":
		b.zw, _ = zlib.NewWriterLevel(&b.buf, compressionLevel)
	}
	return b
}

func (b *body) reset() {
	b.buf.Reset()
	if b.zw != nil {
		b.zw.Reset(&b.buf)
	}
	b.items, b.raw, b.pending = 0, 0, 0
}

func (b *body) write(p []byte) error {
	b.raw += len(p)
	if b.zw == nil {
		_, err := b.buf.Write(p)
		return err
	}
	b.pending += len(p)
	_, err := b.zw.Write(p)
	return err
}

// worstCompressed bounds what n uncompressed bytes can grow to: deflate
// falls back to stored blocks of at most 64 KiB with a 5-byte header, and
// Go's compressor ends a block at least every 16 Ki tokens. The constant
// covers the zlib or gzip header and trailer and the final empty block.
func worstCompressed(n int) int {
	return n + 5*(n/16384+1) + 32
}

// fits reports whether an item of n bytes (its separator included) can go
// into b and still leave room for suffix, within l.
func (b *body) fits(n, suffix int, l limits) (bool, error) {
	if b.items >= l.maxItems || b.raw+n+suffix > l.maxRaw {
		return false, nil
	}
	if b.zw == nil {
		return b.raw+n+suffix <= l.maxCompressed, nil
	}
	if b.buf.Len()+worstCompressed(b.pending+n+suffix) <= l.maxCompressed {
		return true, nil
	}
	if b.pending == 0 {
		return false, nil
	}
	// The estimate assumes everything the compressor still holds is
	// incompressible. Near the limit, flush it to learn the real size
	// instead of cutting the body early; this costs a few bytes per flush
	// and happens a handful of times per full body.
	if err := b.zw.Flush(); err != nil {
		return false, err
	}
	b.pending = 0
	return b.buf.Len()+worstCompressed(n+suffix) <= l.maxCompressed, nil
}

func (b *body) close(suffix []byte) error {
	if err := b.write(suffix); err != nil {
		return err
	}
	if b.zw == nil {
		return nil
	}
	return b.zw.Close()
}

// chunker splits a stream of encoded items into bodies within limits and
// hands each finished body to emit, which takes ownership of it.
type chunker struct {
	prefix, suffix []byte
	// noSeparator writes items back to back (protobuf repeated fields)
	// instead of comma-separated (a JSON array).
	noSeparator bool
	lim         limits
	get         func() *body
	put         func(*body)
	// emit sends or releases b; false stops the chunker (the flush is
	// out of time).
	emit    func(b *body) bool
	cur     *body
	stopped bool
	err     error // why the chunker stopped on its own, if it did
	lost    int   // items in bodies the chunker discarded after an error
}

// errTooLarge is returned by add for an item that exceeds the limits even
// in an empty body.
var errTooLarge = errors.New("item exceeds the payload size limit on its own")

// add appends one encoded item (without separator), starting a new body when
// the current one is full. It returns errTooLarge, and keeps going, for an
// item that fits in no body. It returns false once stopped: the item was
// not taken, nor will any later one be.
func (c *chunker) add(item []byte) (bool, error) {
	for !c.stopped {
		if c.cur == nil {
			c.cur = c.get()
			if err := c.cur.write(c.prefix); err != nil {
				c.fail(err)
				return false, nil
			}
		}
		sep := 0
		if c.cur.items > 0 && !c.noSeparator {
			sep = 1
		}
		ok, err := c.cur.fits(len(item)+sep, len(c.suffix), c.lim)
		if err != nil {
			c.fail(err)
			return false, nil
		}
		if ok {
			if sep == 1 {
				err = c.cur.write(comma)
			}
			if err == nil {
				err = c.cur.write(item)
			}
			if err != nil {
				c.fail(err)
				return false, nil
			}
			c.cur.items++
			return true, nil
		}
		if c.cur.items == 0 {
			return true, errTooLarge
		}
		c.finish()
	}
	return false, nil
}

var comma = []byte{','}

// fail stops the chunker after a compressor error, dropping the current
// body rather than sending a truncated one. Writes into a bytes.Buffer do
// not fail in practice; this keeps the impossible case safe.
func (c *chunker) fail(err error) {
	c.err = err
	c.stopped = true
	if c.cur != nil {
		c.lost += c.cur.items
		c.put(c.cur)
		c.cur = nil
	}
}

// finish closes and emits the current body if it has items.
func (c *chunker) finish() {
	if c.stopped || c.cur == nil || c.cur.items == 0 {
		return
	}
	if err := c.cur.close(c.suffix); err != nil {
		c.fail(err)
		return
	}
	b := c.cur
	c.cur = nil
	if !c.emit(b) {
		c.stopped = true
	}
}

// flush emits the last body and releases the chunker's resources.
func (c *chunker) flush() {
	c.finish()
	if c.cur != nil {
		c.put(c.cur)
		c.cur = nil
	}
}
