package exposition

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneur-lite/veneur-lite/telemetry"
)

// scrape GETs /metrics from a real server and parses the answer with
// Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample finds the value of the series of family name whose labels are
// exactly labels, and fails when there is none or more than one.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, labels map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s; have %v", name, names(fams))
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
	}
	var found []float64
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if !mapsEqual(got, labels) {
			continue
		}
		if typ == dto.MetricType_COUNTER {
			found = append(found, m.GetCounter().GetValue())
		} else {
			found = append(found, m.GetGauge().GetValue())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1 (family: %v)", name, labels, len(found), f)
	}
	return found[0]
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func names(fams map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range fams {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// testSpecs declare the metrics TestHandler registers.
var testSpecs = []telemetry.Spec{
	{Name: "listener.packets_received", Kind: telemetry.KindCounter, Tags: []string{"protocol"}, Help: "Datagrams read."},
	{Name: "sink.requests", Kind: telemetry.KindCounter, Tags: []string{"sink", "status_class"}, Help: "Answers by status class."},
	{Name: "already.total", Kind: telemetry.KindCounter, Help: "Already suffixed."},
	{Name: "never.moved", Kind: telemetry.KindCounter, Help: "Never moved."},
	{Name: "flush.duration_seconds", Kind: telemetry.KindGauge, Help: "Flush duration."},
	{Name: "never.set", Kind: telemetry.KindGauge, Help: "Never set."},
	{Name: "odd", Kind: telemetry.KindGauge, Tags: []string{"quote", "nl", "valueless", "9bad.key"}, Help: `Odd "help" with a \ and \n.`},
	{Name: "import.duration_seconds", Kind: telemetry.KindHistogram, Tags: []string{"stage"}, Help: "Import durations."},
	{Name: "idle.duration_seconds", Kind: telemetry.KindHistogram, Help: "Never observed."},
	{Name: "x", Kind: telemetry.KindCounter, Help: "X."},
	{Name: "x_total", Kind: telemetry.KindGauge, Help: "X total."},
	{Name: "a.b", Kind: telemetry.KindGauge, Tags: []string{"k"}, Help: "A dot B."},
	{Name: "a_b", Kind: telemetry.KindGauge, Tags: []string{"k"}, Help: "A underscore B."},
}

func TestHandler(t *testing.T) {
	reg := telemetry.NewRegistryOf(testSpecs)
	const n = 37
	udp := reg.Counter("listener.packets_received", "protocol:udp")
	for range n {
		udp.Inc()
	}
	reg.Counter("listener.packets_received", "protocol:tcp").Add(5)
	reg.Counter("sink.requests", "sink:prom.main", "status_class:2xx").Add(3)
	reg.Counter("already.total").Add(2)
	reg.Counter("never.moved") // registered: shows 0, as a counter should
	reg.Gauge("flush.duration_seconds").Set(0.25)
	reg.Gauge("never.set")
	reg.Gauge("odd", `quote:say "hi"\`, "nl:a\nb", "valueless", "9bad.key:x").Set(-2)
	decode := reg.Histogram("import.duration_seconds", "stage:decode")
	decode.Observe(0.003)
	decode.Observe(0.2)
	decode.Observe(40)
	reg.Histogram("idle.duration_seconds") // shows empty buckets, as a counter shows 0

	srv := httptest.NewServer(Handler(reg, nil))
	defer srv.Close()

	// Read twice: the totals stay, and the flush's increases stay
	// untouched by the scrapes.
	for range 2 {
		fams := scrape(t, srv.URL)
		want := []string{
			"veneur_already_total",
			"veneur_flush_duration_seconds",
			"veneur_idle_duration_seconds",
			"veneur_import_duration_seconds",
			"veneur_listener_packets_received_total",
			"veneur_never_moved_total",
			"veneur_odd",
			"veneur_sink_requests_total",
		}
		if got := names(fams); !slices.Equal(got, want) {
			t.Errorf("families %v, want %v", got, want)
		}
		counter, gauge := dto.MetricType_COUNTER, dto.MetricType_GAUGE
		if v := sample(t, fams, "veneur_listener_packets_received_total", counter, map[string]string{"protocol": "udp"}); v != n {
			t.Errorf("udp packets %v, want %d", v, n)
		}
		if v := sample(t, fams, "veneur_listener_packets_received_total", counter, map[string]string{"protocol": "tcp"}); v != 5 {
			t.Errorf("tcp packets %v, want 5", v)
		}
		if v := sample(t, fams, "veneur_sink_requests_total", counter, map[string]string{"sink": "prom.main", "status_class": "2xx"}); v != 3 {
			t.Errorf("sink requests %v, want 3", v)
		}
		if v := sample(t, fams, "veneur_already_total", counter, map[string]string{}); v != 2 {
			t.Errorf("already_total %v, want 2", v)
		}
		if v := sample(t, fams, "veneur_never_moved_total", counter, map[string]string{}); v != 0 {
			t.Errorf("never_moved %v, want 0", v)
		}
		if v := sample(t, fams, "veneur_flush_duration_seconds", gauge, map[string]string{}); v != 0.25 {
			t.Errorf("flush duration %v, want 0.25", v)
		}
		odd := map[string]string{"quote": `say "hi"\`, "nl": "a\nb", "valueless": "true", "_9bad_key": "x"}
		if v := sample(t, fams, "veneur_odd", gauge, odd); v != -2 {
			t.Errorf("odd gauge %v, want -2", v)
		}
		// Every family carries its catalog help, escapes and all.
		for name, f := range fams {
			if f.GetHelp() == "" {
				t.Errorf("%s has no HELP", name)
			}
		}
		if h := fams["veneur_odd"].GetHelp(); h != `Odd "help" with a \ and \n.` {
			t.Errorf("odd HELP %q", h)
		}
		h := fams["veneur_import_duration_seconds"]
		if h.GetType() != dto.MetricType_HISTOGRAM || len(h.Metric) != 1 {
			t.Fatalf("import duration family %v", h)
		}
		hist := h.Metric[0].GetHistogram()
		if hist.GetSampleCount() != 3 || hist.GetSampleSum() != 40.203 || h.Metric[0].Label[0].GetValue() != "decode" {
			t.Errorf("import duration histogram %v", h.Metric[0])
		}
		cum := map[float64]uint64{}
		for _, b := range hist.Bucket {
			cum[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		if cum[0.001] != 0 || cum[0.005] != 1 || cum[0.1] != 1 || cum[0.25] != 2 || cum[30] != 2 || cum[math.Inf(1)] != 3 {
			t.Errorf("import duration buckets %v", cum)
		}
		if idle := fams["veneur_idle_duration_seconds"].Metric[0].GetHistogram(); idle.GetSampleCount() != 0 || len(idle.Bucket) != len(telemetry.Buckets)+1 {
			t.Errorf("unobserved histogram %v", idle)
		}
	}

	// The flush still sees every increase since its last Collect (none
	// yet): the scrapes took nothing from it.
	udpDelta := func() (v float64) {
		reg.Collect(func(m telemetry.Measurement) {
			if string(m.Name) == "veneur.listener.packets_received" && strings.Contains(string(m.Tags), "protocol:udp") {
				v = m.Value
			}
		})
		return v
	}
	if d := udpDelta(); d != n {
		t.Errorf("first flush after two scrapes: udp increase %v, want %d", d, n)
	}
	udp.Add(4)
	scrape(t, srv.URL)
	if d := udpDelta(); d != 4 {
		t.Errorf("second flush: udp increase %v, want 4", d)
	}
	if v := sample(t, scrape(t, srv.URL), "veneur_listener_packets_received_total", dto.MetricType_COUNTER, map[string]string{"protocol": "udp"}); v != n+4 {
		t.Errorf("udp total after the flushes %v, want %d", v, n+4)
	}
}

// A counter and a gauge that sanitise onto one family: the counter keeps
// it, so the output stays parseable (one TYPE per family).
func TestCounterGaugeFamilyCollision(t *testing.T) {
	reg := telemetry.NewRegistryOf(testSpecs)
	reg.Counter("x").Add(1)
	reg.Gauge("x_total").Set(9)
	reg.Gauge("a.b", "k:1").Set(1)
	reg.Gauge("a_b", "k:1").Set(2) // same family and labels after sanitising
	var b strings.Builder
	if err := Write(&b, reg); err != nil {
		t.Fatal(err)
	}
	want := "# HELP veneur_a_b A dot B.\n# TYPE veneur_a_b gauge\nveneur_a_b{k=\"1\"} 1\n# HELP veneur_x_total X.\n# TYPE veneur_x_total counter\nveneur_x_total 1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// Every self-metric of the catalog, registered with every tag key and
// moved, passes Prometheus's own linter: names, units, suffixes and a
// # HELP for each family.
func TestCatalogPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): cannot lint /metrics")
	}
	reg := telemetry.NewRegistry()
	for _, s := range telemetry.Catalog {
		var tags []string
		for _, k := range s.Tags {
			tags = append(tags, k+":v")
		}
		switch s.Kind {
		case telemetry.KindCounter:
			reg.Counter(s.Name, tags...).Inc()
		case telemetry.KindGauge:
			reg.Gauge(s.Name, tags...).Set(1)
		case telemetry.KindHistogram:
			reg.Histogram(s.Name, tags...).Observe(0.2)
		}
	}
	var b bytes.Buffer
	if err := Write(&b, reg); err != nil {
		t.Fatal(err)
	}
	lintMetrics(t, promtool, b.Bytes())
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != len(telemetry.Catalog) {
		t.Errorf("%d families for %d catalog rows: %v", len(fams), len(telemetry.Catalog), names(fams))
	}
}

// lintMetrics runs promtool check metrics on body and fails on any finding.
func lintMetrics(t *testing.T, promtool string, body []byte) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
