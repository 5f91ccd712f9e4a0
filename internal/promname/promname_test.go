package promname

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The rules as Prometheus states them, restated rather than taken from the
// code under test.
var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func TestMetricName(t *testing.T) {
	for in, want := range map[string]string{
		"api.requests":         "api_requests",
		"already_valid:ok":     "already_valid:ok",
		"Mixed.Case-name":      "Mixed_Case_name",
		"2xx.count":            "_2xx_count",
		"_private":             "_private",
		"héllo":                "h__llo", // two bytes, two underscores
		"a b/c\x00d":           "a_b_c_d",
		"":                     "_",
		"lat.50percentile":     "lat_50percentile",
		"veneur.sink.requests": "veneur_sink_requests",
	} {
		got := MetricName(in)
		if got != want {
			t.Errorf("MetricName(%q) = %q, want %q", in, got, want)
		}
		if !metricNameRE.MatchString(got) {
			t.Errorf("MetricName(%q) = %q is not a valid metric name", in, got)
		}
	}
}

func TestLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"env":       "env",
		"dc.region": "dc_region",
		"a:b":       "a_b", // keys never hold ':' (tags split at the first), but the rule holds
		"9lives":    "_9lives",
		"__name__":  "_name__",
		"__":        "_",
		"_":         "_",
		"..x":       "_x",
		"":          "_",
		"Route":     "Route",
		"ключ":      "_", // 8 bytes become 8 underscores, cut to one
		"ключ.k":    "_k",
	} {
		got := LabelName(in)
		if got != want {
			t.Errorf("LabelName(%q) = %q, want %q", in, got, want)
		}
		if !labelNameRE.MatchString(got) || strings.HasPrefix(got, "__") {
			t.Errorf("LabelName(%q) = %q is not a valid user label name", in, got)
		}
	}
}

func TestValidNamesDoNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_ = MetricName("api_requests:rate5m")
		_ = LabelName("route")
		_ = LabelValue("/users/héllo")
	}); n != 0 {
		t.Errorf("%v allocations for valid names", n)
	}
}

func TestAppendLabels(t *testing.T) {
	prefix := []Label{{"keep", "me"}}
	got, dropped := AppendLabels(prefix, "api_requests", "web-1", []string{
		"Zone:eu", // upper case sorts before "__name__"
		"canary",  // no value
		"empty:",  // empty value: no label
		"env:prod",
		"env:staging", // same name again: the first tag wins
		"host:other",  // host from the point wins
		"path:/a:b",   // split at the first ':' only
		"bad:\xff",
		"dc.region:1",
		"dc_region:2", // sanitises onto dc.region's name
		"veneur_internal_metric:true",
	}, func(tag string) bool { return tag == "veneur_internal_metric:true" })
	want := []Label{
		{"keep", "me"}, // dst's own labels are left alone
		{"Zone", "eu"},
		{"__name__", "api_requests"},
		{"bad", "\uFFFD"},
		{"canary", "true"},
		{"dc_region", "1"},
		{"env", "prod"},
		{"host", "web-1"},
		{"path", "/a:b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels\n got %q\nwant %q", got, want)
	}
	if dropped != 3 {
		t.Errorf("dropped %d, want 3 (env:staging, host:other, dc_region:2)", dropped)
	}

	// No host, no tags.
	got, dropped = AppendLabels(nil, "x", "", nil, nil)
	if !reflect.DeepEqual(got, []Label{{"__name__", "x"}}) || dropped != 0 {
		t.Errorf("bare series: %q, %d", got, dropped)
	}
}
