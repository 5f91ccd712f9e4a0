package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// reason is why a line (or part of it) was rejected; it indexes the parse
// error counters.
type reason uint8

// The reasons a DogStatsD line, value or field can be refused.
const (
	// reasonBadFormat: no "|type", no ':' after the name, an empty name or a
	// control character in it (or a newline inside a line given to
	// parseLine).
	reasonBadFormat reason = iota
	// reasonUnknownType: the type field is none of c, g, h, ms, d, s.
	reasonUnknownType
	// reasonBadValue: an empty, unparsable, NaN or infinite value, or an
	// empty set member. Counted per value of a multi-value line, where an
	// empty or blank value rejects the whole line, as in the Datadog Agent.
	reasonBadValue
	// reasonBadSampleRate: "@rate" is a number outside (0,1] (NaN and ±Inf
	// included), in which case the line is kept with rate 1; or it is empty
	// or not a number at all ("|@", "|@abc"), which rejects the line as the
	// Datadog Agent does.
	reasonBadSampleRate
	// reasonLineTooLong: the line is longer than metric_max_length.
	reasonLineTooLong
	// reasonInvalidUTF8: the line is not valid UTF-8.
	reasonInvalidUTF8
	// reasonBadEvent: a malformed "_e{...}" line, which is rejected; or an
	// optional field of an event with a bad value (d:abc, p:urgent,
	// t:test), which is ignored and the event kept, as in the Agent.
	reasonBadEvent
	// reasonBadServiceCheck: a malformed "_sc|..." line, which is
	// rejected; or a service check's d: that is not an integer, which is
	// ignored and the check kept.
	reasonBadServiceCheck
	// reasonBadTimestamp: a "|T" field that is not a positive decimal int64
	// ("|T", "|TABCD", "|T1.5", "|T0", "|T-1"); the line is rejected, as in
	// the Datadog Agent (a timestamp is a Unix second after the epoch). A
	// valid one is accepted and its value ignored: samples are aggregated
	// into the arrival interval.
	reasonBadTimestamp

	// numReasons is the number of reasons, for sizing arrays indexed by reason.
	numReasons
)

var reasonNames = [numReasons]string{
	reasonBadFormat:       "bad_format",
	reasonUnknownType:     "unknown_type",
	reasonBadValue:        "bad_value",
	reasonBadSampleRate:   "bad_sample_rate",
	reasonLineTooLong:     "line_too_long",
	reasonInvalidUTF8:     "invalid_utf8",
	reasonBadEvent:        "bad_event",
	reasonBadServiceCheck: "bad_service_check",
	reasonBadTimestamp:    "bad_timestamp",
}

// String returns the reason in snake_case, as used in the "reason:" tag of
// the listener.parse_errors self-metric.
func (r reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason_" + strconv.Itoa(int(r))
}

// parseError is the error parseLine returns for a rejected line.
type parseError struct {
	reason reason
	// line is the start of the offending line (at most errorQuoteMax bytes,
	// "..." appended when it was cut), so that errors of huge lines stay
	// readable in logs.
	line string
	// msg says what was wrong, e.g. `unknown metric type "zz"`.
	msg string
}

func (e *parseError) Error() string {
	return "parse " + strconv.Quote(e.line) + ": " + e.msg
}

// errorQuoteMax bounds how much of the input an error quotes.
const errorQuoteMax = 64

func truncateForError(b []byte) string {
	if len(b) > errorQuoteMax {
		return string(b[:errorQuoteMax]) + "..."
	}
	return string(b)
}

// Parser parses DogStatsD packets. It holds only its configuration and
// counters, so one Parser is safe for concurrent use by every reader.
type Parser struct {
	maxLineLength int
	// errs always counts, so that errorCount works without a registry; tel
	// mirrors it into the self-metrics (nil counters when there is no
	// registry, which ignore Add).
	errs [numReasons]atomic.Uint64
	tel  [numReasons]*telemetry.Counter
}

// NewParser returns a parser that rejects lines longer than maxLineLength
// bytes (metric_max_length; 0 or less means no limit). It registers the
// counter listener.parse_errors{reason:<r>} in reg for every reason; reg may be nil.
func NewParser(maxLineLength int, reg *telemetry.Registry) *Parser {
	p := &Parser{maxLineLength: maxLineLength}
	for r := range numReasons {
		p.tel[r] = reg.Counter("listener.parse_errors", "reason:"+r.String())
	}
	return p
}

// errorCount returns how many times r was counted so far.
func (p *Parser) errorCount(r reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return p.errs[r].Load()
}

func (p *Parser) count(r reason) {
	p.errs[r].Add(1)
	p.tel[r].Inc()
}

// countLineTooLong is for stream readers that discard a line too long to
// buffer before it ever reaches the parser.
func (p *Parser) countLineTooLong() { p.count(reasonLineTooLong) }

// Parse splits packet into lines and appends every good sample, event and
// service check to b. Lines end with "\n" or "\r\n" (a '\r' ending any
// line is dropped); a trailing newline and empty lines are fine. A bad line
// is counted by reason and skipped without affecting the other lines; Parse
// returns how many lines it rejected.
//
// The Name, Tags and SetMember of the appended samples are sub-slices of
// packet: they are valid only until the caller reuses the read buffer.
// Events and service checks are copied. On the path of good metric lines
// Parse does not allocate, beyond growing b.Samples.
func (p *Parser) Parse(packet []byte, b *metric.Batch) (rejected int) {
	// One pass over the whole datagram is cheaper than one per line, and
	// nearly every packet is valid. When it is not, each line is checked
	// on its own so that one bad line does not cost its neighbours. (A
	// valid packet has valid lines: '\n' and '\r' never occur inside a
	// multi-byte sequence.)
	valid := utf8.Valid(packet)
	var f failure // scratch: Parse does not report why a line failed
	for len(packet) > 0 {
		line := packet
		if i := bytes.IndexByte(packet, '\n'); i >= 0 {
			line, packet = packet[:i], packet[i+1:]
		} else {
			packet = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		if !p.parseOne(line, b, valid, &f) {
			rejected++
		}
	}
	return rejected
}

// parseLine parses one line, as Parse does for each line of a packet, and
// appends what it yields to b. A trailing '\r' is dropped and an empty line
// yields nothing and no error.
//
// Every problem found is counted (see errorCount), including those that do not
// reject the line: a bad sample rate, or a bad value next to good ones in a
// multi-value line. The error is nil when the line yielded something, else
// a *parseError. Samples reference line, as with Parse.
func (p *Parser) parseLine(line []byte, b *metric.Batch) error {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return nil
	}
	var f failure
	var ok bool
	if bytes.IndexByte(line, '\n') >= 0 {
		// Parse never passes one; refuse it rather than let a newline into
		// a name or tags.
		ok = p.reject(&f, reasonBadFormat, "newline inside a line")
	} else {
		ok = p.parseOne(line, b, false, &f)
	}
	if ok {
		return nil
	}
	msg := f.msg
	switch {
	case f.reason == reasonLineTooLong:
		msg = fmt.Sprintf("line of %d bytes is longer than metric_max_length %d", len(line), p.maxLineLength)
	case f.quote:
		msg += " " + strconv.Quote(truncateForError(f.arg))
	}
	return &parseError{reason: f.reason, line: truncateForError(line), msg: msg}
}

// failure says why a line was rejected, without allocating, so that Parse
// stays allocation-free even on garbage; parseLine turns it into a
// *parseError. The parse functions report success as a bool and fill a
// failure only when they fail, rather than return the struct and copy it
// up through every level for every good line.
type failure struct {
	msg    string // static description
	arg    []byte // the offending part of the line, quoted when quote is set
	quote  bool
	reason reason
}

// reject counts r, describes the failure in f and returns false, for
// "return p.reject(...)".
func (p *Parser) reject(f *failure, r reason, msg string) bool {
	p.count(r)
	*f = failure{reason: r, msg: msg}
	return false
}

// rejectArg is reject quoting the offending bytes in the error.
func (p *Parser) rejectArg(f *failure, r reason, msg string, arg []byte) bool {
	p.count(r)
	*f = failure{reason: r, msg: msg, arg: arg, quote: true}
	return false
}

// parseOne parses one non-empty line without its newline and reports
// whether it yielded anything; if not, f says why. utf8Checked says that
// the caller has already validated the line's encoding.
func (p *Parser) parseOne(line []byte, b *metric.Batch, utf8Checked bool, f *failure) bool {
	if p.maxLineLength > 0 && len(line) > p.maxLineLength {
		return p.reject(f, reasonLineTooLong, "line too long")
	}
	if !utf8Checked && !utf8.Valid(line) {
		return p.reject(f, reasonInvalidUTF8, "invalid utf-8")
	}
	// Events and service checks are told apart by their prefix. Matching
	// "_sc|" rather than the Agent's "_sc" keeps a metric named "_sc"
	// ("_sc:1|c") a metric.
	if len(line) >= 3 && line[0] == '_' {
		if line[1] == 'e' && line[2] == '{' {
			return p.parseEvent(line, b, f)
		}
		if len(line) >= 4 && line[1] == 's' && line[2] == 'c' && line[3] == '|' {
			return p.parseServiceCheck(line, b, f)
		}
	}
	return p.parseMetric(line, b, f)
}

// parseMetric parses name:value[:value...]|type[|field...].
func (p *Parser) parseMetric(line []byte, b *metric.Batch, f *failure) bool {
	colon := nameEnd(line)
	switch {
	case colon == len(line):
		return p.reject(f, reasonBadFormat, "missing metric type")
	case line[colon] == '|':
		return p.reject(f, reasonBadFormat, "missing ':' between name and value")
	case line[colon] != ':':
		return p.reject(f, reasonBadFormat, "control character in metric name")
	case colon == 0:
		return p.reject(f, reasonBadFormat, "empty metric name")
	}
	name := line[:colon]

	// The value field is short (a number or a set member), so a byte loop
	// beats IndexByte's call and setup; it also notes the ':' of a
	// multi-value line.
	i := colon + 1
	multi := false
	for ; i < len(line) && line[i] != '|'; i++ {
		if line[i] == ':' {
			multi = true
		}
	}
	if i == len(line) {
		return p.reject(f, reasonBadFormat, "missing metric type")
	}
	raw, rest := line[colon+1:i], line[i+1:]

	// The type: its one or two bytes are read directly, which costs less
	// than searching for the '|' after it.
	kind, n := metric.KindInvalid, 1
	if len(rest) > 0 {
		switch rest[0] {
		case 'c':
			kind = metric.Counter
		case 'g':
			kind = metric.Gauge
		case 'h':
			kind = metric.Histogram
		case 'd':
			kind = metric.Distribution
		case 's':
			kind = metric.Set
		case 'm':
			if len(rest) >= 2 && rest[1] == 's' {
				kind, n = metric.Histogram, 2
			}
		}
	}
	if kind == metric.KindInvalid || (len(rest) > n && rest[n] != '|') {
		typ, _, _ := bytes.Cut(rest, []byte("|"))
		return p.rejectArg(f, reasonUnknownType, "unknown metric type", typ)
	}
	if len(rest) > n {
		rest = rest[n+1:]
	} else {
		rest = nil
	}

	// Optional fields come in any order. Only the rate and the tags matter
	// here; |T<ts> is checked but aggregated into the arrival interval,
	// |c:, |e: and |card: are origin detection we do not do, and any other
	// field is skipped so that newer clients keep working. A repeated
	// field: the last one wins, as in the Datadog Agent; but, as there, a
	// rate or timestamp that is not a number rejects the line wherever it
	// stands.
	var tags []byte
	rate := float32(1)
	badRate := false
	for len(rest) > 0 {
		field := rest
		if i := bytes.IndexByte(rest, '|'); i >= 0 {
			field, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(field) == 0 {
			continue
		}
		switch field[0] {
		case '#':
			tags = field[1:]
		case '@':
			r, st := parseRate(field[1:])
			switch st {
			case rateOK:
				rate, badRate = r, false
			case rateOutOfRange:
				rate, badRate = 1, true
			default:
				return p.rejectArg(f, reasonBadSampleRate, "invalid sample rate", field[1:])
			}
		case 'T':
			if !isPositiveInt64(field[1:]) {
				return p.rejectArg(f, reasonBadTimestamp, "invalid timestamp", field[1:])
			}
		}
	}

	switch {
	case kind == metric.Set:
		// A set member is a string and may itself contain ':'.
		if len(raw) == 0 {
			return p.reject(f, reasonBadValue, "empty set member")
		}
		appendSample(b, name, tags, raw, 0, rate, kind)
	case !multi:
		v, ok := parseValue(raw)
		if !ok {
			return p.rejectArg(f, reasonBadValue, "invalid value", raw)
		}
		appendSample(b, name, tags, nil, v, rate, kind)
	default:
		// name:v1:v2:v3 (protocol 1.1) is one sample per value; a bad value
		// is dropped and counted alone, but an empty or blank one ("x: :1|g",
		// "x:1:|g") rejects the whole line, as the Datadog Agent does: the
		// line is malformed rather than one value out of range.
		good, bad := 0, 0
		start := len(b.Samples)
		for {
			val := raw
			i := bytes.IndexByte(raw, ':')
			if i >= 0 {
				val, raw = raw[:i], raw[i+1:]
			}
			if isBlank(val) {
				b.Samples = b.Samples[:start]
				return p.rejectArg(f, reasonBadValue, "empty value in a multi-value line", val)
			}
			if v, ok := parseValue(val); ok {
				appendSample(b, name, tags, nil, v, rate, kind)
				good++
			} else {
				p.count(reasonBadValue)
				if bad == 0 {
					*f = failure{reason: reasonBadValue, msg: "invalid value", arg: val, quote: true}
				}
				bad++
			}
			if i < 0 {
				break
			}
		}
		if good == 0 {
			return false // each bad value is already counted
		}
	}
	// A bad rate is counted only for a line that is kept: a rejected line
	// counts once, under the reason it was rejected for.
	if badRate {
		p.count(reasonBadSampleRate)
	}
	return true
}

// appendSample appends one sample to b, writing its fields in place: an
// append of a Sample literal builds it on the stack and then copies it,
// which measured twice as slow per sample.
func appendSample(b *metric.Batch, name, tags, member []byte, v float64, rate float32, kind metric.Kind) {
	ss := b.Samples
	if len(ss) == cap(ss) {
		ss = slices.Grow(ss, 1)
	}
	ss = ss[:len(ss)+1]
	s := &ss[len(ss)-1]
	s.Name, s.Tags, s.SetMember = name, tags, member
	s.Value, s.Rate, s.Kind = v, rate, kind
	b.Samples = ss
}

// nameStop marks the bytes that end a metric name (':', and '|' for a line
// without one) or may not be in it (ASCII controls).
var nameStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t[0x7f], t[':'], t['|'] = true, true, true
	return t
}()

// nameEnd returns the index of the first byte of line that ends a metric
// name or may not be in it (see nameStop), len(line) if none. Names are the
// longest field scanned byte by byte, so it tests eight bytes at a time.
func nameEnd(line []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:])
		// (x-ones)&^x&highs flags the zero bytes of x, and (w-n*ones)&^w&highs
		// the bytes of w below n. Both may also flag bytes above a true
		// match (a borrow runs upwards) but never below one, so the lowest
		// flag is the first stop byte.
		colon, pipe, del := w^(':'*ones), w^('|'*ones), w^(0x7f*ones)
		m := (colon-ones)&^colon | (pipe-ones)&^pipe | (del-ones)&^del | (w-0x20*ones)&^w
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(line) && !nameStop[line[i]] {
		i++
	}
	return i
}

// rateStatus is what parseRate found.
type rateStatus uint8

const (
	rateOK         rateStatus = iota
	rateOutOfRange            // a number, but not in (0,1]: counted, rate 1
	rateInvalid               // not a number: the line is bad
)

// parseRate parses a sample rate, which must be in (0,1] and stay non-zero
// as the float32 a Sample carries. "Not a number" is strconv.ParseFloat's
// syntax error, as in the Datadog Agent: "NaN", "Inf" and "1e400" are
// numbers, just not rates.
func parseRate(s []byte) (float32, rateStatus) {
	r, ok := parseSimpleDecimal(s)
	if !ok {
		// The unsafe string lives only for this call (see parseValue).
		var err error
		r, err = strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, rateInvalid
		}
	}
	if !(r > 0 && r <= 1) || float32(r) == 0 {
		return 0, rateOutOfRange
	}
	return float32(r), rateOK
}

// isPositiveInt64 reports whether s is a decimal int64 above zero.
func isPositiveInt64(s []byte) bool {
	if !isInt64(s) || (len(s) > 0 && s[0] == '-') {
		return false
	}
	for _, c := range s {
		if c >= '1' && c <= '9' {
			return true
		}
	}
	return false
}

// isBlank reports whether s is empty or only spaces and tabs.
func isBlank(s []byte) bool {
	for _, c := range s {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// isInt64 reports whether s is a decimal int64 as strconv.ParseInt(s, 10,
// 64) reads it (an optional sign, then digits), without its allocation of
// an error for the bad ones.
func isInt64(s []byte) bool {
	limit := uint64(math.MaxInt64)
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			limit++
		}
		s = s[1:]
	}
	if len(s) == 0 {
		return false
	}
	var n uint64
	for _, c := range s {
		d := uint64(c - '0')
		if d > 9 || n > (limit-d)/10 {
			return false
		}
		n = n*10 + d
	}
	return true
}

// parseValue parses a finite float64 with strconv.ParseFloat's syntax.
func parseValue(s []byte) (float64, bool) {
	if f, ok := parseSimpleDecimal(s); ok {
		return f, true
	}
	// The unsafe string lives only for this call: ParseFloat keeps no
	// reference to its input (its errors carry a copy).
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// float64pow10 holds the powers of ten that float64 represents exactly.
var float64pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// parseSimpleDecimal is the fast path for what clients actually send:
// [+-]digits[.digits] with at most 15 significant digits. The mantissa is
// then an exact float64 and the power of ten too, and one IEEE division
// rounds correctly, so the result equals strconv.ParseFloat's. Anything
// else reports false and goes to ParseFloat.
func parseSimpleDecimal(s []byte) (float64, bool) {
	i := 0
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		i = 1
	}
	// Overflow of mant past 19 digits is harmless: such input is refused
	// below for having more than 15.
	var mant uint64
	start := i
	for ; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			break
		}
		mant = mant*10 + uint64(d)
	}
	digits, frac := i-start, 0
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for ; i < len(s); i++ {
			d := s[i] - '0'
			if d > 9 {
				break
			}
			mant = mant*10 + uint64(d)
		}
		frac = i - start
		digits += frac
	}
	if i != len(s) || digits == 0 || digits > 15 {
		return 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= float64pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

// parseEvent parses
//
//	_e{<title length>,<text length>}:<title>|<text>[|d:ts|h:host|k:key|p:priority|s:source|t:alert type|#tags]
//
// where the lengths count the bytes as sent, escapes included, and must
// match exactly. Optional fields come in any order and unknown ones are
// skipped. As in the Datadog Agent, a known field with an invalid value
// (d:abc, p:urgent, t:test) is ignored and the event kept; it is counted
// as bad_event all the same, so that a client sending it can be found.
func (p *Parser) parseEvent(line []byte, b *metric.Batch, f *failure) bool {
	s := line[len("_e{"):]
	titleLen, n := parseLength(s)
	if n == 0 || n >= len(s) || s[n] != ',' {
		return p.reject(f, reasonBadEvent, "malformed event header")
	}
	s = s[n+1:]
	textLen, n := parseLength(s)
	if n == 0 || n+1 >= len(s) || s[n] != '}' || s[n+1] != ':' {
		return p.reject(f, reasonBadEvent, "malformed event header")
	}
	s = s[n+2:]
	if titleLen == 0 {
		return p.reject(f, reasonBadEvent, "empty event title")
	}
	// Written to stay clear of overflow: both lengths may be huge.
	if titleLen >= len(s) || textLen > len(s)-titleLen-1 {
		return p.reject(f, reasonBadEvent, "event shorter than its header says")
	}
	end := titleLen + 1 + textLen
	if s[titleLen] != '|' || (end < len(s) && s[end] != '|') {
		return p.reject(f, reasonBadEvent, "event title or text length does not match its header")
	}

	ev := metric.Event{
		Title:     unescapeNewlines(s[:titleLen]),
		Text:      unescapeNewlines(s[titleLen+1 : end]),
		Priority:  "normal",
		AlertType: "info",
	}
	var host, tags []byte
	badField := false
	rest := s[end:]
	for len(rest) > 0 {
		rest = rest[1:] // the '|' before each field
		field := rest
		if i := bytes.IndexByte(rest, '|'); i >= 0 {
			field, rest = rest[:i], rest[i:]
		} else {
			rest = nil
		}
		switch {
		case bytes.HasPrefix(field, []byte("d:")):
			if ts, err := strconv.ParseInt(string(field[2:]), 10, 64); err == nil {
				ev.Timestamp = ts
			} else {
				badField = true
			}
		case bytes.HasPrefix(field, []byte("h:")):
			host = field[2:]
		case bytes.HasPrefix(field, []byte("k:")):
			ev.AggregationKey = string(field[2:])
		case bytes.HasPrefix(field, []byte("p:")):
			switch v := string(field[2:]); v {
			case "normal", "low":
				ev.Priority = v
			default:
				badField = true
			}
		case bytes.HasPrefix(field, []byte("s:")):
			ev.SourceType = string(field[2:])
		case bytes.HasPrefix(field, []byte("t:")):
			switch v := string(field[2:]); v {
			case "info", "error", "warning", "success":
				ev.AlertType = v
			default:
				badField = true
			}
		case bytes.HasPrefix(field, []byte("#")):
			tags = field[1:]
		}
	}
	ev.Tags, ev.Hostname, ev.HostSet = eventTags(tags, host)
	if badField {
		p.count(reasonBadEvent)
	}
	b.Events = append(b.Events, ev)
	return true
}

// parseServiceCheck parses
//
//	_sc|<name>|<status>[|d:ts|h:host|#tags|m:message]
//
// As in the Datadog Agent, m: is a field like the others and ends at the
// next '|': datadog-go v5 writes its |c: container field after the message.
// The message is kept as sent (datadog-go's "\n" and "m\:" escapes are not
// undone, as the Agent does not undo them either). A d: that is not an
// integer is ignored, the check kept and the field counted as
// bad_service_check, as parseEvent does for events.
func (p *Parser) parseServiceCheck(line []byte, b *metric.Batch, f *failure) bool {
	s := line[len("_sc|"):]
	name, s, ok := bytes.Cut(s, []byte("|"))
	if len(name) == 0 {
		return p.reject(f, reasonBadServiceCheck, "empty service check name")
	}
	if !ok {
		return p.reject(f, reasonBadServiceCheck, "missing service check status")
	}
	status, rest, more := bytes.Cut(s, []byte("|"))
	if len(status) != 1 || status[0] < '0' || status[0] > '3' {
		return p.rejectArg(f, reasonBadServiceCheck, "invalid service check status", status)
	}
	sc := metric.ServiceCheck{
		Name:   string(name),
		Status: metric.CheckStatus(status[0] - '0'),
	}
	var host, tags []byte
	badField := false
	for more {
		var field []byte
		field, rest, more = bytes.Cut(rest, []byte("|"))
		switch {
		case bytes.HasPrefix(field, []byte("d:")):
			if ts, err := strconv.ParseInt(string(field[2:]), 10, 64); err == nil {
				sc.Timestamp = ts
			} else {
				badField = true
			}
		case bytes.HasPrefix(field, []byte("h:")):
			host = field[2:]
		case bytes.HasPrefix(field, []byte("m:")):
			sc.Message = string(field[2:])
		case bytes.HasPrefix(field, []byte("#")):
			tags = field[1:]
		}
	}
	sc.Tags, sc.Hostname, sc.HostSet = eventTags(tags, host)
	if badField {
		p.count(reasonBadServiceCheck)
	}
	b.Checks = append(b.Checks, sc)
	return true
}

// parseLength parses the decimal digits at the start of s, returning the
// value and how many bytes it used (0: none, or too many to be a length).
func parseLength(s []byte) (v, n int) {
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		if n == 9 { // no line is a billion bytes; also keeps int32 safe
			return 0, 0
		}
		v = v*10 + int(s[n]-'0')
		n++
	}
	return v, n
}

// unescapeNewlines copies s, turning the two bytes `\n` into a newline, the
// escape clients use in event titles and texts.
func unescapeNewlines(s []byte) string {
	if !bytes.Contains(s, []byte(`\n`)) {
		return string(s)
	}
	return strings.ReplaceAll(string(s), `\n`, "\n")
}

// eventTags splits the comma-separated tags of an event or service check
// and settles its host. It copies the tags, dropping empty ones, the
// "host:" tags and the "dd.internal.*" ones (origin detection, which is
// consumed here and never sent on). The host follows the Datadog Agent: a
// non-empty h: field (hField), else the last "host:" tag, even an empty
// one, which means no host; else none is set and the aggregator's default
// applies (hostSet false).
func eventTags(raw, hField []byte) (tags []string, host string, hostSet bool) {
	var hostTag []byte
	for len(raw) > 0 {
		var t []byte
		t, raw, _ = bytes.Cut(raw, []byte(","))
		switch {
		case len(t) == 0, bytes.HasPrefix(t, []byte("dd.internal.")):
		case bytes.HasPrefix(t, []byte("host:")):
			hostTag, hostSet = t[len("host:"):], true
		default:
			tags = append(tags, string(t))
		}
	}
	switch {
	case len(hField) > 0:
		return tags, string(hField), true
	case hostSet:
		return tags, string(hostTag), true
	}
	return tags, "", false
}
