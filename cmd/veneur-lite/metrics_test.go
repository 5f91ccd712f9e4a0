package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneur-lite/veneur-lite/internal/await"
	"github.com/veneur-lite/veneur-lite/internal/promname"
	"github.com/veneur-lite/veneur-lite/telemetry"
)

// scrapeMetrics GETs /metrics and parses it with Prometheus's text parser.
func scrapeMetrics(httpAddr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(resp.Body)
}

// counterValue is the value of the family's series whose labels include
// every label in want.
func counterValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil || f.GetType() != dto.MetricType_COUNTER {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

// A running daemon's /metrics shows the same registry that its flushes
// send as veneur.* series: what it counted is there, as counters with
// their totals, and scraping takes nothing from the flushed increases.
func TestMetricsEndpointOfRunningDaemon(t *testing.T) {
	td := startDaemon(t, testConfig(t))
	c, err := net.Dial("udp", td.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 25
	for range n {
		if _, err := c.Write([]byte("ok:1|c\nbad:1|zz")); err != nil {
			t.Fatal(err)
		}
	}
	var fams map[string]*dto.MetricFamily
	await.Until(t, 10*time.Second, func() (bool, string) {
		fams, err = scrapeMetrics(td.http.Addr())
		if err != nil {
			return false, err.Error()
		}
		v, _ := counterValue(fams, "veneur_listener_packets_received_total", map[string]string{"protocol": "udp"})
		return v == n, fmt.Sprintf("packets_received{protocol=udp} = %v", v)
	})
	for name, labels := range map[string]map[string]string{
		"veneur_listener_packets_received_total": {"protocol": "udp"},
		"veneur_listener_metrics_received_total": {"protocol": "udp"},
		"veneur_listener_parse_errors_total":     {"reason": "unknown_type"},
	} {
		if v, ok := counterValue(fams, name, labels); !ok || v != n {
			t.Errorf("%s%v = %v (found %v), want %d", name, labels, v, ok, n)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "veneur_") {
			t.Errorf("family %s lacks the veneur_ prefix", name)
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s lacks _total", name)
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "veneur_internal_metric" {
					t.Errorf("%s carries veneur_internal_metric", name)
				}
			}
		}
	}

	td.stop(t)
	flushed := 0.0
	td.sink.mu.Lock()
	for _, p := range td.sink.points {
		if p.Name == "veneur.listener.packets_received" && strings.Contains(strings.Join(p.Tags, ","), "protocol:udp") {
			flushed += p.Value * p.Interval.Seconds()
		}
		if p.Name == "veneur.listener.packets_received" && !strings.Contains(strings.Join(p.Tags, ","), telemetry.InternalTag) {
			t.Errorf("flushed self-metric without %s: %v", telemetry.InternalTag, p.Tags)
		}
	}
	td.sink.mu.Unlock()
	if flushed < n-1e-6 || flushed > n+1e-6 {
		t.Errorf("flushed veneur.listener.packets_received{protocol:udp} adds up to %v after the scrapes, want %d", flushed, n)
	}
}

// The real binary's /metrics, with listeners, sinks and a forwarder that
// have all been busy (the global tier and the sinks' backends are closed
// ports, so errors and retries move too), passes promtool check metrics,
// and every family's # HELP is its catalog row's help, the sentence of its
// docs/output.md row.
func TestBinaryMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it): cannot lint /metrics")
	}
	udp, httpAddr, closed := freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp")
	startBinary(t, fmt.Sprintf(`statsd_listen_addresses: [udp://%[1]s]
http_address: %[2]s
interval: 1s
hostname: box
forward_address: http://%[3]s
metric_sinks:
  - kind: datadog
    name: dd
    config: {api_key: k, api_hostname: "http://%[3]s", timeout: 200ms}
  - kind: prometheus_remote_write
    name: prom
    config: {url: "http://%[3]s/api/v1/write", timeout: 200ms}
`, udp, httpAddr, closed))
	waitHealthy(t, httpAddr)
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var body []byte
	await.Until(t, 20*time.Second, func() (bool, string) {
		// Sent again until seen: a datagram may be lost.
		if _, err := c.Write([]byte("ok:1|h\nbad:1|zz\n")); err != nil {
			return false, err.Error()
		}
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return false, err.Error()
		}
		for _, moved := range []string{
			"veneur_flush_duration_seconds_count ",
			"veneur_forward_request_duration_seconds_count ",
			`veneur_sink_flush_duration_seconds_count{sink="dd"} `,
			`veneur_sink_flush_duration_seconds_count{sink="prom"} `,
			`veneur_listener_parse_errors_total{reason="unknown_type"} `,
		} {
			if !bytes.Contains(body, []byte(moved)) || bytes.Contains(body, []byte(moved+"0\n")) {
				return false, moved + "not moved yet"
			}
		}
		return true, ""
	})

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\n/metrics:\n%s", err, out, body)
	}

	help := map[string]string{}
	for _, s := range telemetry.Catalog {
		name := promname.MetricName("veneur." + s.Name)
		if s.Kind == telemetry.KindCounter {
			name += "_total"
		}
		help[name] = s.Help
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range fams {
		if want, ok := help[name]; !ok || f.GetHelp() != want {
			t.Errorf("%s: HELP %q, want the catalog's %q (found %v)", name, f.GetHelp(), want, ok)
		}
	}
	if h := fams["veneur_forward_request_duration_seconds"]; h.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("forward request duration is a %v, want a histogram", h.GetType())
	}
}
