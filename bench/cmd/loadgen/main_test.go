package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()

	for _, c := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"-addr", addr, "-rate", "20000", "-duration", "50ms", "-sockets", "2"}, 0, "sent "},
		{[]string{"-addr", addr, "-mode", "datadog-go", "-rate", "20000", "-max-metrics", "100", "-sockets", "1", "-mix", "c:1"}, 0, "by type: c=100"},
		{[]string{"-addr", "192.0.2.1:8125"}, 1, "only sends to 127.0.0.1"},
		{[]string{"-addr", addr, "-mix", "c:1,x:2"}, 2, `unknown type "x"`},
		{[]string{"-addr", addr, "stray"}, 2, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != c.code || !strings.Contains(out, c.contains) {
			t.Errorf("loadgen %q: exit %d, output %q; want exit %d containing %q", c.args, code, out, c.code, c.contains)
		}
	}
}
