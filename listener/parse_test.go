package listener

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/veneur-lite/veneur-lite/metric"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// sample is metric.Sample with strings, so whole results compare with ==
// and print readably.
type sample struct {
	Name, Tags, Member string
	Value              float64
	Rate               float32
	Kind               metric.Kind
}

func toSamples(ss []metric.Sample) []sample {
	out := make([]sample, len(ss))
	for i, s := range ss {
		out[i] = sample{string(s.Name), string(s.Tags), string(s.SetMember), s.Value, s.Rate, s.Kind}
	}
	return out
}

// Shorthands for the expected samples.
func counter(name, tags string, v float64) sample {
	return sample{Name: name, Tags: tags, Value: v, Rate: 1, Kind: metric.Counter}
}

func withRate(s sample, r float32) sample { s.Rate = r; return s }

func ofKind(k metric.Kind, name, tags string, v float64) sample {
	return sample{Name: name, Tags: tags, Value: v, Rate: 1, Kind: k}
}

func set(name, tags, member string) sample {
	return sample{Name: name, Tags: tags, Member: member, Rate: 1, Kind: metric.Set}
}

// errorCounts snapshots every reason's counter.
func errorCounts(p *Parser) [numReasons]uint64 {
	var c [numReasons]uint64
	for r := range numReasons {
		c[r] = p.errorCount(r)
	}
	return c
}

func TestParseMetricLines(t *testing.T) {
	f := func(line string, want ...sample) {
		t.Helper()
		p := NewParser(4096, nil)
		var b metric.Batch
		if err := p.parseLine([]byte(line), &b); err != nil {
			t.Errorf("parseLine(%q): unexpected error %v", line, err)
		}
		if got := toSamples(b.Samples); !slices.Equal(got, want) {
			t.Errorf("parseLine(%q)\n got %+v\nwant %+v", line, got, want)
		}
		if got := errorCounts(p); got != [numReasons]uint64{} {
			t.Errorf("parseLine(%q): counted errors %v, want none", line, got)
		}
		if len(b.Events) != 0 || len(b.Checks) != 0 {
			t.Errorf("parseLine(%q): got events %v, checks %v", line, b.Events, b.Checks)
		}
	}

	// Every type.
	f("x:1|c", counter("x", "", 1))
	f("x:1|g", ofKind(metric.Gauge, "x", "", 1))
	f("x:1|h", ofKind(metric.Histogram, "x", "", 1))
	f("x:1|ms", ofKind(metric.Histogram, "x", "", 1))
	f("x:1|d", ofKind(metric.Distribution, "x", "", 1))
	f("x:abc|s", set("x", "", "abc"))

	// Values.
	f("x:0.25|c", counter("x", "", 0.25))
	f("g:-4|g", ofKind(metric.Gauge, "g", "", -4))
	f("g:+4|g", ofKind(metric.Gauge, "g", "", 4))
	f("x:-0|c", counter("x", "", math.Copysign(0, -1)))
	f("x:1e3|c", counter("x", "", 1000))
	f("x:1.5E-3|h", ofKind(metric.Histogram, "x", "", 0.0015))
	f("x:.5|c", counter("x", "", 0.5))
	f("x:5.|c", counter("x", "", 5))
	f("x:123456789012345678901234567890|c", counter("x", "", 123456789012345678901234567890))
	f("x:0.1234567890123456789|c", counter("x", "", 0.1234567890123456789))
	f("x:1.7976931348623157e308|g", ofKind(metric.Gauge, "x", "", math.MaxFloat64))
	f("x:0x1p-2|g", ofKind(metric.Gauge, "x", "", 0.25)) // strconv.ParseFloat syntax,
	f("x:1_000|c", counter("x", "", 1000))               // as the Datadog Agent

	// Sets keep the raw member, ':' included, and are never split.
	f("users:alice|s|#a", set("users", "a", "alice"))
	f("users:a:b:c|s", set("users", "", "a:b:c"))
	f("users:1.5|s", set("users", "", "1.5"))
	f("users:NaN|s", set("users", "", "NaN"))

	// Multi-value (protocol 1.1): one sample per value, same name, tags, rate.
	f("x:1:2:3|h", ofKind(metric.Histogram, "x", "", 1), ofKind(metric.Histogram, "x", "", 2), ofKind(metric.Histogram, "x", "", 3))
	f("x:1:2|c|@0.5|#a:b",
		withRate(counter("x", "a:b", 1), 0.5),
		withRate(counter("x", "a:b", 2), 0.5))

	// Sample rates.
	f("x:1|c|@0.1", withRate(counter("x", "", 1), 0.1))
	f("x:1|c|@1", counter("x", "", 1))
	f("x:1|c|@1.0", counter("x", "", 1))
	f("x:1|c|@.5", withRate(counter("x", "", 1), 0.5))
	f("x:1|c|@1e-3", withRate(counter("x", "", 1), 0.001))

	// Tags are the raw section after '#', neither split nor sorted.
	f("x:1|c|#b:2,a:1", counter("x", "b:2,a:1", 1))
	f("x:1|c|#", counter("x", "", 1))
	f("x:1|c|#host:web1,veneurlocalonly", counter("x", "host:web1,veneurlocalonly", 1))
	f("x:1|c|#a@b#c,d:e:f", counter("x", "a@b#c,d:e:f", 1))
	f("x:1|c|#é:ü", counter("x", "é:ü", 1))

	// Every optional field, in shuffled orders.
	all := withRate(counter("x", "a,b:c", 2), 0.5)
	f("x:2|c|@0.5|#a,b:c|c:ci-123|e:it-false,cn-foo,pu-abc|card:high|T1700000000", all)
	f("x:2|c|T1700000000|card:high|e:ext|c:ci-123|#a,b:c|@0.5", all)
	f("x:2|c|#a,b:c|T1700000000|@0.5|c:ci-123", all)
	f("x:2|c|c:ci-123|@0.5|card:low|#a,b:c", all)
	f("x:2|c|card:orchestrator|#a,b:c|e:x|@0.5|T1", all)

	// Unknown and empty optional fields are ignored.
	f("x:1|c|x:y", counter("x", "", 1))
	f("x:1|c|zzz|#a|qq:1", counter("x", "a", 1))
	f("x:1|c||#a||", counter("x", "a", 1))
	f("x:1|c|", counter("x", "", 1))

	// |T must be a positive int64; its value is not used (samples go into
	// the arrival interval), so any such integer does.
	f("x:1|c|T1", counter("x", "", 1))
	f("x:1|c|T+1700000000", counter("x", "", 1))
	f("x:1|c|T9223372036854775807", counter("x", "", 1))
	f("x:1|c|T00000000000000000000001", counter("x", "", 1))

	// A repeated field: the last one wins.
	f("x:1|c|#a|#b", counter("x", "b", 1))
	f("x:1|c|@0.5|@0.25", withRate(counter("x", "", 1), 0.25))

	// Line shapes datadog-go v5 emits.
	f("page.views:1|c|#env:prod|c:ci-abc123", counter("page.views", "env:prod", 1))
	f("req.latency:12.5|ms|@0.5|#route:/a,env:prod", withRate(ofKind(metric.Histogram, "req.latency", "route:/a,env:prod", 12.5), 0.5))
	f("x:1:2:3|d|#a", ofKind(metric.Distribution, "x", "a", 1), ofKind(metric.Distribution, "x", "a", 2), ofKind(metric.Distribution, "x", "a", 3))
	f("myapp.db.query:0.003512|ms|#env:prod,service:api|c:ci-0123456789abcdef|e:it-false,cn-api,pu-1234",
		ofKind(metric.Histogram, "myapp.db.query", "env:prod,service:api", 0.003512))
	f("myapp.queue.depth:42|g|#env:prod,queue:emails|T1700000000", ofKind(metric.Gauge, "myapp.queue.depth", "env:prod,queue:emails", 42))
	f("myapp.users:u-42|s|#env:prod|card:low", set("myapp.users", "env:prod", "u-42"))

	// Names: anything printable before the first ':'.
	f("_sc:1|c", counter("_sc", "", 1))
	f("_e:1|c", counter("_e", "", 1))
	f("a b:1|c", counter("a b", "", 1))
	f("ünïcode.naмe:1|c", counter("ünïcode.naмe", "", 1))

	// A trailing "\r" is dropped.
	f("x:1|c|#a\r", counter("x", "a", 1))
}

func TestParseLineRejects(t *testing.T) {
	f := func(line string, why reason) {
		t.Helper()
		p := NewParser(100, nil)
		var b metric.Batch
		err := p.parseLine([]byte(line), &b)
		var pe *parseError
		if !errors.As(err, &pe) {
			t.Fatalf("parseLine(%q) = %v, want a *parseError", line, err)
		}
		if pe.reason != why {
			t.Errorf("parseLine(%q): reason %v, want %v (%v)", line, pe.reason, why, err)
		}
		if len(b.Samples)+len(b.Events)+len(b.Checks) != 0 {
			t.Errorf("parseLine(%q) appended %+v", line, b)
		}
		var want [numReasons]uint64
		want[why] = 1
		if got := errorCounts(p); got != want {
			t.Errorf("parseLine(%q): counts %v, want %v", line, got, want)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "parse ") || pe.msg == "" || pe.msg[0] < 'a' || pe.msg[0] > 'z' {
			t.Errorf("parseLine(%q): error %q is not `parse \"...\": <lower-case message>`", line, msg)
		}
	}

	// Garbage and missing pieces.
	f("garbage", reasonBadFormat)
	f("x:1", reasonBadFormat)
	f("x1|c", reasonBadFormat)
	f(":1|c", reasonBadFormat)
	f("|c", reasonBadFormat)
	f("a|b:1|c", reasonBadFormat) // the name-value field is "a"
	f("x\x00y:1|c", reasonBadFormat)
	f("x\ty:1|c", reasonBadFormat)
	f("x\x7f:1|c", reasonBadFormat)
	f("x:1|c\nx:1|c", reasonBadFormat) // parseLine takes one line

	// Unknown types.
	f("x:1|", reasonUnknownType)
	f("x:1||c", reasonUnknownType)
	f("x:1|cc2", reasonUnknownType)
	f("x:1|C", reasonUnknownType)
	f("x:1|m", reasonUnknownType)
	f("x:1|msx", reasonUnknownType)
	f("x:1|c2|#a", reasonUnknownType)
	f("x:NaN|zz", reasonUnknownType) // the type is checked first

	// Bad values.
	f("x:|c", reasonBadValue)
	f("x:NaN|g", reasonBadValue)
	f("x:nan|g", reasonBadValue)
	f("x:Inf|g", reasonBadValue)
	f("x:-Inf|g", reasonBadValue)
	f("x:+infinity|h", reasonBadValue)
	f("x:1e400|g", reasonBadValue)
	f("x:abc|c", reasonBadValue)
	f("x:1,5|c", reasonBadValue)
	f("x:1 |c", reasonBadValue)
	f("x: 1|c", reasonBadValue)
	f("x:--1|c", reasonBadValue)
	f("x:.|c", reasonBadValue)
	f("x:-|c", reasonBadValue)
	f("x:|s", reasonBadValue)
	f("x:NaN|c|@2", reasonBadValue) // a rejected line does not also count its rate

	// A rate that is not a number rejects the line, as in the Datadog
	// Agent, wherever it stands and whatever other rate the line has.
	f("x:1|c|@", reasonBadSampleRate)
	f("x:666|g|@abc", reasonBadSampleRate)
	f("x:1|c|@abc|#a", reasonBadSampleRate)
	f("x:1|c|@0.5|@abc", reasonBadSampleRate)
	f("x:1|c|@abc|@0.5", reasonBadSampleRate)
	f("x:1|c|@0,5", reasonBadSampleRate)
	f("x:1|c|@ 0.5", reasonBadSampleRate)
	f("x:1|c|@0.5x", reasonBadSampleRate)
	f("x:1:2|h|@-", reasonBadSampleRate)
	f("x:u|s|@.", reasonBadSampleRate)
	f("x:NaN|c|@abc", reasonBadSampleRate) // optional fields are read before the value

	// So does a |T that is not a decimal int64.
	f("x:1|c|T", reasonBadTimestamp)
	f("x:1|c|TABCD", reasonBadTimestamp)
	f("x:1|c|Tnotanumber|#a", reasonBadTimestamp)
	f("x:1|c|T1.5", reasonBadTimestamp)
	f("x:1|c|T1e9", reasonBadTimestamp)
	f("x:1|c|T1_000", reasonBadTimestamp)
	f("x:1|c|T0x10", reasonBadTimestamp)
	f("x:1|c|T 1", reasonBadTimestamp)
	f("x:1|c|T-", reasonBadTimestamp)
	// A timestamp is a Unix second after the epoch, as the Datadog Agent
	// requires: zero and negative ones reject the line.
	f("x:1|g|T-102348932", reasonBadTimestamp)
	f("x:1|c|T-1", reasonBadTimestamp)
	f("x:1|c|T0", reasonBadTimestamp)
	f("x:1|c|T-0", reasonBadTimestamp)
	f("x:1|c|T+000", reasonBadTimestamp)
	f("x:1|c|T-9223372036854775808", reasonBadTimestamp)
	f("x:1|c|T9223372036854775808", reasonBadTimestamp)
	f("x:1|c|T-9223372036854775809", reasonBadTimestamp)
	f("x:1|c|T1700000000|T", reasonBadTimestamp)
	f("x:1:2|d|@0.5|TABCD|#a", reasonBadTimestamp)

	// Too long, bad encoding.
	f("x:1|c|#"+strings.Repeat("a", 94), reasonLineTooLong)
	f("x:1|c|#\xff", reasonInvalidUTF8)
	f("\xc3(:1|c", reasonInvalidUTF8)
	f("x:1|c|#a\xed\xa0\x80", reasonInvalidUTF8) // an encoded surrogate
	f("_e{1,1}:\xff|b", reasonInvalidUTF8)

	// Events.
	f("_e{", reasonBadEvent)
	f("_e{5,4}", reasonBadEvent)
	f("_e{5,4}:", reasonBadEvent)
	f("_e{5,4}:title|tex", reasonBadEvent)   // truncated
	f("_e{5,4}:title|texts", reasonBadEvent) // longer than announced
	f("_e{5,4}:titl|etext", reasonBadEvent)
	f("_e{5,4}:title", reasonBadEvent)
	f("_e{5,4}title|text", reasonBadEvent)
	f("_e{5;4}:title|text", reasonBadEvent)
	f("_e{5,4:title|text", reasonBadEvent)
	f("_e{,4}:title|text", reasonBadEvent)
	f("_e{5,}:title|text", reasonBadEvent)
	f("_e{-5,4}:title|text", reasonBadEvent)
	f("_e{0,4}:|text", reasonBadEvent)
	f("_e{5,99999999}:title|text", reasonBadEvent)
	f("_e{9999999999,4}:title|text", reasonBadEvent)

	// Service checks.
	f("_sc|db.ok|4", reasonBadServiceCheck)
	f("_sc|db.ok|-1", reasonBadServiceCheck)
	f("_sc|db.ok|01", reasonBadServiceCheck)
	f("_sc|db.ok|ok", reasonBadServiceCheck)
	f("_sc|db.ok|", reasonBadServiceCheck)
	f("_sc|db.ok", reasonBadServiceCheck)
	f("_sc||0", reasonBadServiceCheck)
	f("_sc|", reasonBadServiceCheck)
}

func TestParseBadSampleRateKeepsSample(t *testing.T) {
	f := func(line string, want ...sample) {
		t.Helper()
		p := NewParser(4096, nil)
		var b metric.Batch
		if err := p.parseLine([]byte(line), &b); err != nil {
			t.Errorf("parseLine(%q): unexpected error %v", line, err)
		}
		if got := toSamples(b.Samples); !slices.Equal(got, want) {
			t.Errorf("parseLine(%q)\n got %+v\nwant %+v", line, got, want)
		}
		var wantCounts [numReasons]uint64
		wantCounts[reasonBadSampleRate] = 1
		if got := errorCounts(p); got != wantCounts {
			t.Errorf("parseLine(%q): counts %v, want %v", line, got, wantCounts)
		}
	}
	f("x:1|c|@0", counter("x", "", 1))
	f("x:1|c|@2", counter("x", "", 1))
	f("x:1|c|@-1", counter("x", "", 1))
	f("x:1|c|@-0.5", counter("x", "", 1))
	// Numbers, though not rates (strconv.ParseFloat reads them all).
	f("x:1|c|@NaN", counter("x", "", 1))
	f("x:1|c|@Inf", counter("x", "", 1))
	f("x:1|c|@-Infinity|#a", counter("x", "a", 1))
	f("x:1|c|@1e400", counter("x", "", 1))
	f("x:1|c|@0x1p1", counter("x", "", 1))
	f("x:1|c|@1.0000001", counter("x", "", 1))
	f("x:1|c|@1e-300", counter("x", "", 1)) // would be 0 as a float32
	f("x:1|c|@0.5|@7", counter("x", "", 1)) // the last rate wins, even a bad one
	f("x:u|s|@0", set("x", "", "u"))
	f("x:1:2|h|@5", ofKind(metric.Histogram, "x", "", 1), ofKind(metric.Histogram, "x", "", 2))
}

func TestParseMultiValueBadValues(t *testing.T) {
	f := func(line string, wantBad uint64, wantErr bool, want ...sample) {
		t.Helper()
		p := NewParser(4096, nil)
		var b metric.Batch
		err := p.parseLine([]byte(line), &b)
		if (err != nil) != wantErr {
			t.Errorf("parseLine(%q): error %v, want error: %v", line, err, wantErr)
		}
		if got := toSamples(b.Samples); !slices.Equal(got, want) {
			t.Errorf("parseLine(%q)\n got %+v\nwant %+v", line, got, want)
		}
		var wantCounts [numReasons]uint64
		wantCounts[reasonBadValue] = wantBad
		if got := errorCounts(p); got != wantCounts {
			t.Errorf("parseLine(%q): counts %v, want %v", line, got, wantCounts)
		}
	}
	h := func(v float64) sample { return ofKind(metric.Histogram, "x", "a", v) }
	f("x:1:NaN:3|h|#a", 1, false, h(1), h(3))
	f("x:NaN:2:3|h|#a", 1, false, h(2), h(3))
	f("x:1:2:Inf|h|#a", 1, false, h(1), h(2))
	// An empty or blank value rejects the whole line, as in the Datadog
	// Agent, counted once (with any bad value before it).
	f("x:1::3|h|#a", 1, true)
	f("x:1:2:|h|#a", 1, true)
	f("x: :1:|h|#a", 1, true)
	f("x:1:\t:2|h|#a", 1, true)
	f("x:NaN: :2|h|#a", 2, true)
	f("x::|h|#a", 1, true)
	f("x:NaN:Inf:abc|h|#a", 3, true)
}

// checkEventLine parses line, which must yield want and nothing else, and
// count badFields bad_event (fields ignored, the event kept).
func checkEventLine(t *testing.T, line string, badFields uint64, want metric.Event) {
	t.Helper()
	p := NewParser(4096, nil)
	var b metric.Batch
	if err := p.parseLine([]byte(line), &b); err != nil {
		t.Errorf("parseLine(%q): unexpected error %v", line, err)
	}
	if !reflect.DeepEqual(b.Events, []metric.Event{want}) {
		t.Errorf("parseLine(%q)\n got %#v\nwant %#v", line, b.Events, want)
	}
	if len(b.Samples) != 0 || len(b.Checks) != 0 {
		t.Errorf("parseLine(%q): got samples %v, checks %v", line, b.Samples, b.Checks)
	}
	var wantCounts [numReasons]uint64
	wantCounts[reasonBadEvent] = badFields
	if got := errorCounts(p); got != wantCounts {
		t.Errorf("parseLine(%q): counted errors %v, want %v", line, got, wantCounts)
	}
}

// ev is an event with only a title and text: its defaults.
func ev(title, text string) metric.Event {
	return metric.Event{Title: title, Text: text, Priority: "normal", AlertType: "info"}
}

func TestParseEvents(t *testing.T) {
	f := func(line string, want metric.Event) {
		t.Helper()
		checkEventLine(t, line, 0, want)
	}
	full := metric.Event{
		Title: "deploy", Text: "v1.2 out", Timestamp: 1700000000, Hostname: "web1", HostSet: true,
		AggregationKey: "agg", Priority: "low", SourceType: "jenkins", AlertType: "success",
		Tags: []string{"env:prod", "team:x"},
	}

	f("_e{5,4}:title|text", ev("title", "text"))
	f("_e{1,0}:a|", ev("a", ""))
	f("_e{3,1}:a|b|c", ev("a|b", "c")) // lengths, not '|', delimit title and text
	f("_e{3,3}:a|b|c|d", ev("a|b", "c|d"))
	f("_e{6,12}:ti\\ntl|line1\\nline2", ev("ti\ntl", "line1\nline2"))
	f("_e{6,8}:deploy|v1.2 out|d:1700000000|h:web1|k:agg|p:low|s:jenkins|t:success|#env:prod,team:x", full)
	f("_e{6,8}:deploy|v1.2 out|#env:prod,team:x|t:success|s:jenkins|p:low|k:agg|h:web1|d:1700000000", full)
	f("_e{6,8}:deploy|v1.2 out|p:low|c:ci-1|#env:prod,team:x|x:y|h:web1|t:success||k:agg|s:jenkins|e:z|d:1700000000|", full)
	for _, a := range []string{"info", "error", "warning", "success"} {
		want := ev("t", "x")
		want.AlertType = a
		f("_e{1,1}:t|x|t:"+a, want)
	}
	withTags := ev("t", "x")
	withTags.Tags = []string{"a", "b:c"}
	f("_e{1,1}:t|x|#a,,b:c,", withTags)
	f("_e{1,1}:t|x|#", ev("t", "x"))
	// As datadog-go v5 writes it: text newlines escaped, then |c:.
	dd := ev("Deploy", "line one\nline two")
	dd.Priority, dd.AlertType, dd.Tags = "normal", "warning", []string{"env:prod"}
	f("_e{6,18}:Deploy|line one\\nline two|p:normal|t:warning|#env:prod|c:ci-abc123", dd)
}

// checkServiceCheckLine is checkEventLine for service checks.
func checkServiceCheckLine(t *testing.T, line string, badFields uint64, want metric.ServiceCheck) {
	t.Helper()
	p := NewParser(4096, nil)
	var b metric.Batch
	if err := p.parseLine([]byte(line), &b); err != nil {
		t.Errorf("parseLine(%q): unexpected error %v", line, err)
	}
	if !reflect.DeepEqual(b.Checks, []metric.ServiceCheck{want}) {
		t.Errorf("parseLine(%q)\n got %#v\nwant %#v", line, b.Checks, want)
	}
	if len(b.Samples) != 0 || len(b.Events) != 0 {
		t.Errorf("parseLine(%q): got samples %v, events %v", line, b.Samples, b.Events)
	}
	var wantCounts [numReasons]uint64
	wantCounts[reasonBadServiceCheck] = badFields
	if got := errorCounts(p); got != wantCounts {
		t.Errorf("parseLine(%q): counted errors %v, want %v", line, got, wantCounts)
	}
}

func TestParseServiceChecks(t *testing.T) {
	f := func(line string, want metric.ServiceCheck) {
		t.Helper()
		checkServiceCheckLine(t, line, 0, want)
	}
	full := metric.ServiceCheck{
		Name: "db.up", Status: metric.CheckCritical, Timestamp: 1700000000,
		Hostname: "web1", HostSet: true, Tags: []string{"env:prod", "db:main"}, Message: "disk full",
	}
	f("_sc|db.up|0", metric.ServiceCheck{Name: "db.up", Status: metric.CheckOK})
	f("_sc|db.up|1", metric.ServiceCheck{Name: "db.up", Status: metric.CheckWarning})
	f("_sc|db.up|3", metric.ServiceCheck{Name: "db.up", Status: metric.CheckUnknown})
	f("_sc|db.up|2|d:1700000000|h:web1|#env:prod,db:main|m:disk full", full)
	f("_sc|db.up|2|m:disk full|#env:prod,db:main|h:web1|d:1700000000", full)
	f("_sc|db.up|2|x:y|h:web1|c:ci-1||#env:prod,db:main|m:disk full|d:1700000000|card:low", full)
	// As datadog-go v5 writes it: the message escaped and followed by |c:,
	// which therefore does not belong to the message.
	f("_sc|db.up|1|#env:prod|m:line1\\nline2 m\\: x|c:ci-abc123",
		metric.ServiceCheck{Name: "db.up", Status: metric.CheckWarning, Tags: []string{"env:prod"}, Message: "line1\\nline2 m\\: x"})
}

// As in the Datadog Agent, an optional field with a bad value is ignored
// and the event or check kept (counted, so that the sender can be found).
func TestParseEventAndCheckBadFieldsIgnored(t *testing.T) {
	e := func(line string, badFields uint64, want metric.Event) {
		t.Helper()
		checkEventLine(t, line, badFields, want)
	}
	withTS := ev("t", "x")
	withTS.Timestamp = 1700000000
	e("_e{1,1}:t|x|d:abc", 1, ev("t", "x"))
	e("_e{1,1}:t|x|d:", 1, ev("t", "x"))
	e("_e{1,1}:t|x|d:1.5", 1, ev("t", "x"))
	e("_e{1,1}:t|x|d:1700000000|d:abc", 1, withTS) // the bad one does not erase the good one
	e("_e{1,1}:t|x|p:urgent", 1, ev("t", "x"))
	e("_e{1,1}:t|x|p:", 1, ev("t", "x"))
	e("_e{1,1}:t|x|p:LOW", 1, ev("t", "x"))
	e("_e{1,1}:t|x|t:test", 1, ev("t", "x"))
	e("_e{1,1}:t|x|t:fatal", 1, ev("t", "x"))
	e("_e{1,1}:t|x|t:", 1, ev("t", "x"))
	low := ev("t", "x")
	low.Priority, low.Tags = "low", []string{"a"}
	e("_e{1,1}:t|x|p:low|t:bogus|#a", 1, low)
	e("_e{1,1}:t|x|p:urgent|t:test|d:abc|#a|p:low", 1, low) // counted once per event

	c := func(line string, badFields uint64, want metric.ServiceCheck) {
		t.Helper()
		checkServiceCheckLine(t, line, badFields, want)
	}
	c("_sc|db.ok|0|d:yesterday", 1, metric.ServiceCheck{Name: "db.ok", Status: metric.CheckOK})
	c("_sc|db.ok|1|d:|m:slow", 1, metric.ServiceCheck{Name: "db.ok", Status: metric.CheckWarning, Message: "slow"})
	c("_sc|db.ok|2|d:1700000000|d:x|#a", 1,
		metric.ServiceCheck{Name: "db.ok", Status: metric.CheckCritical, Timestamp: 1700000000, Tags: []string{"a"}})
}

// A host: tag sets the host of an event or check and is removed from its
// tags; an explicit non-empty h: wins over it; "host:" with no value means
// no host. HostSet tells the aggregator not to apply its default.
func TestParseEventAndCheckHost(t *testing.T) {
	e := func(line string, host string, hostSet bool, tags ...string) {
		t.Helper()
		want := ev("t", "x")
		want.Hostname, want.HostSet, want.Tags = host, hostSet, tags
		checkEventLine(t, line, 0, want)
	}
	e("_e{1,1}:t|x", "", false)
	e("_e{1,1}:t|x|#a", "", false, "a")
	e("_e{1,1}:t|x|h:web1", "web1", true)
	e("_e{1,1}:t|x|#host:web2,a", "web2", true, "a")
	e("_e{1,1}:t|x|#a,host:web2", "web2", true, "a")
	e("_e{1,1}:t|x|h:web1|#host:web2,a", "web1", true, "a") // h: wins
	e("_e{1,1}:t|x|#host:web2,a|h:web1", "web1", true, "a") // in either order
	e("_e{1,1}:t|x|#host:,a", "", true, "a")                // explicitly no host
	e("_e{1,1}:t|x|h:web1|#host:", "web1", true)
	e("_e{1,1}:t|x|h:|#host:web2", "web2", true) // an empty h: names nothing, as in the Agent
	e("_e{1,1}:t|x|h:", "", false)
	e("_e{1,1}:t|x|#host:a,host:b", "b", true)  // the last host: tag, as in the Agent
	e("_e{1,1}:t|x|#host:a|#b", "", false, "b") // the last #tags field wins whole
	e("_e{1,1}:t|x|#hostname:h,host,hosts:x", "", false, "hostname:h", "host", "hosts:x")
	e("_e{1,1}:t|x|h:web1|h:web3", "web3", true)

	c := func(line string, host string, hostSet bool, tags ...string) {
		t.Helper()
		checkServiceCheckLine(t, line, 0, metric.ServiceCheck{Name: "db", Status: metric.CheckOK, Hostname: host, HostSet: hostSet, Tags: tags})
	}
	c("_sc|db|0", "", false)
	c("_sc|db|0|h:web1", "web1", true)
	c("_sc|db|0|#env:prod,host:web2", "web2", true, "env:prod")
	c("_sc|db|0|#host:web2|h:web1", "web1", true)
	c("_sc|db|0|#host:,env:prod", "", true, "env:prod")
	c("_sc|db|0|h:|#host:web2", "web2", true)
}

// dd.internal.* tags are origin detection that datadog-go adds; they are
// consumed, never sent on with an event or check.
func TestParseEventAndCheckDropInternalTags(t *testing.T) {
	want := ev("t", "x")
	want.Tags = []string{"env:prod", "dd.internalx", "internal.dd.x:1"}
	checkEventLine(t, "_e{1,1}:t|x|#dd.internal.entity_id:pod-uid-1,env:prod,dd.internal.card:high,dd.internalx,dd.internal.jmx_check_name:j,internal.dd.x:1", 0, want)
	checkEventLine(t, "_e{1,1}:t|x|#dd.internal.entity_id:1", 0, ev("t", "x"))
	checkServiceCheckLine(t, "_sc|db|0|#dd.internal.card:low,a,dd.internal.entity_id:e|h:web1", 0,
		metric.ServiceCheck{Name: "db", Status: metric.CheckOK, Hostname: "web1", HostSet: true, Tags: []string{"a"}})
}

func TestParsePacket(t *testing.T) {
	f := func(packet string, wantRejected int, wantCounts map[reason]uint64, want ...sample) {
		t.Helper()
		p := NewParser(64, nil)
		var b metric.Batch
		if got := p.Parse([]byte(packet), &b); got != wantRejected {
			t.Errorf("Parse(%q) rejected %d lines, want %d", packet, got, wantRejected)
		}
		if got := toSamples(b.Samples); !slices.Equal(got, want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", packet, got, want)
		}
		var wc [numReasons]uint64
		for r, n := range wantCounts {
			wc[r] = n
		}
		if got := errorCounts(p); got != wc {
			t.Errorf("Parse(%q): counts %v, want %v", packet, got, wc)
		}
	}
	a, bb, c := counter("a", "", 1), counter("b", "", 2), counter("c", "", 3)

	f("", 0, nil)
	f("\n\n\r\n", 0, nil)
	f("a:1|c", 0, nil, a)
	f("a:1|c\n", 0, nil, a)
	f("a:1|c\nb:2|c\nc:3|c", 0, nil, a, bb, c)
	f("a:1|c\r\nb:2|c\r\nc:3|c\r\n", 0, nil, a, bb, c)
	f("a:1|c\r\nb:2|c\nc:3|c\r", 0, nil, a, bb, c)
	f("\n\na:1|c\n\n\nb:2|c\n\n", 0, nil, a, bb)
	f("a:1|c\r\n\r\nb:2|c", 0, nil, a, bb)

	// A bad line in the middle does not drop its neighbours.
	f("a:1|c\ngarbage\nb:2|c", 1, map[reason]uint64{reasonBadFormat: 1}, a, bb)
	f("a:1|c\nx:1|cc2\nb:2|c\nx:NaN|g\nc:3|c", 2, map[reason]uint64{reasonUnknownType: 1, reasonBadValue: 1}, a, bb, c)
	f("a:1|c\n_e{5,4}:title|tex\nb:2|c\n_sc|x|9\nc:3|c", 2, map[reason]uint64{reasonBadEvent: 1, reasonBadServiceCheck: 1}, a, bb, c)
	f("a:1|c\nb:2|c|@7\nc:3|c", 0, map[reason]uint64{reasonBadSampleRate: 1}, a, bb, c)
	f("a:1|c\nx:1:NaN:2|c\nc:3|c", 0, map[reason]uint64{reasonBadValue: 1}, a, counter("x", "", 1), counter("x", "", 2), c)

	// Overlong lines are rejected one by one (the limit is 64 here).
	long := "x:1|c|#" + strings.Repeat("t", 60)
	f("a:1|c\n"+long+"\nb:2|c\n"+long+"\r\nc:3|c", 2, map[reason]uint64{reasonLineTooLong: 2}, a, bb, c)
	exact := "x:1|c|#" + strings.Repeat("t", 64-7)
	f(exact+"\r\n"+exact, 0, nil, counter("x", strings.Repeat("t", 57), 1), counter("x", strings.Repeat("t", 57), 1))

	// Invalid UTF-8 costs only its own line.
	f("a:1|c\nx:1|c|#\xff\xfe\nb:2|c\n\xc3:1|c\nc:3|c", 2, map[reason]uint64{reasonInvalidUTF8: 2}, a, bb, c)
	f("a:é|s\nx:1|c|#\xe9", 1, map[reason]uint64{reasonInvalidUTF8: 1}, set("a", "", "é"))
}

func TestParsePacketEventsAndChecks(t *testing.T) {
	p := NewParser(4096, nil)
	var b metric.Batch
	packet := "a:1|c\n_e{1,1}:t|x\n_sc|db|0\nb:2|c|#k:v\n"
	if n := p.Parse([]byte(packet), &b); n != 0 {
		t.Fatalf("Parse rejected %d lines", n)
	}
	if got, want := toSamples(b.Samples), []sample{counter("a", "", 1), counter("b", "k:v", 2)}; !reflect.DeepEqual(got, want) {
		t.Errorf("samples\n got %+v\nwant %+v", got, want)
	}
	if want := []metric.Event{{Title: "t", Text: "x", Priority: "normal", AlertType: "info"}}; !reflect.DeepEqual(b.Events, want) {
		t.Errorf("events\n got %#v\nwant %#v", b.Events, want)
	}
	if want := []metric.ServiceCheck{{Name: "db", Status: metric.CheckOK}}; !reflect.DeepEqual(b.Checks, want) {
		t.Errorf("checks\n got %#v\nwant %#v", b.Checks, want)
	}
}

func TestParseLineEmptyAndCounting(t *testing.T) {
	p := NewParser(10, nil)
	var b metric.Batch
	for _, line := range []string{"", "\r"} {
		if err := p.parseLine([]byte(line), &b); err != nil {
			t.Errorf("parseLine(%q) = %v, want nil", line, err)
		}
	}
	if len(b.Samples) != 0 || errorCounts(p) != [numReasons]uint64{} {
		t.Errorf("empty lines yielded %+v, counts %v", b, errorCounts(p))
	}
	// Stream readers count the lines they had to discard unparsed.
	p.countLineTooLong()
	if n := p.errorCount(reasonLineTooLong); n != 1 {
		t.Errorf("line_too_long = %d, want 1", n)
	}
}

func TestParseThousandsOfTags(t *testing.T) {
	var tags []string
	for i := range 5000 {
		tags = append(tags, fmt.Sprintf("tag%d:value%d", i, i))
	}
	raw := strings.Join(tags, ",")
	line := "x:1|c|#" + raw
	p := NewParser(0, nil) // no limit: the line is ~80 KiB
	var b metric.Batch
	if n := p.Parse([]byte("a:1|c\n"+line+"\nb:2|c"), &b); n != 0 {
		t.Fatalf("Parse rejected %d lines", n)
	}
	want := []sample{counter("a", "", 1), counter("x", raw, 1), counter("b", "", 2)}
	if got := toSamples(b.Samples); !reflect.DeepEqual(got, want) {
		t.Errorf("tags were not kept whole (got %d samples)", len(got))
	}

	var eb metric.Batch
	if err := p.parseLine([]byte("_e{1,1}:t|x|#"+raw), &eb); err != nil {
		t.Fatal(err)
	}
	if len(eb.Events) != 1 || !reflect.DeepEqual(eb.Events[0].Tags, tags) {
		t.Errorf("event tags were not split into %d tags", len(tags))
	}
}

// The samples of a packet point into it: no copy per line.
func TestParseSamplesAliasPacket(t *testing.T) {
	p := NewParser(4096, nil)
	packet := []byte("abc:1|c|#t:1\nset:m|s")
	var b metric.Batch
	p.Parse(packet, &b)
	if len(b.Samples) != 2 {
		t.Fatalf("got %d samples", len(b.Samples))
	}
	packet[0], packet[9], packet[17] = 'X', 'Y', 'Z'
	if got := string(b.Samples[0].Name) + "," + string(b.Samples[0].Tags) + "," + string(b.Samples[1].SetMember); got != "Xbc,Y:1,Z" {
		t.Errorf("samples do not alias the packet: %q", got)
	}
}

func TestParseErrorMessages(t *testing.T) {
	f := func(maxLen int, line, want string) {
		t.Helper()
		p := NewParser(maxLen, nil)
		var b metric.Batch
		err := p.parseLine([]byte(line), &b)
		if err == nil {
			t.Fatalf("parseLine(%q): no error", line)
		}
		if got := err.Error(); got != want {
			t.Errorf("parseLine(%q) error\n got %s\nwant %s", line, got, want)
		}
	}
	f(0, "foo:1|zz", `parse "foo:1|zz": unknown metric type "zz"`)
	f(0, "foo:1|", `parse "foo:1|": unknown metric type ""`)
	f(0, "foo", `parse "foo": missing metric type`)
	f(0, "foo|c", `parse "foo|c": missing ':' between name and value`)
	f(0, ":1|c", `parse ":1|c": empty metric name`)
	f(0, "a\x01:1|c", `parse "a\x01:1|c": control character in metric name`)
	f(0, "foo:NaN|g", `parse "foo:NaN|g": invalid value "NaN"`)
	f(0, "foo:|g", `parse "foo:|g": invalid value ""`)
	f(0, "foo:x:y|g", `parse "foo:x:y|g": invalid value "x"`)
	f(0, "foo:|s", `parse "foo:|s": empty set member`)
	f(0, "x:1|c|#\xff", `parse "x:1|c|#\xff": invalid utf-8`)
	f(0, "_e{5,4}:title|tex", `parse "_e{5,4}:title|tex": event shorter than its header says`)
	f(0, "_e{1,1}:t|xy", `parse "_e{1,1}:t|xy": event title or text length does not match its header`)
	f(0, "_sc|db|7", `parse "_sc|db|7": invalid service check status "7"`)
	f(0, "x:1|c|@abc", `parse "x:1|c|@abc": invalid sample rate "abc"`)
	f(0, "x:1|c|@", `parse "x:1|c|@": invalid sample rate ""`)
	f(0, "x:1|c|TABCD", `parse "x:1|c|TABCD": invalid timestamp "ABCD"`)
	// Long input is cut in the message.
	long := "x:1|zz|#" + strings.Repeat("t", 200)
	f(0, long, `parse "`+long[:64]+`...": unknown metric type "zz"`)
	f(0, "x:1|"+strings.Repeat("q", 100), `parse "x:1|`+strings.Repeat("q", 60)+`...": unknown metric type "`+strings.Repeat("q", 64)+`..."`)
	f(10, "x:1|c|#abcdef", `parse "x:1|c|#abcdef": line of 13 bytes is longer than metric_max_length 10`)
}

func TestParseReasonString(t *testing.T) {
	want := []string{"bad_format", "unknown_type", "bad_value", "bad_sample_rate", "line_too_long", "invalid_utf8", "bad_event", "bad_service_check", "bad_timestamp"}
	var got []string
	for r := range numReasons {
		got = append(got, r.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reason strings\n got %q\nwant %q", got, want)
	}
	if s := numReasons.String(); s != "reason_9" {
		t.Errorf("numReasons.String() = %q", s)
	}
	if n := NewParser(0, nil).errorCount(numReasons); n != 0 {
		t.Errorf("Errors(numReasons) = %d", n)
	}
}

func TestParseTelemetry(t *testing.T) {
	reg := telemetry.NewRegistry()
	p := NewParser(4096, reg)
	var b metric.Batch
	p.Parse([]byte("x:NaN|c\ny:1|zz\nz:1|c|@9\nw:Inf|g"), &b)

	want := map[string]float64{"reason:bad_value": 2, "reason:unknown_type": 1, "reason:bad_sample_rate": 1}
	got := map[string]float64{}
	reg.Collect(func(m telemetry.Measurement) {
		if string(m.Name) != "veneur.listener.parse_errors" {
			return
		}
		for _, tag := range strings.Split(string(m.Tags), ",") {
			if strings.HasPrefix(tag, "reason:") {
				got[tag] = m.Value
			}
		}
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listener.parse_errors self-metrics\n got %v\nwant %v", got, want)
	}
	if n := p.errorCount(reasonBadValue); n != 2 {
		t.Errorf("Errors(bad_value) = %d, want 2", n)
	}
}

// One Parser serves every reader goroutine; run with -race.
func TestParseConcurrent(t *testing.T) {
	p := NewParser(4096, telemetry.NewRegistry())
	packet := []byte(typicalPacket + "bad line\nx:1|c|@3\n")
	const goroutines, rounds = 4, 200
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			var b metric.Batch
			for range rounds {
				b.Reset()
				if n := p.Parse(packet, &b); n != 1 {
					t.Errorf("rejected %d lines, want 1", n)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := p.errorCount(reasonBadFormat); n != goroutines*rounds {
		t.Errorf("bad_format = %d, want %d", n, goroutines*rounds)
	}
	if n := p.errorCount(reasonBadSampleRate); n != goroutines*rounds {
		t.Errorf("bad_sample_rate = %d, want %d", n, goroutines*rounds)
	}
}

// typicalPacket is what one datadog-go v5 client flush looks like: a mix of
// types, 2-4 tags, a container id field, some sample rates and a multi-value
// line.
const typicalPacket = "page.views:1|c|#env:prod,service:web,version:1.4.2|c:ci-3f2a9c1d8e7b\n" +
	"req.latency:12.5|ms|@0.5|#route:/api/v1/users,env:prod,method:get|c:ci-3f2a9c1d8e7b\n" +
	"db.query.time:0.003512|d|#env:prod,db:users,op:select|c:ci-3f2a9c1d8e7b\n" +
	"queue.depth:42|g|#env:prod,queue:emails|c:ci-3f2a9c1d8e7b\n" +
	"active.users:u-18293|s|#env:prod,plan:pro|c:ci-3f2a9c1d8e7b\n" +
	"payload.size:512:1024:2048|h|#env:prod,endpoint:upload|c:ci-3f2a9c1d8e7b\n" +
	"cache.hit:1|c|@0.1|#env:prod,cache:redis,region:us-east-1|c:ci-3f2a9c1d8e7b\n" +
	"worker.busy:-3|g|#env:prod,pool:default|c:ci-3f2a9c1d8e7b|T1700000000\n"

func TestParseAllocs(t *testing.T) {
	p := NewParser(4096, telemetry.NewRegistry())
	packet := []byte(typicalPacket + strings.ReplaceAll(typicalPacket, "\n", "\r\n"))
	b := metric.Batch{Samples: make([]metric.Sample, 0, 256)}
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		if n := p.Parse(packet, &b); n != 0 {
			t.Fatalf("rejected %d lines", n)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse of a typical packet: %v allocs, want 0", allocs)
	}
	// Counted-but-kept problems must not allocate either.
	bad := []byte("x:1|c|@7\nx:1:NaN:2|h\nx:1|c|#\xff\nx:1|c|TABCD\n")
	allocs = testing.AllocsPerRun(100, func() {
		b.Reset()
		p.Parse(bad, &b)
	})
	if allocs != 0 {
		t.Errorf("Parse of a packet with bad lines: %v allocs, want 0", allocs)
	}
	line := []byte("req.latency:12.5|ms|@0.5|#route:/a,env:prod|c:ci-abc")
	allocs = testing.AllocsPerRun(100, func() {
		b.Reset()
		if err := p.parseLine(line, &b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("parseLine: %v allocs, want 0", allocs)
	}
}

// parseValue's fast path must agree with strconv.ParseFloat bit for bit.
func TestParseValueMatchesStrconv(t *testing.T) {
	inputs := []string{
		"0", "-0", "+0", "1", "-1", "12.5", "0.1", "0.3", "1.0", "100", "999999999999999", "9999999999999999",
		"0.000000000000001", "123456.789012345", "1234567890.12345", "3.141592653589793", "2.2250738585072014e-308",
		"4503599627370497", "9007199254740993", "0.1e1", "1e23", "00000000000000001", "1.", ".1", "-.1", "+.1",
		"", ".", "-", "+", "1..2", "1.2.3", "1e", "e1", "0x10", "1_0", "NaN", "Inf", "-Inf", "infinity",
	}
	for _, s := range inputs {
		checkParseValue(t, s)
	}
	// Random decimals around the fast path's limits.
	for i := range 20000 {
		digits := strconv.FormatUint(uint64(i)*2654435761%1e17, 10)
		dot := i % (len(digits) + 1)
		s := digits[:dot] + "." + digits[dot:]
		if i%3 == 0 {
			s = "-" + s
		}
		checkParseValue(t, s)
	}
}

func checkParseValue(t *testing.T, s string) {
	t.Helper()
	got, ok := parseValue([]byte(s))
	want, err := strconv.ParseFloat(s, 64)
	wantOK := err == nil && !math.IsNaN(want) && !math.IsInf(want, 0)
	if ok != wantOK || (ok && math.Float64bits(got) != math.Float64bits(want)) {
		t.Errorf("parseValue(%q) = %v, %v; strconv says %v, %v", s, got, ok, want, err)
	}
}

// isInt64 must agree with strconv.ParseInt(s, 10, 64), which it replaces
// to keep bad |T fields from allocating an error.
func TestIsInt64MatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "1", "-1", "+1", "1700000000", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
		"99999999999999999999", "00000000000000000000001", "", "+", "-", "--1", "+-1", "1-", "1.0", "1e3",
		"0x10", "1_000", " 1", "1 ", "a", "١",
	} {
		checkIsInt64(t, s)
	}
}

func checkIsInt64(t *testing.T, s string) {
	t.Helper()
	_, err := strconv.ParseInt(s, 10, 64)
	if got := isInt64([]byte(s)); got != (err == nil) {
		t.Errorf("isInt64(%q) = %v; strconv.ParseInt says %v", s, got, err)
	}
}
