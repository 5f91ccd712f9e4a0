package listener

import (
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/metric"
)

// udpRoundTrip sends each datagram to a fresh one-reader UDP listener,
// waits until every name in wait has arrived (a datagram is parsed and
// pushed as one batch, so the rest of it has arrived too), then stops the
// listener so that nothing more can arrive and returns what it pushed.
func udpRoundTrip(t *testing.T, parser *Parser, wait []string, datagrams ...string) *countingPusher {
	t.Helper()
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "udp", "127.0.0.1:0", Options{Pusher: p, Parser: parser, NumReaders: 1})
	conn, err := net.Dial("udp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, d := range datagrams {
		if _, err := conn.Write([]byte(d)); err != nil {
			t.Fatalf("write %d-byte datagram: %v", len(d), err)
		}
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		for _, name := range wait {
			if p.sum(name) == 0 {
				return false, name + " has not arrived"
			}
		}
		return true, ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad lines of every new kind sit between good ones in one datagram: each
// good line arrives exactly once, each bad one is dropped and counted.
func TestUDPBadRateAndTimestampDropOnlyTheirLine(t *testing.T) {
	lines := []string{
		"good.a:1|c",
		"bad:1|c|@",
		"good.b:1|c",
		"bad:666|g|@abc",
		"good.c:1|c|@1",
		"bad:1|c|T",
		"good.d:1|c|T1700000000",
		"bad:1|c|TABCD",
		"good.e:1|c|@7", // a number outside (0,1]: kept with rate 1, counted
		"bad:1:2|h|@0.5|T1.5|#a",
		"good.f:1|c",
	}
	parser := NewParser(4096, nil)
	var good []string
	for _, l := range lines {
		if name, _, _ := strings.Cut(l, ":"); strings.HasPrefix(name, "good.") {
			good = append(good, name)
		}
	}
	p := udpRoundTrip(t, parser, good, strings.Join(lines, "\n")+"\n")
	for _, name := range good {
		if got := p.sum(name); got != 1 {
			t.Errorf("%s = %v, want exactly 1", name, got)
		}
	}
	if got := p.sum("bad"); got != 0 {
		t.Errorf("bad lines yielded %v", got)
	}
	if n := parser.errorCount(reasonBadSampleRate); n != 3 {
		t.Errorf("bad_sample_rate = %d, want 3 (two rejected lines, one kept)", n)
	}
	if n := parser.errorCount(reasonBadTimestamp); n != 3 {
		t.Errorf("bad_timestamp = %d, want 3", n)
	}
}

// A 64 KiB-class datagram (the most a UDP datagram carries over IPv4) is
// read whole: every one of its lines counts, bad ones among them cost only
// themselves, and a line over metric_max_length costs only itself.
func TestUDPLargestDatagram(t *testing.T) {
	const maxUDPPayload = 65507 // 65535 - 8 (UDP header) - 20 (IPv4 header)
	parser := NewParser(4096, nil)
	var b strings.Builder
	good := 0
	var want [numReasons]uint64
	for i := 0; ; i++ {
		line, r := fmt.Sprintf("big:1|c|#i:%d\r\n", i), numReasons
		switch i % 50 {
		case 10:
			line, r = "x:1|c|@abc\n", reasonBadSampleRate
		case 20:
			line, r = "x:1|c|#"+strings.Repeat("t", 5000)+"\n", reasonLineTooLong
		case 30:
			line, r = "x:NaN|g\n", reasonBadValue
		}
		if b.Len()+len(line)+len("last:1|c") > maxUDPPayload {
			break
		}
		b.WriteString(line)
		if r == numReasons {
			good++
		} else {
			want[r]++
		}
	}
	b.WriteString("last:1|c")
	packet := strings.Repeat("\n", maxUDPPayload-b.Len()) + b.String() // empty lines are fine
	if len(packet) != maxUDPPayload || good < 400 {
		t.Fatalf("built %d bytes, %d good lines", len(packet), good)
	}
	p := udpRoundTrip(t, parser, []string{"last"}, packet)
	if got := p.sum("big"); got != float64(good) {
		t.Errorf("big = %v, want %d", got, good)
	}
	if got := p.sum("last"); got != 1 {
		t.Errorf("last = %v, want 1", got)
	}
	if got := errorCounts(parser); got != want {
		t.Errorf("parse error counts %v, want %v", got, want)
	}
}

// Events and checks with bad optional fields are kept, their host: and
// dd.internal.* tags are consumed, and the lines around them arrive once.
func TestUDPEventsAndChecksKeptWithBadFields(t *testing.T) {
	lines := []string{
		"good.a:1|c",
		"_e{6,4}:deploy|text|d:abc|p:urgent|t:test|#host:web2,dd.internal.entity_id:pod1,env:prod",
		"good.b:1|c",
		"_sc|db.up|2|d:yesterday|h:web1|#host:web2,dd.internal.card:high,env:prod|m:down",
		"good.c:1|c",
		"_e{5,1}:other|x|#host:",
		"good.d:1|c",
	}
	parser := NewParser(4096, nil)
	p := udpRoundTrip(t, parser, []string{"good.a", "good.b", "good.c", "good.d"}, strings.Join(lines, "\n"))
	for _, name := range []string{"good.a", "good.b", "good.c", "good.d"} {
		if got := p.sum(name); got != 1 {
			t.Errorf("%s = %v, want exactly 1", name, got)
		}
	}
	wantEvents := []metric.Event{
		{Title: "deploy", Text: "text", Priority: "normal", AlertType: "info", Hostname: "web2", HostSet: true, Tags: []string{"env:prod"}},
		{Title: "other", Text: "x", Priority: "normal", AlertType: "info", HostSet: true},
	}
	wantChecks := []metric.ServiceCheck{
		{Name: "db.up", Status: metric.CheckCritical, Hostname: "web1", HostSet: true, Tags: []string{"env:prod"}, Message: "down"},
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !reflect.DeepEqual(p.events, wantEvents) {
		t.Errorf("events\n got %#v\nwant %#v", p.events, wantEvents)
	}
	if !reflect.DeepEqual(p.checks, wantChecks) {
		t.Errorf("checks\n got %#v\nwant %#v", p.checks, wantChecks)
	}
	if n, m := parser.errorCount(reasonBadEvent), parser.errorCount(reasonBadServiceCheck); n != 1 || m != 1 {
		t.Errorf("bad_event = %d, bad_service_check = %d; want 1 each (fields ignored, lines kept)", n, m)
	}
}

// Over TCP the same bad lines cost only themselves and the connection
// stays open: lines written after them, on the same connection, count.
func TestTCPBadLinesKeepConnection(t *testing.T) {
	parser := NewParser(4096, nil)
	p := &countingPusher{sums: map[string]float64{}}
	l, cancel, done := startListener(t, "tcp", "127.0.0.1:0", Options{Pusher: p, Parser: parser})
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := "good.a:1|c\r\nbad:1|c|@\nbad:666|g|@abc\r\nbad:1|c|TABCD\nbad:1|cc2\nbad:NaN|g\n" +
		"_e{1,1}:t|x|p:urgent\n_sc|db|0|d:x\ngood.b:1:2|c|T1700000000\n"
	if _, err := c.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		return p.sum("good.b") == 3, fmt.Sprintf("good.b = %v", p.sum("good.b"))
	})
	if _, err := c.Write([]byte("good.c:1|c\n")); err != nil {
		t.Fatalf("connection closed after bad lines: %v", err)
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		return p.sum("good.c") == 1, "a line written after the bad ones did not arrive"
	})
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.sum("good.a") != 1 || p.sum("good.b") != 3 || p.sum("good.c") != 1 || p.sum("bad") != 0 || p.evts != 2 {
		t.Errorf("sums %v, %d events and checks; want good.a 1, good.b 3, good.c 1, no bad, 2 events and checks", p.sums, p.evts)
	}
	want := [numReasons]uint64{reasonBadSampleRate: 2, reasonBadTimestamp: 1, reasonUnknownType: 1, reasonBadValue: 1,
		reasonBadEvent: 1, reasonBadServiceCheck: 1}
	if got := errorCounts(parser); got != want {
		t.Errorf("parse error counts %v, want %v", got, want)
	}
}

// A Unix datagram of exactly 64 KiB is read whole, its bad lines costing
// only themselves.
func TestUnixgramFullSizeDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsd.sock")
	parser := NewParser(4096, nil)
	p := &countingPusher{sums: map[string]float64{}}
	_, cancel, done := startListener(t, "unixgram", path, Options{Pusher: p, Parser: parser, NumReaders: 1})
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	good, bad := 0, 0
	for i := 0; ; i++ {
		line := "full:1|c|#n:" + strconv.Itoa(i) + "\n"
		if i%100 == 50 {
			line = "x:1|c|TABCD\n"
		}
		if b.Len()+len(line)+len("last:1|c") > maxDatagramSize {
			break
		}
		b.WriteString(line)
		if strings.HasPrefix(line, "full:") {
			good++
		} else {
			bad++
		}
	}
	b.WriteString(strings.Repeat("\n", maxDatagramSize-b.Len()-len("last:1|c")) + "last:1|c")
	if b.Len() != maxDatagramSize {
		t.Fatalf("built %d bytes", b.Len())
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatalf("write %d bytes: %v", b.Len(), err)
	}
	await.Until(t, 5*time.Second, func() (bool, string) {
		return p.sum("last") == 1, "the 64 KiB datagram has not arrived"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.sum("full") != float64(good) || parser.errorCount(reasonBadTimestamp) != uint64(bad) {
		t.Errorf("full = %v, bad_timestamp = %d; want %d and %d", p.sum("full"), parser.errorCount(reasonBadTimestamp), good, bad)
	}
}
