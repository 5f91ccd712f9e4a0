package listener

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
)

// fuzzSeeds are lines and packets worth mutating: every construct the
// parser knows, good and bad.
var fuzzSeeds = []string{
	"x:1|c", "x:1|g", "x:1|h", "x:1|ms", "x:1|d", "x:abc|s",
	"g:-4|g", "x:0.25|c", "x:1e3|c", "x:.5|c", "x:0x1p-2|g", "x:1_000|c",
	"x:1:2:3|h", "x:1:NaN:3|h|#a", "x::|h", "users:a:b:c|s",
	"x:1|c|@0.1", "x:1|c|@0", "x:1|c|@2", "x:1|c|@abc", "x:1|c|@1e-300", "x:1|c|@", "x:1|c|@NaN", "x:1|c|@1e400",
	"x:1|c|T1700000000", "x:1|c|T", "x:1|c|TABCD", "x:1|c|T-9223372036854775808", "x:1|c|T9223372036854775808",
	"x:1|c|#b:2,a:1", "x:1|c|#", "x:1|c|x:y", "x:1|c||#a||", "x:1|c|@0.5|@0.25",
	"x:2|c|@0.5|#a,b:c|c:ci-123|e:it-false,cn-foo|card:high|T1700000000",
	"x:2|c|T1700000000|card:high|e:ext|c:ci-123|#a,b:c|@0.5",
	"page.views:1|c|#env:prod|c:ci-abc123",
	"req.latency:12.5|ms|@0.5|#route:/a,env:prod",
	"x:1:2:3|d|#a",
	"garbage", "x:1", ":1|c", "a|b:1|c", "x\x00y:1|c", "x:1|", "x:1|cc2", "x:NaN|g", "x:Inf|g", "x:|c", "x:|s",
	"x:1|c|#\xff", "\xc3(:1|c",
	"_e{5,4}:title|text",
	"_e{6,8}:deploy|v1.2 out|d:1700000000|h:web1|k:agg|p:low|s:jenkins|t:success|#env:prod,team:x",
	"_e{6,12}:ti\\ntl|line1\\nline2", "_e{3,1}:a|b|c", "_e{1,0}:a|",
	"_e{5,4}:title|tex", "_e{5,4}:title|texts", "_e{0,4}:|text", "_e{5,4}:title|text|p:urgent", "_e{",
	"_e{1,1}:t|x|d:abc|t:test|#host:,dd.internal.card:high,a", "_e{1,1}:t|x|h:web1|#host:web2", "_sc|db|0|d:x|h:|#host:h,dd.internal.entity_id:e",
	"_sc|db.up|0", "_sc|db.up|2|d:1700000000|h:web1|#env:prod,db:main|m:disk full",
	"_sc|db.up|1|#env:prod|m:line1\\nline2 m\\: x|c:ci-abc123", "_sc|db.up|4", "_sc||0", "_sc|db.up",
	"a:1|c\nb:2|c\r\nc:3|c\n", "a:1|c\ngarbage\nb:2|c", "\n\n\r\n", "x:1|c\r",
	typicalPacket,
}

// FuzzParse checks that Parse never panics, that it agrees with parseLine
// line by line, that what it accepts is well-formed, and that re-encoding
// an accepted sample, event or check canonically parses back to the same
// thing.
//
//	go test ./listener -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		if len(packet) > 64<<10 {
			return // no reader hands the parser more than a 64 KiB datagram or buffer
		}
		// A small limit so that overlong lines are exercised too.
		p := NewParser(200, nil)
		orig := bytes.Clone(packet)
		var b metric.Batch
		rejected := p.Parse(packet, &b)
		if !bytes.Equal(packet, orig) {
			t.Fatalf("Parse modified its input")
		}

		// parseLine, line by line, must agree exactly.
		pl := NewParser(200, nil)
		var lb metric.Batch
		errs := 0
		for _, line := range bytes.Split(packet, []byte("\n")) {
			err := pl.parseLine(line, &lb)
			if err == nil {
				continue
			}
			errs++
			var pe *parseError
			if !errors.As(err, &pe) || pe.reason >= numReasons {
				t.Fatalf("parseLine(%q): error %v is not a *parseError with a reason", line, err)
			}
			if !strings.HasPrefix(err.Error(), "parse ") {
				t.Fatalf("parseLine(%q): error %q", line, err)
			}
		}
		if errs != rejected {
			t.Fatalf("Parse rejected %d lines, parseLine %d", rejected, errs)
		}
		if !reflect.DeepEqual(toSamples(b.Samples), toSamples(lb.Samples)) ||
			!reflect.DeepEqual(b.Events, lb.Events) || !reflect.DeepEqual(b.Checks, lb.Checks) {
			t.Fatalf("Parse and parseLine disagree:\n%+v\n%+v", b, lb)
		}
		if errorCounts(p) != errorCounts(pl) {
			t.Fatalf("Parse and parseLine count differently: %v vs %v", errorCounts(p), errorCounts(pl))
		}

		for _, s := range b.Samples {
			checkSample(t, s)
		}
		for _, e := range b.Events {
			checkEvent(t, e)
		}
		for _, c := range b.Checks {
			checkServiceCheck(t, c)
		}

		// The fast paths against their plain definitions.
		if len(packet) <= 40 {
			checkParseValue(t, string(packet))
			checkIsInt64(t, string(packet))
		}
		want := 0
		for want < len(packet) && !nameStop[packet[want]] {
			want++
		}
		if got := nameEnd(packet); got != want {
			t.Fatalf("nameEnd(%q) = %d, want %d", packet, got, want)
		}
	})
}

var kindCodes = map[metric.Kind]string{
	metric.Counter: "c", metric.Gauge: "g", metric.Histogram: "h", metric.Set: "s", metric.Distribution: "d",
}

func checkSample(t *testing.T, s metric.Sample) {
	t.Helper()
	code, ok := kindCodes[s.Kind]
	switch {
	case !ok:
		t.Fatalf("sample %+v: invalid kind", s)
	case len(s.Name) == 0:
		t.Fatalf("sample %+v: empty name", s)
	case bytes.ContainsAny(s.Name, "\n|:") || hasControlByte(s.Name):
		t.Fatalf("sample name %q holds a separator or control byte", s.Name)
	case bytes.ContainsAny(s.Tags, "\n|"):
		t.Fatalf("sample tags %q hold a separator", s.Tags)
	case bytes.ContainsAny(s.SetMember, "\n|"):
		t.Fatalf("set member %q holds a separator", s.SetMember)
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		t.Fatalf("sample %+v: value not finite", s)
	case !(s.Rate > 0 && s.Rate <= 1):
		t.Fatalf("sample %+v: rate outside (0,1]", s)
	case (s.Kind == metric.Set) != (len(s.SetMember) > 0):
		t.Fatalf("sample %+v: set member on a %v", s, s.Kind)
	}

	// Canonical form: the rate last, so that a tag section ending in '\r'
	// is not taken for a line ending.
	value := strconv.FormatFloat(s.Value, 'g', -1, 64)
	if s.Kind == metric.Set {
		value = string(s.SetMember)
	}
	line := string(s.Name) + ":" + value + "|" + code + "|#" + string(s.Tags) +
		"|@" + strconv.FormatFloat(float64(s.Rate), 'g', -1, 64)
	var b metric.Batch
	if err := NewParser(0, nil).parseLine([]byte(line), &b); err != nil {
		t.Fatalf("re-encoded %+v as %q: %v", s, line, err)
	}
	if len(b.Samples) != 1 {
		t.Fatalf("re-encoded %+v as %q: got %d samples", s, line, len(b.Samples))
	}
	got := b.Samples[0]
	if !bytes.Equal(got.Name, s.Name) || !bytes.Equal(got.Tags, s.Tags) || !bytes.Equal(got.SetMember, s.SetMember) ||
		math.Float64bits(got.Value) != math.Float64bits(s.Value) || got.Rate != s.Rate || got.Kind != s.Kind {
		t.Fatalf("re-encoded %+v as %q, which parses as %+v", toSamples([]metric.Sample{s}), line, toSamples(b.Samples))
	}
}

func hasControlByte(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func checkEvent(t *testing.T, e metric.Event) {
	t.Helper()
	switch {
	case e.Title == "":
		t.Fatalf("event %+v: empty title", e)
	case e.Priority != "normal" && e.Priority != "low":
		t.Fatalf("event %+v: priority", e)
	case e.AlertType != "info" && e.AlertType != "error" && e.AlertType != "warning" && e.AlertType != "success":
		t.Fatalf("event %+v: alert type", e)
	}
	checkEventTags(t, e.Tags, e.Hostname, e.HostSet)
	esc := func(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }
	title, text := esc(e.Title), esc(e.Text)
	line := "_e{" + strconv.Itoa(len(title)) + "," + strconv.Itoa(len(text)) + "}:" + title + "|" + text +
		"|h:" + e.Hostname + "|k:" + e.AggregationKey + "|p:" + e.Priority + "|s:" + e.SourceType +
		"|t:" + e.AlertType + "|#" + encodeEventTags(e.Tags, e.Hostname, e.HostSet) + "|d:" + strconv.FormatInt(e.Timestamp, 10)
	var b metric.Batch
	if err := NewParser(0, nil).parseLine([]byte(line), &b); err != nil {
		t.Fatalf("re-encoded %+v as %q: %v", e, line, err)
	}
	if !reflect.DeepEqual(b.Events, []metric.Event{e}) {
		t.Fatalf("re-encoded %#v as %q, which parses as %#v", e, line, b.Events)
	}
}

func checkServiceCheck(t *testing.T, c metric.ServiceCheck) {
	t.Helper()
	if c.Name == "" || c.Status > metric.CheckUnknown {
		t.Fatalf("service check %+v: empty name or bad status", c)
	}
	checkEventTags(t, c.Tags, c.Hostname, c.HostSet)
	line := "_sc|" + c.Name + "|" + strconv.Itoa(int(c.Status)) + "|h:" + c.Hostname + "|#" + encodeEventTags(c.Tags, c.Hostname, c.HostSet) +
		"|m:" + c.Message + "|d:" + strconv.FormatInt(c.Timestamp, 10)
	var b metric.Batch
	if err := NewParser(0, nil).parseLine([]byte(line), &b); err != nil {
		t.Fatalf("re-encoded %+v as %q: %v", c, line, err)
	}
	if !reflect.DeepEqual(b.Checks, []metric.ServiceCheck{c}) {
		t.Fatalf("re-encoded %#v as %q, which parses as %#v", c, line, b.Checks)
	}
}

// checkEventTags checks the tags and host of an event or service check: no
// empty, host: or dd.internal.* tag survives, and a host is only ever set
// by the line.
func checkEventTags(t *testing.T, tags []string, host string, hostSet bool) {
	t.Helper()
	if !hostSet && host != "" {
		t.Fatalf("host %q without HostSet", host)
	}
	for _, tag := range tags {
		if tag == "" || strings.ContainsAny(tag, ",|\n") || strings.HasPrefix(tag, "host:") || strings.HasPrefix(tag, "dd.internal.") {
			t.Fatalf("tags %q: tag %q", tags, tag)
		}
	}
}

// encodeEventTags writes tags back, with the "host:" tag that an explicit
// empty host needs (an empty h: field names no host).
func encodeEventTags(tags []string, host string, hostSet bool) string {
	if hostSet && host == "" {
		tags = append(slices.Clip(tags), "host:")
	}
	return strings.Join(tags, ",")
}
