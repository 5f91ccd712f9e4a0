package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/veneur-lite/veneur-lite/listener"
	"github.com/veneur-lite/veneur-lite/metric"
)

// Whatever the builders accept, veneur-lite's own parser reads back as
// exactly what was given: no line is broken, none turns into another.
//
//	go test ./cmd/veneur-emit -run '^$' -fuzz FuzzLinesRoundTrip -fuzztime 60s
func FuzzLinesRoundTrip(f *testing.F) {
	f.Add("deploys", "env:dev", "user:42", "Deployed", "v1.2\nto prod", "lag 30s")
	f.Add("a|b", "a,b", "x|y", "t|i:t,l#e", "a|b\r\nc", "m:x\ny")
	f.Add("é.名前", "url:http://h:80/#frag", "#:,", "\\n", "", "\\")
	f.Add("x\ny", "k:v\r", "a\rb", "", "t\x00ext", "a|b")
	f.Add("_e{1", "_sc", "_e{1,1}", "_e{1,1}:", "_sc|c|0", "|m:x")
	f.Fuzz(func(t *testing.T, name, tag, member, title, text, msg string) {
		if strings.HasPrefix(tag, "host:") || strings.HasPrefix(tag, "dd.internal.") {
			t.Skip("consumed by the server, by design")
		}
		var payload []byte
		var want metric.Batch
		add := func(l appender) bool {
			var err error
			payload, err = appendLine(payload, l)
			return err == nil
		}
		tags := []string{tag}
		if add(Metric{Name: name, Value: "1", Type: "c", Tags: tags}) {
			want.Samples = append(want.Samples, metric.Sample{Name: []byte(name), Tags: []byte(tag), Value: 1, Rate: 1, Kind: metric.Counter})
		}
		if add(Metric{Name: "s", Value: member, Type: "s"}) {
			want.Samples = append(want.Samples, metric.Sample{Name: []byte("s"), SetMember: []byte(member), Rate: 1, Kind: metric.Set})
		}
		if add(Event{Title: title, Text: text, Tags: tags}) {
			// Line breaks, and the two characters \n, arrive as line breaks.
			unescape := func(s string) string {
				return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), `\n`, "\n")
			}
			want.Events = append(want.Events, metric.Event{Title: unescape(title), Text: unescape(text), Tags: tags})
		}
		if add(ServiceCheck{Name: "c", Status: StatusWarning, Tags: tags, Message: msg}) {
			// The server keeps the message as sent, `\n` escapes included.
			sent := strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", `\n`)
			want.Checks = append(want.Checks, metric.ServiceCheck{Name: "c", Status: metric.CheckWarning, Tags: tags, Message: sent})
		}

		var got metric.Batch
		if rejected := listener.NewParser(0, nil).Parse(payload, &got); rejected != 0 {
			t.Fatalf("veneur-lite rejected %d lines of %q", rejected, payload)
		}
		if len(got.Samples) != len(want.Samples) || len(got.Events) != len(want.Events) || len(got.Checks) != len(want.Checks) {
			t.Fatalf("%q parsed as %d samples, %d events, %d checks; want %d, %d, %d", payload,
				len(got.Samples), len(got.Events), len(got.Checks), len(want.Samples), len(want.Events), len(want.Checks))
		}
		for i, w := range want.Samples {
			g := got.Samples[i]
			if string(g.Name) != string(w.Name) || string(g.Tags) != string(w.Tags) || string(g.SetMember) != string(w.SetMember) || g.Kind != w.Kind || g.Value != w.Value {
				t.Errorf("%q: sample %d is %q %q %q %v %v, want %q %q %q %v %v", payload, i,
					g.Name, g.Tags, g.SetMember, g.Kind, g.Value, w.Name, w.Tags, w.SetMember, w.Kind, w.Value)
			}
		}
		for i, w := range want.Events {
			g := got.Events[i]
			if g.Title != w.Title || g.Text != w.Text || !slices.Equal(g.Tags, w.Tags) {
				t.Errorf("%q: event %q %q %q, want %q %q %q", payload, g.Title, g.Text, g.Tags, w.Title, w.Text, w.Tags)
			}
		}
		for i, w := range want.Checks {
			g := got.Checks[i]
			if g.Name != w.Name || g.Status != w.Status || g.Message != w.Message || !slices.Equal(g.Tags, w.Tags) {
				t.Errorf("%q: check %q %v %q %q, want %q %v %q %q", payload, g.Name, g.Status, g.Message, g.Tags, w.Name, w.Status, w.Message, w.Tags)
			}
		}
	})
}
