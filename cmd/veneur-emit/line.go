package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The line builders below refuse any input that would make the line parse
// as something else: a '|' inside a field would start a new field, a
// newline would start a new line, a ',' inside a tag would split it in two.
// Nothing is silently rewritten except newlines in event titles and texts
// and in service check messages, which go out as the two bytes `\n`, as
// every Datadog client writes them.

// Metric is one DogStatsD metric line:
//
//	<name>:<value>|<type>[|#<tag>,<tag>]
type Metric struct {
	Name  string
	Value string // a number as formatNumber writes it, or a set's member
	Type  string // c, g, ms, h, d or s
	Tags  []string
}

// AppendTo appends the line, without a newline, to dst; on error dst is
// returned unchanged.
func (m Metric) AppendTo(dst []byte) ([]byte, error) {
	if err := checkName("metric name", m.Name); err != nil {
		return dst, err
	}
	if strings.HasPrefix(m.Name, "_e{") {
		return dst, fmt.Errorf("metric name %q: a line that starts with _e{ is an event", m.Name)
	}
	switch m.Type {
	case "c", "g", "ms", "h", "d", "s":
	default:
		return dst, fmt.Errorf("metric type %q: want c, g, ms, h, d or s", m.Type)
	}
	if m.Value == "" {
		return dst, errors.New("empty metric value")
	}
	// A ':' in a number's place would read as a multi-value line; a set's
	// member is a string and may hold one.
	forbidden := "|:"
	if m.Type == "s" {
		forbidden = "|"
	}
	if err := checkText("value", m.Value, forbidden); err != nil {
		return dst, err
	}
	if err := checkTags(m.Tags); err != nil {
		return dst, err
	}
	dst = append(dst, m.Name...)
	dst = append(dst, ':')
	dst = append(dst, m.Value...)
	dst = append(dst, '|')
	dst = append(dst, m.Type...)
	return appendTags(dst, m.Tags), nil
}

// Event is one DogStatsD event line:
//
//	_e{<title bytes>,<text bytes>}:<title>|<text>[|d:<time>][|h:<host>][|k:<key>][|p:<priority>][|s:<source>][|t:<alert type>][|#<tags>]
//
// The lengths count the bytes as sent, after newlines became `\n`. Empty
// optional fields are left out, so the server applies its defaults
// (priority normal, alert type info, time of arrival).
type Event struct {
	Title, Text    string
	Timestamp      int64 // Unix seconds; 0 leaves the field out
	Hostname       string
	AggregationKey string
	Priority       string // normal or low
	SourceType     string
	AlertType      string // info, warning, error or success
	Tags           []string
}

// AppendTo appends the line, without a newline, to dst; on error dst is
// returned unchanged.
func (e Event) AppendTo(dst []byte) ([]byte, error) {
	// The title and text are framed by their lengths, so a '|' in them is
	// harmless; only line breaks need escaping.
	title, err := escapeNewlines("event title", e.Title)
	if err != nil {
		return dst, err
	}
	if title == "" {
		return dst, errors.New("empty event title")
	}
	text, err := escapeNewlines("event text", e.Text)
	if err != nil {
		return dst, err
	}
	if e.Timestamp < 0 {
		return dst, fmt.Errorf("event time %d: want Unix seconds", e.Timestamp)
	}
	switch e.Priority {
	case "", "normal", "low":
	default:
		return dst, fmt.Errorf("event priority %q: want normal or low", e.Priority)
	}
	switch e.AlertType {
	case "", "info", "warning", "error", "success":
	default:
		return dst, fmt.Errorf("event alert type %q: want info, warning, error or success", e.AlertType)
	}
	for _, f := range []struct{ what, v string }{
		{"event hostname", e.Hostname},
		{"event aggregation key", e.AggregationKey},
		{"event source type", e.SourceType},
	} {
		if err := checkText(f.what, f.v, "|"); err != nil {
			return dst, err
		}
	}
	if err := checkTags(e.Tags); err != nil {
		return dst, err
	}
	dst = append(dst, "_e{"...)
	dst = strconv.AppendInt(dst, int64(len(title)), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(len(text)), 10)
	dst = append(dst, "}:"...)
	dst = append(dst, title...)
	dst = append(dst, '|')
	dst = append(dst, text...)
	if e.Timestamp != 0 {
		dst = append(dst, "|d:"...)
		dst = strconv.AppendInt(dst, e.Timestamp, 10)
	}
	dst = appendField(dst, "|h:", e.Hostname)
	dst = appendField(dst, "|k:", e.AggregationKey)
	dst = appendField(dst, "|p:", e.Priority)
	dst = appendField(dst, "|s:", e.SourceType)
	dst = appendField(dst, "|t:", e.AlertType)
	return appendTags(dst, e.Tags), nil
}

// Service check statuses, as numbered on the wire.
const (
	StatusOK       = 0
	StatusWarning  = 1
	StatusCritical = 2
	StatusUnknown  = 3
)

// ServiceCheck is one DogStatsD service check line:
//
//	_sc|<name>|<status>[|d:<time>][|h:<host>][|#<tags>][|m:<message>]
//
// The message goes last, as the Datadog clients put it.
type ServiceCheck struct {
	Name      string
	Status    int   // StatusOK … StatusUnknown
	Timestamp int64 // Unix seconds; 0 leaves the field out
	Hostname  string
	Tags      []string
	Message   string
}

// AppendTo appends the line, without a newline, to dst; on error dst is
// returned unchanged.
func (sc ServiceCheck) AppendTo(dst []byte) ([]byte, error) {
	if err := checkName("service check name", sc.Name); err != nil {
		return dst, err
	}
	if sc.Status < StatusOK || sc.Status > StatusUnknown {
		return dst, fmt.Errorf("service check status %d: want 0 to 3", sc.Status)
	}
	if sc.Timestamp < 0 {
		return dst, fmt.Errorf("service check time %d: want Unix seconds", sc.Timestamp)
	}
	if err := checkText("service check hostname", sc.Hostname, "|"); err != nil {
		return dst, err
	}
	if err := checkTags(sc.Tags); err != nil {
		return dst, err
	}
	// The message ends at the next '|' (datadog-go v5 writes fields after
	// it), so a '|' in it cannot be sent.
	msg, err := escapeNewlines("service check message", sc.Message)
	if err != nil {
		return dst, err
	}
	if strings.IndexByte(msg, '|') >= 0 {
		return dst, fmt.Errorf("service check message %q: '|' is not allowed (the message would end there)", sc.Message)
	}
	dst = append(dst, "_sc|"...)
	dst = append(dst, sc.Name...)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(sc.Status), 10)
	if sc.Timestamp != 0 {
		dst = append(dst, "|d:"...)
		dst = strconv.AppendInt(dst, sc.Timestamp, 10)
	}
	dst = appendField(dst, "|h:", sc.Hostname)
	dst = appendTags(dst, sc.Tags)
	return appendField(dst, "|m:", msg), nil
}

// parseStatus reads a service check status as a number (0-3) or, as
// Veneur's documentation writes it, a name (OK, WARNING, CRITICAL,
// UNKNOWN; any case).
func parseStatus(s string) (int, error) {
	switch strings.ToUpper(s) {
	case "0", "OK":
		return StatusOK, nil
	case "1", "WARNING":
		return StatusWarning, nil
	case "2", "CRITICAL":
		return StatusCritical, nil
	case "3", "UNKNOWN":
		return StatusUnknown, nil
	}
	return 0, fmt.Errorf("service check status %q: want 0-3 or OK, WARNING, CRITICAL, UNKNOWN", s)
}

// formatNumber writes v in plain decimal, never in exponent form, with as
// few digits as read back to the same float64.
func formatNumber(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// formatMillis writes d in milliseconds, the unit of a DogStatsD timer.
func formatMillis(d time.Duration) string {
	return formatNumber(float64(d) / float64(time.Millisecond))
}

// checkName accepts a metric or service check name: not empty, and none of
// the bytes that separate DogStatsD fields, values or tags (the Datadog
// backend would turn ',' and '#' into '_' anyway).
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	return checkText(what, s, "|:,#")
}

// checkTags accepts tags that are not empty and hold neither '|' nor ','.
// ':' separates a tag's key from its value and '#' is harmless inside a
// tag, so both are allowed.
func checkTags(tags []string) error {
	for _, t := range tags {
		if t == "" {
			return errors.New("empty tag")
		}
		if err := checkText("tag", t, "|,"); err != nil {
			return err
		}
	}
	return nil
}

// checkText rejects invalid UTF-8, control characters (a newline would
// end the line) and any byte of forbidden.
func checkText(what, s, forbidden string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: not valid UTF-8", what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%s %q: control character %q is not allowed", what, s, c)
		case strings.IndexByte(forbidden, c) >= 0:
			return fmt.Errorf("%s %q: %q is not allowed in a DogStatsD %s", what, s, c, what)
		}
	}
	return nil
}

// escapeNewlines turns each line break ("\n" or "\r\n") into the two bytes
// `\n`, which the server turns back (events) or shows as is (service
// checks). A carriage return on its own has no escape and is refused.
func escapeNewlines(what, s string) (string, error) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if strings.IndexByte(s, '\r') >= 0 {
		return "", fmt.Errorf("%s %q: a carriage return is not allowed", what, s)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s %q: not valid UTF-8", what, s)
	}
	return strings.ReplaceAll(s, "\n", `\n`), nil
}

func appendField(dst []byte, prefix, v string) []byte {
	if v == "" {
		return dst
	}
	return append(append(dst, prefix...), v...)
}

func appendTags(dst []byte, tags []string) []byte {
	for i, t := range tags {
		if i == 0 {
			dst = append(dst, "|#"...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
	}
	return dst
}
