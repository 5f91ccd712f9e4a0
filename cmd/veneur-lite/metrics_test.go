package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneur-lite/veneur-lite/internal/await"
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
		"veneur_parse_errors_total":              {"reason": "unknown_type"},
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
