package main

import (
	"strings"
	"testing"
	"time"
)

func TestMetricLine(t *testing.T) {
	f := func(m Metric, want string) {
		t.Helper()
		got, err := m.AppendTo([]byte("prefix "))
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if string(got) != "prefix "+want {
			t.Errorf("%+v\n got %q\nwant %q", m, got, "prefix "+want)
		}
	}
	f(Metric{Name: "deploys", Value: "1", Type: "c"}, "deploys:1|c")
	f(Metric{Name: "deploys", Value: "0.25", Type: "c", Tags: []string{"env:dev", "team"}}, "deploys:0.25|c|#env:dev,team")
	f(Metric{Name: "queue.depth", Value: "-4", Type: "g"}, "queue.depth:-4|g")
	f(Metric{Name: "job.time", Value: "1500", Type: "ms", Tags: []string{"exit_status:0"}}, "job.time:1500|ms|#exit_status:0")
	f(Metric{Name: "req.size", Value: "512", Type: "h"}, "req.size:512|h")
	f(Metric{Name: "req.latency", Value: "0.5", Type: "d"}, "req.latency:0.5|d")
	f(Metric{Name: "users", Value: "alice", Type: "s"}, "users:alice|s")
	// Only "_e{" starts an event, and "_sc|" a service check.
	f(Metric{Name: "_e", Value: "1", Type: "c"}, "_e:1|c")
	f(Metric{Name: "_sc", Value: "1", Type: "c"}, "_sc:1|c")
	// A set's member is a string: ':' and '#' are part of it.
	f(Metric{Name: "users", Value: "user:42#a", Type: "s"}, "users:user:42#a|s")
	// ':' splits a tag's key from its value, and may appear again in it.
	f(Metric{Name: "x", Value: "1", Type: "c", Tags: []string{"url:http://h:80/", "issue:#12", "host:box"}}, "x:1|c|#url:http://h:80/,issue:#12,host:box")
	f(Metric{Name: "ünïcode.名前", Value: "1", Type: "c", Tags: []string{"ключ:значение"}}, "ünïcode.名前:1|c|#ключ:значение")
}

func TestMetricLineRejects(t *testing.T) {
	f := func(m Metric, wantErr string) {
		t.Helper()
		got, err := m.AppendTo([]byte("keep"))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%+v: error %v, want one containing %q", m, err, wantErr)
		}
		if string(got) != "keep" {
			t.Errorf("%+v: dst became %q, want it unchanged", m, got)
		}
	}
	f(Metric{Name: "", Value: "1", Type: "c"}, "empty metric name")
	f(Metric{Name: "a|b", Value: "1", Type: "c"}, `metric name "a|b": '|' is not allowed`)
	f(Metric{Name: "a:b", Value: "1", Type: "c"}, `metric name "a:b": ':' is not allowed`)
	f(Metric{Name: "a,b", Value: "1", Type: "c"}, `metric name "a,b": ',' is not allowed`)
	f(Metric{Name: "a#b", Value: "1", Type: "c"}, `metric name "a#b": '#' is not allowed`)
	f(Metric{Name: "a\nb:1|c", Value: "1", Type: "c"}, `control character '\n' is not allowed`)
	f(Metric{Name: "a\rb", Value: "1", Type: "c"}, `control character '\r' is not allowed`)
	f(Metric{Name: "a\tb", Value: "1", Type: "c"}, `control character '\t' is not allowed`)
	f(Metric{Name: "a\xffb", Value: "1", Type: "c"}, "not valid UTF-8")
	f(Metric{Name: "_e{1", Value: "1", Type: "c"}, "a line that starts with _e{ is an event")
	f(Metric{Name: "x", Value: "1", Type: "cc"}, `metric type "cc"`)
	f(Metric{Name: "x", Value: "", Type: "c"}, "empty metric value")
	f(Metric{Name: "x", Value: "1:2", Type: "h"}, `value "1:2": ':' is not allowed`)
	f(Metric{Name: "users", Value: "a|b", Type: "s"}, `value "a|b": '|' is not allowed`)
	f(Metric{Name: "users", Value: "a\nb", Type: "s"}, "control character")
	f(Metric{Name: "x", Value: "1", Type: "c", Tags: []string{"a|b"}}, `tag "a|b": '|' is not allowed`)
	f(Metric{Name: "x", Value: "1", Type: "c", Tags: []string{"a,b"}}, `tag "a,b": ',' is not allowed`)
	f(Metric{Name: "x", Value: "1", Type: "c", Tags: []string{"a\nb"}}, `tag "a\nb": control character`)
	f(Metric{Name: "x", Value: "1", Type: "c", Tags: []string{""}}, "empty tag")
}

func TestEventLine(t *testing.T) {
	f := func(e Event, want string) {
		t.Helper()
		got, err := e.AppendTo(nil)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if string(got) != want {
			t.Errorf("%+v\n got %q\nwant %q", e, got, want)
		}
	}
	f(Event{Title: "deploy"}, "_e{6,0}:deploy|")
	f(Event{Title: "deploy", Text: "v1.2 to prod"}, "_e{6,12}:deploy|v1.2 to prod")
	// Line breaks become the two bytes `\n`, and the lengths count them.
	f(Event{Title: "two\nlines", Text: "a\nb\r\nc"}, `_e{10,7}:two\nlines|a\nb\nc`)
	// The two characters `\n` typed by a user are sent as they are (the
	// server reads them as a line break, as in every Datadog client).
	f(Event{Title: "t", Text: `a\nb`}, `_e{1,4}:t|a\nb`)
	// Lengths are in bytes, not characters.
	f(Event{Title: "déploiement", Text: "✓ fini"}, "_e{12,8}:déploiement|✓ fini")
	// The lengths frame the title and text, so '|', ':', ',' and '#' in
	// them are harmless.
	f(Event{Title: "a|b:c", Text: "x,y|#z"}, "_e{5,6}:a|b:c|x,y|#z")
	f(Event{
		Title: "deploy", Text: "done", Timestamp: 1700000000, Hostname: "box",
		AggregationKey: "rel-42", Priority: "low", SourceType: "jenkins", AlertType: "success",
		Tags: []string{"env:prod", "team:web"},
	}, "_e{6,4}:deploy|done|d:1700000000|h:box|k:rel-42|p:low|s:jenkins|t:success|#env:prod,team:web")
}

func TestEventLineRejects(t *testing.T) {
	f := func(e Event, wantErr string) {
		t.Helper()
		_, err := e.AppendTo(nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%+v: error %v, want one containing %q", e, err, wantErr)
		}
	}
	f(Event{}, "empty event title")
	f(Event{Title: "a\rb"}, "carriage return")
	f(Event{Title: "t", Text: "a\rb"}, "carriage return")
	f(Event{Title: "t", Text: "\xff"}, "not valid UTF-8")
	f(Event{Title: "t", Priority: "urgent"}, `event priority "urgent"`)
	f(Event{Title: "t", AlertType: "fatal"}, `event alert type "fatal"`)
	f(Event{Title: "t", Timestamp: -1}, "event time -1")
	f(Event{Title: "t", Hostname: "a|b"}, `event hostname "a|b": '|' is not allowed`)
	f(Event{Title: "t", AggregationKey: "k\n"}, "event aggregation key")
	f(Event{Title: "t", SourceType: "s|t:x"}, "event source type")
	f(Event{Title: "t", Tags: []string{"a|b"}}, `tag "a|b"`)
}

func TestServiceCheckLine(t *testing.T) {
	f := func(sc ServiceCheck, want string) {
		t.Helper()
		got, err := sc.AppendTo(nil)
		if err != nil {
			t.Fatalf("%+v: %v", sc, err)
		}
		if string(got) != want {
			t.Errorf("%+v\n got %q\nwant %q", sc, got, want)
		}
	}
	f(ServiceCheck{Name: "db.up", Status: StatusOK}, "_sc|db.up|0")
	f(ServiceCheck{Name: "db.up", Status: StatusUnknown}, "_sc|db.up|3")
	// The message goes last, after the tags.
	f(ServiceCheck{
		Name: "db.up", Status: StatusCritical, Timestamp: 1700000000, Hostname: "db1",
		Tags: []string{"env:prod"}, Message: "replica lag: 30s, #3",
	}, "_sc|db.up|2|d:1700000000|h:db1|#env:prod|m:replica lag: 30s, #3")
	f(ServiceCheck{Name: "db.up", Status: StatusWarning, Message: "line one\nline two\r\n"}, `_sc|db.up|1|m:line one\nline two\n`)
	// An "m:" inside the message is not a new field (it is the last one).
	f(ServiceCheck{Name: "c", Status: StatusOK, Message: "m:x h:y"}, "_sc|c|0|m:m:x h:y")
}

func TestServiceCheckLineRejects(t *testing.T) {
	f := func(sc ServiceCheck, wantErr string) {
		t.Helper()
		_, err := sc.AppendTo(nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%+v: error %v, want one containing %q", sc, err, wantErr)
		}
	}
	f(ServiceCheck{}, "empty service check name")
	f(ServiceCheck{Name: "a|b"}, `service check name "a|b": '|' is not allowed`)
	f(ServiceCheck{Name: "a\nb"}, "control character")
	f(ServiceCheck{Name: "c", Status: 4}, "service check status 4")
	f(ServiceCheck{Name: "c", Status: -1}, "service check status -1")
	f(ServiceCheck{Name: "c", Timestamp: -5}, "service check time -5")
	f(ServiceCheck{Name: "c", Hostname: "h|x"}, "service check hostname")
	f(ServiceCheck{Name: "c", Tags: []string{"a,b"}}, `tag "a,b"`)
	f(ServiceCheck{Name: "c", Message: "a|b"}, `service check message "a|b": '|' is not allowed`)
	f(ServiceCheck{Name: "c", Message: "a\rb"}, "carriage return")
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "ok": 0, "OK": 0, "1": 1, "Warning": 1, "2": 2, "CRITICAL": 2, "3": 3, "unknown": 3} {
		if got, err := parseStatus(in); err != nil || got != want {
			t.Errorf("parseStatus(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "4", "-1", "crit", "00"} {
		if _, err := parseStatus(in); err == nil {
			t.Errorf("parseStatus(%q) accepted", in)
		}
	}
}

func TestFormatNumbers(t *testing.T) {
	for in, want := range map[float64]string{
		1: "1", -4: "-4", 0.25: "0.25", 1e21: "1000000000000000000000", 1e-7: "0.0000001", 123456.789: "123456.789",
	} {
		if got := formatNumber(in); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[time.Duration]string{
		0: "0", 1500 * time.Millisecond: "1500", 1500 * time.Microsecond: "1.5", time.Nanosecond: "0.000001", 2 * time.Hour: "7200000",
	} {
		if got := formatMillis(in); got != want {
			t.Errorf("formatMillis(%v) = %q, want %q", in, got, want)
		}
	}
}
